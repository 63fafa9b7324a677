"""Run a Home Assistant process, read its probe, and sample its CPU and memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

LAUNCHER = Path(__file__).resolve().parent / "hass_main.py"
#: Seconds of samples in each probe chunk (bench_probe's FLUSH_EVERY).
FLUSH = 1.0
#: Loggers whose errors concern the benchmark (not the camera, ffmpeg or frontend ones).
_RELEVANT = (
    "custom_components.grid_meter",
    "edge_agent",
    "homeassistant.components.modbus",
    "pymodbus",
    "homeassistant.components.recorder",
    "custom_components.bench",
)


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU and memory of a process over a window."""

    seconds: float
    cpu_seconds: float
    rss_bytes: int

    @property
    def cpu_percent(self) -> float:
        """Share of one core, in %."""
        return 100.0 * self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Block:
    """A stretch during which the event loop ran no timer, and where it was stuck."""

    start: float
    seconds: float
    where: str


@dataclass(frozen=True, slots=True)
class ProbeWindow:
    """What the probe saw between two instants."""

    lags: list[float]
    changed: int
    reported: int
    blocks: list[Block] = field(default_factory=list)
    #: (generation, seconds) of the garbage collections in the window.
    collections: list[tuple[int, float]] = field(default_factory=list)

    def gc_pauses(self, generation: int) -> tuple[int, float, float]:
        """Count, total and longest pause of the collections of one generation."""
        pauses = [s for g, s in self.collections if g == generation]
        return len(pauses), sum(pauses), max(pauses, default=0.0)

    def worst_blocks(self, count: int) -> list[Block]:
        """Return the longest blocks, longest first."""
        return sorted(self.blocks, key=lambda b: -b.seconds)[:count]

    def lag_percentile(self, q: float) -> float:
        """Return the ``q``-th percentile of the timer lateness, in seconds."""
        if not self.lags:
            return float("nan")
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def lag_max(self) -> float:
        """The longest lateness seen."""
        return max(self.lags, default=float("nan"))


@dataclass
class HassProcess:
    """A running ``hass`` with a benchmark probe in its config directory."""

    config_dir: Path
    process: asyncio.subprocess.Process
    started_at: float = 0.0
    _psutil: psutil.Process | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, config_dir: Path, env: dict[str, str] | None = None) -> HassProcess:
        """Start Home Assistant on ``config_dir`` (not waiting for it to be up)."""
        log = (config_dir / "hass.out").open("wb")
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | (env or {})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(LAUNCHER),
            "-c",
            str(config_dir),
            "--skip-pip",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=config_dir,
            env=environment,
            start_new_session=True,
        )
        log.close()
        return cls(config_dir, process, _psutil=psutil.Process(process.pid))

    @property
    def probe_file(self) -> Path:
        """Where the probe appends its chunks."""
        return self.config_dir / "bench_probe.jsonl"

    def _chunks(self) -> list[dict[str, Any]]:
        if not self.probe_file.exists():
            return []
        lines = self.probe_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    async def wait_started(self, timeout: float) -> dict[str, Any]:
        """Wait for Home Assistant's started event (the probe's first line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"Home Assistant exited; see {self.config_dir / 'hass.out'}")
            for chunk in self._chunks():
                if "started" in chunk:
                    self.started_at = float(chunk["started"])
                    return chunk
            await asyncio.sleep(0.5)
        raise TimeoutError(f"Home Assistant did not start within {timeout:.0f} s")

    def usage_mark(self) -> tuple[float, float]:
        """(monotonic time, CPU seconds so far) for :meth:`usage_since`."""
        assert self._psutil is not None
        times = self._psutil.cpu_times()
        return time.monotonic(), times.user + times.system

    def usage_since(self, mark: tuple[float, float]) -> Usage:
        """CPU used since ``mark`` and resident memory now."""
        assert self._psutil is not None
        now, cpu = self.usage_mark()
        return Usage(now - mark[0], cpu - mark[1], self._psutil.memory_info().rss)

    def probe_window(self, start: float, end: float) -> ProbeWindow:
        """Return what the probe saw between ``start`` and ``end`` (to its chunks' resolution)."""
        everything = self._chunks()
        chunks = [c for c in everything if "t" in c and start <= c["t"] - FLUSH < end]
        blocks = [
            Block(c["block"], c["seconds"], culprit(c["stacks"], c.get("cpu", []), c["seconds"]))
            for c in everything
            if "block" in c and start <= c["block"] <= end
        ]
        return ProbeWindow(
            lags=[lag for c in chunks for lag in c["lag"]],
            changed=sum(c["changed"] for c in chunks),
            reported=sum(c["reported"] for c in chunks),
            blocks=blocks,
            collections=[(int(g), float(s)) for c in chunks for g, s in c.get("gc", [])],
        )

    def errors(self, loggers: tuple[str, ...] = _RELEVANT) -> list[str]:
        """ERROR lines of the Home Assistant log from the loggers that matter here."""
        out = self.config_dir / "hass.out"
        if not out.exists():
            return []
        return [
            line
            for line in out.read_text(errors="replace").splitlines()
            if " ERROR " in line and any(f"[{name}" in line for name in loggers)
        ]

    def failure(self, name: str) -> str:
        """Return the first error line mentioning ``name``, to say why something did not load."""
        out = self.config_dir / "hass.out"
        lines = out.read_text(errors="replace").splitlines() if out.exists() else []
        found = next((line for line in lines if " ERROR " in line and name in line), None)
        return (found or f"no error logged; see {out}")[:300]

    async def stop(self) -> None:
        """Stop Home Assistant (SIGTERM, then SIGKILL after 30 s)."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


_MARKERS = ("custom_components/", "edge_agent/", "homeassistant/", "sqlalchemy/", "pymodbus/")
_PLUMBING = ("asyncio/", "homeassistant/core.py", "homeassistant/util/async_", "contextvars")


def _place(entry: str) -> str:
    """``dir/file.py:line function`` of one formatted stack entry."""
    first = entry.strip().splitlines()[0]  # File "...", line N, in func
    path, _, rest = first.partition('", line ')
    line, _, func = rest.partition(", in ")
    return f"{'/'.join(path.split('/')[-2:])}:{line} {func}"


def culprit(stacks: list[list[str]], cpu: list[list[Any]], seconds: float = 0.0) -> str:
    """Name where the loop thread was stuck, by its most frequent sample.

    That is the innermost project or Home Assistant frame, or the innermost frame when
    only asyncio was running. ``cpu`` lists the threads that used CPU during the block:
    when the loop thread sat in epoll, they tell another thread holding the GIL from a
    process that got no CPU at all, or (the loop thread itself busy for most of the
    block) code that held the GIL so long that the watchdog only ran after it.
    """
    places: dict[str, int] = {}
    threads = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cpu) or "none"
    for stack in stacks:
        if not stack:
            continue
        if "selectors.py" in stack[-1]:
            loop_busy = sum(t for name, t in cpu if name == "MainThread")
            if seconds and loop_busy > seconds / 2:
                place = f"the loop thread itself, in code that kept the GIL ({threads})"
            else:
                place = f"epoll wait (CPU meanwhile: {threads})"
        else:
            found = (
                entry
                for entry in reversed(stack)
                if any(m in entry for m in _MARKERS)
                and not any(p in entry for p in _PLUMBING)
                and "homeassistant/runner.py" not in entry
            )
            place = _place(next(found, stack[-1]))
        places[place] = places.get(place, 0) + 1
    return max(places, key=places.__getitem__) if places else "unknown"


@dataclass(frozen=True, slots=True)
class Load:
    """CPU of some processes and of the whole machine, at one instant."""

    at: float
    processes: float
    machine_busy: float
    machine_total: float
    #: CPU time the hypervisor gave to other guests (0 on bare metal).
    machine_steal: float

    @classmethod
    def now(cls, pids: list[int]) -> Load:
        """Take the CPU seconds of ``pids`` (and their threads) and of all cores now."""
        used = 0.0
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                used += times.user + times.system
        machine = psutil.cpu_times()
        total = sum(machine)
        idle = machine.idle + machine.iowait + getattr(machine, "steal", 0.0)
        return cls(time.monotonic(), used, total - idle, total, getattr(machine, "steal", 0.0))

    def since(self, earlier: Load) -> tuple[float, float, float]:
        """Return the processes' CPU in % of one core, the machine's busy and stolen %."""
        seconds = self.at - earlier.at
        total = self.machine_total - earlier.machine_total
        processes = 100 * (self.processes - earlier.processes) / seconds if seconds else 0.0
        if not total:
            return processes, 0.0, 0.0
        busy = 100 * (self.machine_busy - earlier.machine_busy) / total
        return processes, busy, 100 * (self.machine_steal - earlier.machine_steal) / total


def median(values: list[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")
