"""``bench/run``: every benchmark figure of Grid Meter in one run.

Prints ``P<n>-<slug>: <value>`` lines (with the goal and whether it is met) followed by
indented context lines; ``# `` lines describe the run. Progress goes to stderr.

The full run measures one thing at a time. ``--quick`` (under 5 minutes on two cores)
measures P1 and the campus's single bus first, alone, then runs P3, P4 and P2 side by
side (P2 once P3's Home Assistants are up), with smaller samples: P1 polls 8 meters per
case (4 at 2400 baud) instead of 32, P2 takes one Grid Meter poll instead of the median
of three, P3 measures one poll period instead of eight and skips the settling round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from . import p1_efficiency, p2_peer, p3_campus, ptyparity
from .report import Figure, emit, note, progress

ROOT = Path(__file__).resolve().parent.parent
P4_SCRIPT = ROOT / "bench" / "p4_bridge.py"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.strip()
    return out.stdout.strip() + ("+changes" if dirty else "")


def header(args: argparse.Namespace) -> None:
    """Describe the machine and the software measured."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    note(
        f"bench/run{' --quick' if args.quick else ''} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        f", commit {_commit()}"
    )
    note(
        f"{os.cpu_count()} cores, load average {load}; Python {platform.python_version()}, "
        f"Home Assistant {_version('homeassistant')}, pymodbus {_version('pymodbus')}, "
        f"pyserial-asyncio-fast {_version('pyserial-asyncio-fast')}"
    )


async def run_p1(quick: bool) -> list[Figure]:
    """P1, one case after the other."""
    results = []
    for case in p1_efficiency.CASES:
        meters = p1_efficiency.METERS
        if quick:  # the efficiency is per transaction: fewer meters, same figure
            meters = 4 if case.settings.baudrate < 9600 else 8
        progress(f"P1 {case.slug}: polling {meters} meters")
        polls = 1 if quick or case.settings.baudrate < 9600 else 3  # 2400 baud: 85 s a poll
        results.append(await p1_efficiency.measure(case, polls=polls, meters=meters))
    return p1_efficiency.figures(results)


async def run_p2(workdir: Path, quick: bool) -> list[Figure]:
    """P2 for both quantity sets (side by side when quick)."""
    results: list[p2_peer.PeerCycles]
    if quick:
        results = list(
            await asyncio.gather(
                p2_peer.measure_set("mbmd37", workdir, quick),
                p2_peer.measure_set("basic", workdir, quick),
            )
        )
    else:
        results = [await p2_peer.measure_set(n, workdir, quick) for n in ("mbmd37", "basic")]
    return [figure for result in results for figure in p2_peer.figures(result)]


async def run_p3(
    workdir: Path, quick: bool, solo: float, profile: Path | None, started: asyncio.Event
) -> list[Figure]:
    """P3."""
    return p3_campus.figures(await p3_campus.measure(workdir, quick, solo, profile, started))


async def run_p4(quick: bool) -> list[str]:
    """P4 from its own script, when it exists; its lines are passed through."""
    if not P4_SCRIPT.exists():
        return ["P4-bridge-vs-subscriber: not measured (bench/p4_bridge.py is missing)"]
    progress("P4: bridge against a plain subscriber")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(P4_SCRIPT),
        *(["--quick"] if quick else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    out, _ = await process.communicate()
    lines = out.decode(errors="replace").splitlines()
    if process.returncode != 0 or not any(line.startswith("P4-") for line in lines):
        tail = " | ".join(lines[-3:])
        return [f"P4-bridge-vs-subscriber: not measured (exit {process.returncode}: {tail})"]
    return lines


async def guarded[T](name: str, job: Callable[[], Awaitable[T]], fallback: T) -> T:
    """Run one benchmark; a failure prints why and lets the others go on."""
    try:
        return await job()
    except Exception as err:  # one broken benchmark must not hide the others
        note(f"{name} failed: {type(err).__name__}: {err}")
        return fallback


def _failed(*names: str) -> list[Figure]:
    return [Figure(name, "not measured (see the # line above)") for name in names]


P2_NAMES = (
    "P2-cycle-speedup",
    "P2-transaction-ratio",
    "P2-basic-cycle-speedup",
    "P2-basic-transaction-ratio",
)
P3_NAMES = ("P3-overhead-ratio", "P3-loop-lag-p99-ms", "P3-cycle-over-slowest-bus")


async def run(args: argparse.Namespace, workdir: Path) -> None:
    """All benchmarks, in the order and overlap the mode asks for."""
    quick = args.quick
    only = set(args.only.split(",")) if args.only else {"P1", "P2", "P3", "P4"}
    started = time.monotonic()
    if "P1" in only:
        for figure in await guarded("P1", lambda: run_p1(quick), _failed("P1-bus-efficiency")):
            emit(figure)
    solo = 0.0
    if "P3" in only:
        progress("P3: one bus alone (edge agent, no Home Assistant)")
        solo = await guarded("P3 single bus", p3_campus.solo_cycle, 0.0)

    async def p2() -> list[Figure]:
        if "P2" not in only:
            return []
        return await guarded("P2", lambda: run_p2(workdir, quick), _failed(*P2_NAMES))

    p3_started = asyncio.Event()

    async def p3() -> list[Figure]:
        try:
            if "P3" not in only:
                return []
            if not solo:
                return _failed(*P3_NAMES)
            return await guarded(
                "P3",
                lambda: run_p3(workdir, quick, solo, args.profile, p3_started),
                _failed(*P3_NAMES),
            )
        finally:
            p3_started.set()

    async def p2_after_p3_started() -> list[Figure]:
        await p3_started.wait()  # six Home Assistants starting at once would take minutes
        return await p2()

    async def p4() -> list[str]:
        if "P4" not in only:
            return []
        return await guarded("P4", lambda: run_p4(quick), ["P4-bridge-vs-subscriber: not measured"])

    if quick:
        # P3's Home Assistants start while P4 runs; P2's start once P3's are up.
        p2_figures, p3_figures, p4_lines = await asyncio.gather(p2_after_p3_started(), p3(), p4())
    else:
        p2_figures = await p2()
        p3_figures = await p3()
        p4_lines = await p4()
    for figure in [*p2_figures, *p3_figures]:
        emit(figure)
    for line in p4_lines:
        print(line, flush=True)
    note(
        f"finished in {time.monotonic() - started:.0f} s; reproduce with: bench/run"
        f"{' --quick' if quick else ''}"
    )


def main() -> None:
    """Entry point of ``bench/run``."""
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, under 5 minutes")
    parser.add_argument("--only", help="comma-separated subset of P1,P2,P3,P4")
    parser.add_argument("--keep", action="store_true", help="keep the Home Assistant config dirs")
    parser.add_argument("--profile", type=Path, help="cProfile P3's Home Assistants into DIR")
    args = parser.parse_args()
    ptyparity.install()
    header(args)
    workdir = Path(tempfile.mkdtemp(prefix="grid-meter-bench-"))
    try:
        asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            note(f"Home Assistant config dirs kept in {workdir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
