"""Screenshots with headless Chromium, driven over the DevTools protocol.

``chromium --screenshot`` shoots as soon as the page has loaded, before Home Assistant's
frontend has connected its websocket and rendered; here the page is shot once a JavaScript
condition holds (for example: the frontend has the states of some entity).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)


def chromium_path() -> str | None:
    """Return Debian's Chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Page:
    """One page target: send a DevTools command, get its result."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = json.loads(await self._ws.receive_str())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result


#: A screenshot smaller than this is the loading screen or an empty shell.
RENDERED_BYTES = 50_000


async def _shoot(port: int, url: str, ready_js: str, timeout: float) -> bytes:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 20
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                    break
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        target = next(t for t in targets if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = _Page(ws)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            while True:
                done = await page.call("Runtime.evaluate", expression=ready_js, returnByValue=True)
                if done.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the page did not get ready: {ready_js}")
                await asyncio.sleep(0.5)
            # Cards render their values after the states arrive; on a loaded machine that
            # takes a while. Shoot until the picture is a rendered page, not a bare shell.
            await asyncio.sleep(3)
            while True:
                shot = await page.call("Page.captureScreenshot", format="png")
                data = base64.b64decode(shot["data"])
                if len(data) >= RENDERED_BYTES or time.monotonic() > deadline + 30:
                    return data
                await asyncio.sleep(2)


def screenshot(url: str, out: Path, ready_js: str = "true", timeout: float = 60.0) -> None:
    """Open ``url``; once ``ready_js`` evaluates to true, save a PNG screenshot to ``out``."""
    chromium = chromium_path()
    if chromium is None:
        raise FileNotFoundError("chromium is missing: scripts/setup --browser installs it")
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = out.parent / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    port = _free_port()
    browser = subprocess.Popen(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        out.write_bytes(asyncio.run(_shoot(port, url, ready_js, timeout)))
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)
