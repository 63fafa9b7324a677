"""P1: a full poll of 32 simulated meters against the wire-time limit.

Each case gets its own sim host process (the wire) and its own bus in this process (the
software under test). Meters answer with zero turnaround, so any time beyond the wire-time
limit is the poller's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge_agent.bus import Bus, MeterConfig
from edge_agent.link import LinkConfig
from edge_agent.model import Reading, SerialSettings, Wire

from .report import Figure
from .simclient import SimBus, SimHost
from .timeline import Breakdown, breakdown
from .wire import SILENCE_CHARS, Traffic, efficiency, wire_time_limit

METERS = 32


@dataclass(frozen=True, slots=True)
class Case:
    """One P1 line: a profile on a bus of a character format."""

    profile: str
    wire: Wire
    settings: SerialSettings

    @property
    def slug(self) -> str:
        """e.g. ``eastron-sdm630-9600-8N1``."""
        s = self.settings
        return f"{self.profile}-{s.baudrate}-{s.bytesize}{s.parity}{s.stopbits}"

    def addresses(self, meters: int = METERS) -> list[str]:
        """Modbus unit ids 1..n or DL/T 645 addresses 000000000001..."""
        if self.wire is Wire.MODBUS_RTU:
            return [str(i) for i in range(1, meters + 1)]
        return [f"{i:012d}" for i in range(1, meters + 1)]


CASES = (
    Case("eastron-sdm630", Wire.MODBUS_RTU, SerialSettings(9600, 8, "N", 1)),
    Case("chint-dtsu666", Wire.MODBUS_RTU, SerialSettings(9600, 8, "N", 1)),
    Case("dlt645-2007-3phase", Wire.DLT645_2007, SerialSettings(2400, 8, "E", 1)),
    Case("dlt645-2007-3phase", Wire.DLT645_2007, SerialSettings(9600, 8, "E", 1)),
)


@dataclass(frozen=True, slots=True)
class Result:
    """One measured poll."""

    case: Case
    meters: int
    cycle: float
    limit: float
    traffic: Traffic
    transactions: int
    failed: int
    sim_transactions: int
    gap_violations: int
    max_lateness: float
    lost: Breakdown

    @property
    def efficiency(self) -> float:
        """Wire-time limit over cycle time."""
        return efficiency(self.limit, self.cycle)


async def measure(case: Case, polls: int, meters: int = METERS) -> Result:
    """Poll all meters ``polls`` times; keep the poll with the median cycle time."""
    addresses = case.addresses(meters)
    host = await SimHost.start([SimBus(case.settings, tuple((case.profile, a) for a in addresses))])
    link = LinkConfig(kind="serial", device=host.paths[0], serial=case.settings)
    bus = Bus(link, [MeterConfig(a, case.profile, case.wire) for a in addresses], timeout=1.0)
    results = []
    try:
        await bus.open()
        for _ in range(polls):
            before = (
                bus.stats.transactions,
                bus.stats.frames,
                bus.stats.bytes_sent,
                bus.stats.bytes_received,
            )
            sim_before = (await host.stats())[0]
            await host.fetch()
            host.clear()
            started = time.monotonic()
            readings = await bus.poll()
            cycle = time.monotonic() - started
            sim_after = (await host.stats())[0]
            log = (await host.fetch())[0]
            s = bus.stats
            # Every reply frame follows a request frame: frames on the wire = 2 x replies.
            traffic = Traffic(
                s.bytes_sent - before[2], s.bytes_received - before[3], 2 * (s.frames - before[1])
            )
            results.append(
                Result(
                    case=case,
                    meters=meters,
                    cycle=cycle,
                    limit=wire_time_limit(traffic, case.settings, case.wire),
                    traffic=traffic,
                    transactions=s.transactions - before[0],
                    failed=sum(not isinstance(r, Reading) for r in readings.values()),
                    sim_transactions=int(sim_after["transactions"] - sim_before["transactions"]),
                    gap_violations=int(sim_after["gap_violations"] - sim_before["gap_violations"]),
                    max_lateness=sim_after["max_lateness"],
                    lost=breakdown(log, case.settings.char_time, SILENCE_CHARS[case.wire]),
                )
            )
    finally:
        await bus.close()
        await host.close()
    results.sort(key=lambda r: r.efficiency)
    return results[len(results) // 2]


def figures(results: list[Result]) -> list[Figure]:
    """One line per case, then the worst as the headline."""
    out = []
    for r in results:
        s = r.case.settings
        t = r.traffic
        out.append(
            Figure(
                f"P1-bus-efficiency-{r.case.slug}",
                round(r.efficiency, 3),
                context=(
                    f"{r.meters} x {r.case.profile} ({r.case.wire}), {s.baudrate} "
                    f"{s.bytesize}{s.parity}{s.stopbits}, char {s.char_time * 1e3:.3f} ms, "
                    f"turnaround 0",
                    f"{r.transactions} transactions ({r.sim_transactions} answered by the "
                    f"simulator), {t.frames} frames, {t.bytes_sent} + {t.bytes_received} bytes, "
                    f"{r.failed} meters failed, {r.gap_violations} silence violations",
                    f"wire-time limit {r.limit:.3f} s, measured cycle {r.cycle:.3f} s, "
                    f"simulator max pacing lateness {r.max_lateness * 1e3:.1f} ms",
                    f"time lost: poller {r.lost.poller_total:.3f} s (median "
                    f"{r.lost.poller_median * 1e3:.2f} ms per transaction), simulator "
                    f"{r.lost.simulator_total:.3f} s (median "
                    f"{r.lost.simulator_median * 1e3:.2f} ms)",
                ),
            )
        )
    worst = min(results, key=lambda r: r.efficiency)
    out.append(
        Figure(
            "P1-bus-efficiency",
            round(worst.efficiency, 3),
            ">= 0.90",
            (f"worst of the {len(results)} cases above: {worst.case.slug}",),
        )
    )
    return out
