"""Drive a :mod:`bench.simhost` process from the benchmark."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.model import SerialSettings

from .recording import Transaction

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class SimBus:
    """One simulated bus: its character format and meters as (profile, address)."""

    settings: SerialSettings
    meters: tuple[tuple[str, str], ...]

    def spec(self) -> dict[str, Any]:
        """JSON form for the sim host."""
        s = self.settings
        return {
            "baud": s.baudrate,
            "parity": s.parity,
            "stopbits": s.stopbits,
            "meters": [list(m) for m in self.meters],
        }


def python_env() -> dict[str, str]:
    """Environment for child Python processes: the repository on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class SimHost:
    """A running sim host process and the pty paths of its buses."""

    process: asyncio.subprocess.Process
    paths: list[str]
    #: Transactions fetched so far, per bus.
    logs: list[list[Transaction]] = field(default_factory=list)

    @classmethod
    async def start(cls, buses: list[SimBus], turnaround: float = 0.0) -> SimHost:
        """Start the process and wait for its ptys."""
        spec = {"buses": [b.spec() for b in buses], "turnaround": turnaround}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.simhost",
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=python_env(),
            cwd=ROOT,
            limit=1 << 26,
        )
        host = cls(process, [], [[] for _ in buses])
        host.paths = (await host._read())["paths"]
        return host

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process ended")
        result: dict[str, Any] = json.loads(line)
        return result

    async def _ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()
        return await self._read()

    async def fetch(self) -> list[list[Transaction]]:
        """Collect new transactions into :attr:`logs` and return them all."""
        answer = await self._ask("log")
        for mine, rows in zip(self.logs, answer["log"], strict=True):
            mine.extend(Transaction.from_list(row) for row in rows)
        return self.logs

    def clear(self) -> None:
        """Forget fetched transactions."""
        for log in self.logs:
            log.clear()

    async def stats(self) -> list[dict[str, float]]:
        """Return the simulator counters per bus."""
        stats: list[dict[str, float]] = (await self._ask("stats"))["stats"]
        return stats

    async def close(self) -> None:
        """Stop the process."""
        if self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
                async with asyncio.timeout(5):
                    await self.process.wait()
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()
