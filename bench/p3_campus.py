"""P3: a campus of 324 meters on 12 buses in one Home Assistant with the recorder.

Two Home Assistant processes run side by side: one with Grid Meter polling the 12
simulated buses, one with a bare custom component that writes the same number of sensor
states per poll period in one burst and does nothing else. Both run the recorder and the
same probe (event-loop lag, state writes). Figures: Grid Meter's CPU over the bare
writer's, Grid Meter's event-loop lag p99, and the campus cycle over one bus's cycle
measured alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.bus import Bus, MeterConfig
from edge_agent.link import LinkConfig
from edge_agent.model import SerialSettings, Wire
from edge_agent.profiles import load_profile
from edge_agent.quantities import QUANTITIES

from .hass_config import GridMeterBus, recorder_config, write_config_dir
from .hass_process import FLUSH, HassProcess, Load, ProbeWindow, Usage
from .recording import Transaction
from .report import Figure, progress
from .rounds import split_polls
from .simclient import SimBus, SimHost

BUSES = 12
SETTINGS = SerialSettings(9600, 8, "E", 1)
#: Nine of each per bus: 27 meters, three protocols' worth of framing on one line.
MIX = (
    ("eastron-sdm630", Wire.MODBUS_RTU),
    ("chint-dtsu666", Wire.MODBUS_RTU),
    ("dlt645-2007-3phase", Wire.DLT645_2007),
)
PER_PROFILE = 9
#: Transactions Grid Meter needs per meter and profile (its read plan, no refusals).
TRANSACTIONS = {"eastron-sdm630": 4, "chint-dtsu666": 3, "dlt645-2007-3phase": 13}
INTERVAL = 60
#: Buses per simulator process (each paces every byte of its buses).
BUSES_PER_HOST = 4
#: The bare writer reads its target (sensors, interval) from this file in its config dir.
TARGET_FILE = "bench_bare_target.json"
#: Seconds between the calibration round and the quick run's window.
QUICK_SETTLE = 20.0
#: An idle gap longer than this ends a bus's poll (the loop may stall a second or two).
POLL_IDLE = 10.0


def bus_meters() -> tuple[tuple[str, str, Wire], ...]:
    """Return the 27 meters of every bus: (profile, address, wire)."""
    meters = []
    for index, (profile, wire) in enumerate(MIX):
        for n in range(1, PER_PROFILE + 1):
            number = index * PER_PROFILE + n
            address = str(number) if wire is Wire.MODBUS_RTU else f"{number:012d}"
            meters.append((profile, address, wire))
    return tuple(meters)


#: Bus diagnostic sensors Grid Meter enables by default, if its sensor module cannot be read.
BUS_SENSORS_ENABLED = 6


def states_per_poll() -> int:
    """Sensor states Grid Meter writes per poll of the campus (its enabled entities)."""
    try:
        sensor = importlib.import_module("custom_components.grid_meter.sensor")
    except Exception:  # only a count is wanted; the Home Assistant run shows real errors
        per_bus = BUS_SENSORS_ENABLED
    else:
        per_bus = sum(bool(d.entity_registry_enabled_default) for d in sensor.BUS_SENSORS)
    for profile, _address, _wire in bus_meters():
        per_bus += sum(QUANTITIES[key].common for key in load_profile(profile).keys)
    return BUSES * per_bus


async def solo_cycle() -> float:
    """One bus of the campus polled alone by the edge agent, outside Home Assistant."""
    meters = bus_meters()
    host = await SimHost.start([SimBus(SETTINGS, tuple((p, a) for p, a, _w in meters))])
    link = LinkConfig(kind="serial", device=host.paths[0], serial=SETTINGS)
    bus = Bus(link, [MeterConfig(a, p, w) for p, a, w in meters], timeout=0.5, retries=1)
    try:
        await bus.open()
        started = time.monotonic()
        await bus.poll()
        return time.monotonic() - started
    finally:
        await bus.close()
        await host.close()


@dataclass(frozen=True, slots=True)
class BusTransaction:
    """A transaction and the bus it crossed."""

    bus: int
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class Round:
    """One poll of every bus: its first request and last reply."""

    start: float
    end: float


class RoundWatcher:
    """Follows the buses' logs while they run."""

    def __init__(self, hosts: Sequence[SimHost]) -> None:
        self.hosts = hosts
        self._seen: list[Transaction] = []
        self._bus_of: list[int] = []

    async def _update(self) -> list[tuple[int, Transaction]]:
        new: list[tuple[int, Transaction]] = []
        bus = 0
        for host in self.hosts:
            for log in await host.fetch():
                new.extend((bus, t) for t in log)
                log.clear()
                bus += 1
        new.sort(key=lambda item: item[1].request_start)
        for bus_index, t in new:
            self._seen.append(t)
            self._bus_of.append(bus_index)
        return new

    async def round_after(self, start: float, quiet: float, timeout: float) -> Round:
        """Wait for the round after ``start`` to end (every bus quiet for ``quiet`` s)."""
        while time.monotonic() < timeout:
            await self._update()
            after = [
                (bus, t)
                for bus, t in zip(self._bus_of, self._seen, strict=True)
                if t.request_start >= start
            ]
            last = max((t.reply_end for _bus, t in after), default=None)
            if last is not None and time.monotonic() - last > quiet:
                return Round(min(t.request_start for _bus, t in after), last)
            await asyncio.sleep(0.5)
        raise TimeoutError("Grid Meter's poll round did not end")

    async def transactions(self) -> list[BusTransaction]:
        """Every transaction seen so far, with its bus."""
        await self._update()
        return [BusTransaction(bus, t) for bus, t in zip(self._bus_of, self._seen, strict=True)]


@dataclass(frozen=True, slots=True)
class Campus:
    """What the campus run measured."""

    solo: float
    rounds: list[float]
    bus_spans: list[float]
    period: float
    window: float
    ours: Usage
    bare: Usage
    ours_probe: ProbeWindow
    bare_probe: ProbeWindow
    states: int
    #: Sensor entities in the state machine at start: (Grid Meter, bare writer).
    sensors: tuple[int, int]
    transactions: int
    failed_polls: int
    collisions: int
    sims_cpu: float
    machine_busy: float
    machine_steal: float
    recorder: str
    notes: tuple[str, ...]


def campus_rounds(
    logs: Sequence[Sequence[Transaction]], expected: int, before: float = float("inf")
) -> tuple[list[float], list[float], int]:
    """Return the campus cycle of each round, every bus's poll span, incomplete polls.

    Round ``k`` is every bus's ``k``-th complete poll in the window (the buses start their
    polls on one clock, so these start together); its campus cycle is its first request
    to its last reply over all buses. Only rounds with a poll of every bus count,
    and only polls that started before ``before``.
    """
    per_bus = [
        [p for p in split_polls(log, POLL_IDLE) if p[0].request_start < before] for log in logs
    ]
    complete = [[p for p in polls if len(p) >= expected] for polls in per_bus]
    incomplete = sum(len(polls) for polls in per_bus) - sum(len(polls) for polls in complete)
    rounds = min((len(polls) for polls in complete), default=0)
    spans = [
        max(polls[k][-1].reply_end for polls in complete)
        - min(polls[k][0].request_start for polls in complete)
        for k in range(rounds)
    ]
    bus_spans = [p[-1].reply_end - p[0].request_start for polls in complete for p in polls]
    return spans, bus_spans, incomplete


def _write_configs(
    workdir: Path, paths: Sequence[str], states: int, period: float
) -> tuple[Path, Path, str]:
    """Config dirs of the Grid Meter and the bare-writer instance; the recorder's description."""
    meters = [(p, a) for p, a, _w in bus_meters()]
    recorder, recorder_text = recorder_config()
    ours_dir, bare_dir = workdir / "p3-grid-meter", workdir / "p3-bare"
    write_config_dir(
        ours_dir,
        recorder | {"bench_probe": {}},
        components=["bench_probe"],
        grid_meter=[
            GridMeterBus(f"bus {n + 1}", path, SETTINGS, "modbus", meters)
            for n, path in enumerate(paths)
        ],
    )
    write_config_dir(
        bare_dir,
        recorder | {"bench_probe": {}, "bench_bare": {"entities": states, "interval": period}},
        components=["bench_probe", "bench_bare"],
    )
    return ours_dir, bare_dir, recorder_text


def _environments(profile_dir: Path | None) -> list[dict[str, str]]:
    envs: list[dict[str, str]] = [{"BENCH_GRID_METER_INTERVAL": str(INTERVAL)}, {}]
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        for env, name in zip(envs, ("grid-meter", "bare"), strict=True):
            env["BENCH_CPROFILE"] = str(profile_dir / f"p3-{name}.pstats")
    return envs


@dataclass(frozen=True, slots=True)
class Calibration:
    """What Grid Meter wrote in one poll round, and its poll period."""

    writes: int
    period: float


@dataclass(frozen=True, slots=True)
class Window:
    """Both instances' usage over whole periods, and the buses' traffic in Grid Meter's."""

    #: When Grid Meter's window ended (``time.monotonic()``).
    end: float
    ours: Usage
    bare: Usage
    ours_probe: ProbeWindow
    bare_probe: ProbeWindow
    #: Transactions from the window's start until the polls begun in it had ended.
    logs: list[BusTransaction]
    #: The simulator processes' CPU in % of one core; all cores' busy and stolen share in %.
    sims_cpu: float
    machine_busy: float
    machine_steal: float
    #: Replies the simulators lost to collisions since they started (a late reply to a
    #: request Grid Meter had given up on and sent again).
    collisions: int


async def _calibrate(
    processes: Sequence[HassProcess], watcher: RoundWatcher, bare_dir: Path
) -> Calibration:
    """Count what Grid Meter writes in one round, and have the bare writer match it.

    The round is the first one the buses' shared clock starts after Home Assistant has
    started; the bare writer then writes as many states, once per Grid Meter poll period.
    """
    ours_proc = processes[0]
    polled = await watcher.round_after(
        ours_proc.started_at, quiet=3.0, timeout=ours_proc.started_at + 120
    )
    await asyncio.sleep(2 * FLUSH)
    probe = ours_proc.probe_window(polled.start, polled.end + FLUSH)
    # Every bus starts a poll at each multiple of the interval, on one clock.
    calibration = Calibration(probe.changed + probe.reported, INTERVAL)
    (bare_dir / TARGET_FILE).write_text(
        json.dumps({"entities": calibration.writes, "interval": calibration.period})
    )
    progress(
        f"P3: Grid Meter wrote {calibration.writes} states in a "
        f"{polled.end - polled.start:.1f} s round; "
        f"the bare writer now writes as many every {calibration.period:.1f} s"
    )
    return calibration


async def _measure_window(
    processes: Sequence[HassProcess], watcher: RoundWatcher, periods: int, period: float
) -> Window:
    """Measure both instances over the same whole number of poll periods.

    Every bus polls once per ``period`` and the bare writer writes once per ``period``, so
    a window of ``periods`` periods holds that many polls of each bus and bursts, wherever
    it starts.
    """
    ours_proc, bare_proc = processes
    sim_pids = [host.process.pid for host in watcher.hosts]
    load = Load.now(sim_pids)
    ours_mark, bare_mark = ours_proc.usage_mark(), bare_proc.usage_mark()
    progress(f"P3: measuring {periods} poll period(s) of {period:.0f} s")
    await asyncio.sleep(periods * period)
    ours, bare = ours_proc.usage_since(ours_mark), bare_proc.usage_since(bare_mark)
    sims_cpu, machine_busy, machine_steal = Load.now(sim_pids).since(load)
    start, end = ours_mark[0], ours_mark[0] + ours.seconds
    # Let the polls that started inside the window finish, for the campus rounds.
    with contextlib.suppress(TimeoutError):
        await watcher.round_after(start, quiet=3.0, timeout=time.monotonic() + 40)
    await asyncio.sleep(2 * FLUSH)
    logs = [b for b in await watcher.transactions() if b.transaction.request_start >= start]
    stats = [bus for host in watcher.hosts for bus in await host.stats()]
    return Window(
        end=end,
        ours=ours,
        bare=bare,
        ours_probe=ours_proc.probe_window(start, end),
        bare_probe=bare_proc.probe_window(bare_mark[0], bare_mark[0] + bare.seconds),
        logs=logs,
        sims_cpu=sims_cpu,
        machine_busy=machine_busy,
        machine_steal=machine_steal,
        collisions=sum(int(bus["collisions"]) for bus in stats),
    )


async def measure(
    workdir: Path,
    quick: bool,
    solo: float,
    profile_dir: Path | None = None,
    started_event: asyncio.Event | None = None,
) -> Campus:
    """Run the campus and the bare writer side by side (``profile_dir``: cProfile both).

    ``solo`` is :func:`solo_cycle`, measured beforehand while nothing else runs;
    ``started_event`` is set once both Home Assistants have started (or failed to).
    """
    period = INTERVAL  # every bus starts a poll at each multiple of it, on one clock
    meters = bus_meters()
    sim_bus = SimBus(SETTINGS, tuple((p, a) for p, a, _w in meters))
    states = states_per_poll()
    async with contextlib.AsyncExitStack() as stack:
        hosts = []
        for _ in range(0, BUSES, BUSES_PER_HOST):
            host = await SimHost.start([sim_bus] * BUSES_PER_HOST)
            stack.push_async_callback(host.close)
            hosts.append(host)
        paths = [path for host in hosts for path in host.paths]
        ours_dir, bare_dir, recorder_text = _write_configs(workdir, paths, states, period)
        processes = []
        for directory, env in zip((ours_dir, bare_dir), _environments(profile_dir), strict=True):
            process = await HassProcess.start(directory, env)
            stack.push_async_callback(process.stop)
            processes.append(process)
        progress(f"P3: starting Home Assistant twice ({len(paths)} buses / {states} sensors)")
        try:
            started = await asyncio.gather(*(p.wait_started(600) for p in processes))
        finally:
            if started_event is not None:
                started_event.set()
        intervals = set(started[0].get("grid_meter_intervals", []))
        if intervals != {INTERVAL}:
            raise RuntimeError(
                f"Grid Meter's bus coordinators have intervals {sorted(intervals)}, not "
                f"{INTERVAL} s: {processes[0].failure('grid_meter')}"
            )
        watcher = RoundWatcher(hosts)
        calibration = await _calibrate(processes, watcher, bare_dir)
        # Let set-up settle: the bare writer adding sensors, registry writes; in the full
        # run, a whole period.
        await asyncio.sleep(QUICK_SETTLE if quick else calibration.period)
        window = await _measure_window(processes, watcher, 1 if quick else 8, calibration.period)
        errors = processes[0].errors()
    expected = sum(TRANSACTIONS[p] for p, _a, _w in meters)
    per_bus = [[b.transaction for b in window.logs if b.bus == n] for n in range(BUSES)]
    (workdir / "p3-transactions.json").write_text(
        json.dumps([[t.as_list() for t in log] for log in per_bus])
    )
    rounds, bus_spans, failed = campus_rounds(per_bus, expected, before=window.end)
    return Campus(
        solo=solo,
        rounds=rounds,
        bus_spans=bus_spans,
        period=calibration.period,
        window=window.ours.seconds,
        ours=window.ours,
        bare=window.bare,
        ours_probe=window.ours_probe,
        bare_probe=window.bare_probe,
        states=calibration.writes,
        sensors=(started[0].get("sensors", 0), started[1].get("sensors", 0)),
        transactions=sum(b.transaction.request_start < window.end for b in window.logs),
        failed_polls=failed,
        collisions=window.collisions,
        recorder=recorder_text,
        sims_cpu=window.sims_cpu,
        machine_busy=window.machine_busy,
        machine_steal=window.machine_steal,
        notes=tuple(f"Home Assistant log: {line[:160]}" for line in errors[:3]),
    )


def writes_per_minute(probe: ProbeWindow, usage: Usage) -> float:
    """Sensor state writes (changed or not) per minute over a window."""
    return 60 * (probe.changed + probe.reported) / usage.seconds if usage.seconds else 0.0


def overhead_ratio(c: Campus) -> tuple[float, float]:
    """Grid Meter's CPU over the bare writer's, per state written, and unnormalised.

    The bare writer is set to write what Grid Meter wrote in one round, but Grid Meter also
    writes on timers of its own; dividing each CPU share by its own writes per minute
    compares both at the same number of states per minute.
    """
    if not c.bare.cpu_percent:
        return float("nan"), float("nan")
    raw = c.ours.cpu_percent / c.bare.cpu_percent
    ours_rate, bare_rate = (
        writes_per_minute(c.ours_probe, c.ours),
        writes_per_minute(c.bare_probe, c.bare),
    )
    if not ours_rate or not bare_rate:
        return float("nan"), raw
    return raw * bare_rate / ours_rate, raw


def figures(c: Campus) -> list[Figure]:
    """Overhead ratio, loop lag, campus cycle, CPU and memory."""
    ours_rate = writes_per_minute(c.ours_probe, c.ours)
    bare_rate = writes_per_minute(c.bare_probe, c.bare)
    ratio, raw = overhead_ratio(c)
    context = (
        f"{BUSES} buses x {len(bus_meters())} meters = {BUSES * len(bus_meters())} meters "
        f"({PER_PROFILE} each of {', '.join(p for p, _w in MIX)} per bus), "
        f"9600 8E1 ptys, Grid Meter update interval {INTERVAL} s",
        f"Home Assistant 2025.4.4 with {c.recorder}; windows: Grid Meter {c.window:.0f} s "
        f"(whole poll periods), bare writer {c.bare.seconds:.0f} s (whole intervals)",
        f"CPU per state written, Grid Meter over bare writer; unnormalised CPU ratio "
        f"{raw:.2f} at {ours_rate:.0f} (Grid Meter) and {bare_rate:.0f} (bare writer) "
        f"state writes per minute",
        f"Grid Meter: {c.sensors[0]} sensors, {c.ours_probe.changed} changed + "
        f"{c.ours_probe.reported} unchanged states in the window; bare writer: "
        f"{c.states} sensors (what Grid Meter wrote in one round) written every "
        f"{c.period:.1f} s (Grid Meter's poll period)",
        f"transactions on the 12 buses in the window: {c.transactions}, incomplete polls: "
        f"{c.failed_polls}; replies the simulators lost to collisions since they started: "
        f"{c.collisions} (a late reply meeting the retry of its request)",
        *c.notes,
    )
    lag = c.ours_probe.lag_percentile(99) * 1e3
    campus = statistics.median(c.rounds) if c.rounds else float("nan")
    return [
        Figure("P3-overhead-ratio", round(ratio, 2), "<= 1.25", context),
        Figure(
            "P3-loop-lag-p99-ms",
            round(lag, 1),
            "<= 20",
            (
                f"machine {c.machine_busy:.0f} % busy and {c.machine_steal:.0f} % stolen by "
                f"the hypervisor over {os.cpu_count()} cores in the window; the {BUSES} "
                f"simulated buses used {c.sims_cpu:.0f} % of one core",
                f"timer due every 10 ms, lateness corrected for coordinated omission; "
                f"Grid Meter max {c.ours_probe.lag_max * 1e3:.0f} ms; bare writer p99 "
                f"{c.bare_probe.lag_percentile(99) * 1e3:.1f} ms, max "
                f"{c.bare_probe.lag_max * 1e3:.0f} ms",
                *(
                    f"{name}: {count} full garbage collections, {total:.2f} s in all, "
                    f"longest {longest * 1e3:.0f} ms"
                    for name, (count, total, longest) in (
                        ("Grid Meter", c.ours_probe.gc_pauses(2)),
                        ("bare writer", c.bare_probe.gc_pauses(2)),
                    )
                ),
                *(
                    f"Grid Meter loop blocked {b.seconds:.2f} s in {b.where}"
                    for b in c.ours_probe.worst_blocks(3)
                ),
                *(
                    f"bare writer loop blocked {b.seconds:.2f} s in {b.where}"
                    for b in c.bare_probe.worst_blocks(1)
                ),
            ),
        ),
        Figure(
            "P3-cycle-over-slowest-bus",
            round(campus / c.solo, 3),
            "<= 1.1",
            (
                f"campus cycle (first request to last reply of a round over all 12 buses, "
                f"median of {len(c.rounds)}) {campus:.2f} s; one bus alone {c.solo:.2f} s; "
                f"slowest bus inside the campus "
                f"{max(c.bus_spans, default=float('nan')):.2f} s",
            ),
        ),
        Figure(
            "P3-cpu-percent-grid-meter", round(c.ours.cpu_percent, 2), context=("% of one core",)
        ),
        Figure("P3-cpu-percent-bare-writer", round(c.bare.cpu_percent, 2)),
        Figure("P3-memory-mib-grid-meter", round(c.ours.rss_bytes / 2**20, 1), context=("RSS",)),
        Figure("P3-memory-mib-bare-writer", round(c.bare.rss_bytes / 2**20, 1)),
    ]
