"""Benchmark probe: event-loop lag and state-write counts of the Home Assistant it runs in.

Configured as ``bench_probe:`` (optionally ``grid_meter_interval: SECONDS``). It appends to
``bench_probe.jsonl`` in the config directory, every second, one JSON line with

* ``lag``: the lateness (s) of a timer due every 10 ms, corrected for coordinated
  omission: a callback blocked for 0.9 s also records the ticks it swallowed, so the
  distribution is that of a timer falling due at a random moment;
* ``changed`` / ``reported``: ``state_changed`` and ``state_reported`` events of sensors;
* ``gc``: ``[generation, seconds]`` of every garbage collection that ended in the chunk
  (a full collection of a large Home Assistant holds whichever thread triggered it);
* ``t``: ``time.monotonic()`` at the end of the chunk (comparable across processes).

Chunks are one second long. A ``started`` line is written once Home Assistant has
started, with the poll interval of the Grid Meter bus coordinators, if any.

A watchdog thread samples the event-loop thread's stack whenever the timer is more than
``BLOCK_REPORT`` late and appends, once per block, ``{"block": start, "seconds": length,
"stacks": [...], "cpu": [[thread, seconds], ...]}`` lines: where the loop thread was while
blocked, and which threads used the CPU meanwhile (none: the process got no CPU).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.const import (
    EVENT_HOMEASSISTANT_STARTED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
)
from homeassistant.core import Event, HomeAssistant, callback

DOMAIN = "bench_probe"
TICK = 0.010
FLUSH_EVERY = 1.0
#: Lateness from which the watchdog records where the loop is stuck.
BLOCK_REPORT = 0.1
#: Stack samples per block.
SAMPLES = 5
CONFIG_SCHEMA = vol.Schema({DOMAIN: vol.Schema({})}, extra=vol.ALLOW_EXTRA)


def _thread_ticks() -> dict[int, int]:
    """Return the CPU clock ticks (user + system) of every thread, by native id."""
    ticks = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def _busiest_threads(before: dict[int, int], after: dict[int, int]) -> list[list[object]]:
    """Return the threads that used CPU between two snapshots, busiest first."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    hertz = os.sysconf("SC_CLK_TCK")
    used = sorted(((after[tid] - before.get(tid, 0), tid) for tid in after), reverse=True)
    return [[names.get(tid, str(tid)), ticks / hertz] for ticks, tid in used[:3] if ticks]


class Probe:
    """Collects samples in memory and appends them to a file in chunks."""

    def __init__(self, hass: HomeAssistant, path: Path) -> None:
        self.hass = hass
        self.path = path
        self.loop = asyncio.get_running_loop()
        self.lags: list[float] = []
        self.changed = 0
        self.reported = 0
        self.collections: list[list[float]] = []
        self._gc_started = 0.0
        gc.callbacks.append(self._gc)
        self._due = self.loop.time() + TICK
        self._next_flush = self.loop.time() + FLUSH_EVERY
        self.loop.call_at(self._due, self._tick)
        #: time.monotonic() of the last tick, read by the watchdog thread.
        self.last_tick = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        threading.Thread(target=self._watch, name="bench_probe_watchdog", daemon=True).start()

    def _watch(self) -> None:
        """Sample the loop thread's stack while it is blocked (runs in its own thread)."""
        blocked_since: float | None = None
        stacks: list[list[str]] = []
        before: dict[int, int] = {}
        while not self._stop.wait(BLOCK_REPORT / 2):
            now = time.monotonic()
            late = now - self.last_tick - TICK
            if late > BLOCK_REPORT:
                if blocked_since is None:
                    blocked_since, stacks, before = self.last_tick, [], _thread_ticks()
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None and len(stacks) < SAMPLES:
                    stacks.append(traceback.format_stack(frame)[-12:])
            elif blocked_since is not None:
                self.write(
                    {
                        "block": blocked_since,
                        "seconds": now - blocked_since,
                        "stacks": stacks,
                        "cpu": _busiest_threads(before, _thread_ticks()),
                    }
                )
                blocked_since = None

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """Time every garbage collection (called by the interpreter, in any thread)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.collections.append(
                [info["generation"], round(time.perf_counter() - self._gc_started, 5)]
            )

    def _tick(self) -> None:
        self.last_tick = time.monotonic()
        now = self.loop.time()
        due = self._due
        while due <= now:  # this tick and every tick the loop swallowed while blocked
            self.lags.append(now - due)
            due += TICK
        self._due = due
        self.loop.call_at(due, self._tick)
        if now >= self._next_flush:
            self._next_flush = now + FLUSH_EVERY
            self.flush()

    @callback
    def count(self, event: Event[Any]) -> None:
        """Count sensor state writes."""
        if not event.data["entity_id"].startswith("sensor."):
            return
        if event.event_type == EVENT_STATE_CHANGED:
            self.changed += 1
        else:
            self.reported += 1

    def flush(self) -> None:
        """Hand the chunk to a worker thread to append."""
        chunk = {
            "t": time.monotonic(),
            "lag": [round(x, 5) for x in self.lags],
            "changed": self.changed,
            "reported": self.reported,
            "gc": self.collections,
        }
        self.lags, self.changed, self.reported, self.collections = [], 0, 0, []
        self.hass.async_add_executor_job(self.write, chunk)

    def write(self, line: dict[str, Any]) -> None:
        """Append one JSON line (runs in the executor or the watchdog thread)."""
        text = json.dumps(line) + "\n"
        with self._write_lock, self.path.open("a", encoding="utf-8") as file:
            file.write(text)


@callback
def _any(_data: Any) -> bool:
    return True


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Start probing."""
    probe = Probe(hass, Path(hass.config.path("bench_probe.jsonl")))
    hass.bus.async_listen(EVENT_STATE_CHANGED, probe.count)
    hass.bus.async_listen(EVENT_STATE_REPORTED, probe.count, event_filter=_any)

    @callback
    def started(_event: Event[Any]) -> None:
        intervals = [
            entry.runtime_data.coordinator.poll_interval.total_seconds()
            for entry in hass.config_entries.async_entries("grid_meter")
            if getattr(entry, "runtime_data", None) is not None
        ]
        line = {
            "started": time.monotonic(),
            "grid_meter_intervals": intervals,
            "sensors": len(hass.states.async_entity_ids("sensor")),
        }
        hass.async_add_executor_job(probe.write, line)

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STARTED, started)
    return True
