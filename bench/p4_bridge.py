"""P4: how fast the daemon's terminal bridge decodes and republishes, against a plain subscriber.

One run, one Mosquitto (started here on a free port), one flood of QoS 0 JSON readings
from several terminals published by ``mosquitto_pub -l`` (C, so the publishers are not
the bottleneck). The same flood is received three times, one after the other:

1. by a plain aiomqtt subscriber that only counts messages (``async for``);
2. by the edge agent daemon (``edge_agent.daemon.app.Daemon``, in this process): decode,
   verify the sequence, write ahead to its SQLite spool, republish each state at QoS 1
   and forget it after the broker's PUBACK;
3. by ``mosquitto_sub -C N`` (context only).

Rates are messages / (last - first arrival) for 1 and messages / (last PUBACK - first
arrival) for 2. Phases 1 and 2 alternate for several rounds so both see the same load
on a shared machine; ``P4-bridge-vs-subscriber`` is the median of the per-round ratios
(goal >= 0.5). CPU time per message of this process is printed for context: it does not
depend on what else the machine runs.

Usage: .venv/bin/python bench/p4_bridge.py [--quick] [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.daemon.app import Daemon
from edge_agent.daemon.config import parse_config
from edge_agent.terminal_sim import FleetOptions, TerminalFleet

MOSQUITTO = "/usr/sbin/mosquitto"
IDLE = 5.0  # seconds without progress that end a phase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "max_queued_messages 0",
        "max_queued_bytes 0",
        "max_inflight_messages 0",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    log = (workdir / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("mosquitto did not start")


def write_flood(workdir: Path, terminals: int, messages: int) -> list[tuple[str, Path]]:
    """One file of JSON readings (one per line) per terminal; returns (topic, file)."""
    fleet = TerminalFleet(FleetOptions(count=terminals, encoding="json"))
    per = messages // terminals
    now = time.time()
    files = []
    for terminal in fleet.terminals:
        path = workdir / f"{terminal.id}.jsonl"
        lines = [fleet.emit(terminal, now + i)[0] for i in range(per)]
        path.write_bytes(b"\n".join(lines) + b"\n")
        files.append((fleet.up_topic(terminal), path))
    return files


def flood(port: int, files: list[tuple[str, Path]]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            ["mosquitto_pub", "-p", str(port), "-q", "0", "-t", topic, "-l"],
            stdin=path.open("rb"),
        )
        for topic, path in files
    ]


def wait_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.wait(timeout=120)


@dataclass(frozen=True)
class Phase:
    """One reception of the flood."""

    rate: float  # messages per second, first arrival to last message handled
    cpu: float  # CPU seconds of this process per message


async def plain_subscriber(port: int, files: list[tuple[str, Path]], total: int) -> Phase:
    count = 0
    first = last = 0.0
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe("gridmeter/+/up", qos=0)
        cpu = time.process_time()
        procs = flood(port, files)

        async def receive() -> None:
            nonlocal count, first, last
            async for _ in client.messages:
                last = time.perf_counter()
                if not count:
                    first = last
                count += 1
                if count == total:
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receive(), timeout=120)
        cpu = time.process_time() - cpu
        await asyncio.to_thread(wait_all, procs)
    if count != total:
        print(f"  plain subscriber: only {count} of {total} messages arrived")
    return Phase(count / (last - first) if count > 1 else 0.0, cpu / max(count, 1))


async def bridge(
    port: int, files: list[tuple[str, Path]], total: int, workdir: Path, run: int
) -> Phase:
    config = parse_config(
        {
            "mqtt": {"host": "127.0.0.1", "port": port, "client_id": f"p4-bridge-{run}"},
            "terminals": [{"id": topic.split("/")[1]} for topic, _ in files],
            "spool": {"path": str(workdir / f"spool-{run}.db"), "max_entries": 10 * total},
        }
    )
    daemon = Daemon(config)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.connected.wait(), 10)
    stats = daemon.stats
    cpu = time.process_time()
    procs = flood(port, files)
    first = 0.0
    progress, last_change = (-1, -1), time.perf_counter()
    while stats.published < total:
        now = time.perf_counter()
        if stats.received and not first:
            first = now
        # Under a flood PUBACKs queue behind the backlog: receiving is progress too.
        if (stats.received, stats.published) != progress:
            progress, last_change = (stats.received, stats.published), now
        elif now - last_change > IDLE:
            break
        await asyncio.sleep(0.001)
    end = time.perf_counter()
    cpu = time.process_time() - cpu
    await asyncio.to_thread(wait_all, procs)
    daemon.stop()
    await task
    if stats.published != total or stats.accepted != total:
        print(
            f"  bridge: received {stats.received}, accepted {stats.accepted}, "
            f"spooled {stats.spooled}, published (PUBACKed) {stats.published} of {total}"
        )
    return Phase(stats.published / (end - first) if first else 0.0, cpu / max(stats.published, 1))


def mosquitto_sub_rate(port: int, files: list[tuple[str, Path]], total: int) -> float:
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(port), "-q", "0", "-t", "gridmeter/+/up", "-C", str(total)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let it subscribe
    started = time.perf_counter()
    procs = flood(port, files)
    try:
        sub.wait(timeout=120)
    except subprocess.TimeoutExpired:
        sub.kill()
        return 0.0
    elapsed = time.perf_counter() - started
    wait_all(procs)
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller flood (< 60 s)")
    parser.add_argument("--messages", type=int, default=None, help="per flood")
    parser.add_argument("--rounds", type=int, default=None, help="plain/bridge pairs")
    parser.add_argument("--terminals", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("mosquitto_pub") or not Path(MOSQUITTO).exists():
        raise SystemExit("needs mosquitto and mosquitto-clients (scripts/setup installs them)")
    messages = args.messages or (15_000 if args.quick else 60_000)
    messages -= messages % args.terminals
    rounds = args.rounds or 3
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="p4-") as tmp:
        workdir = Path(tmp)
        proc, port = start_broker(workdir)
        try:
            files = write_flood(workdir, args.terminals, messages)
            size = sum(p.stat().st_size for _, p in files) / messages
            print(
                f"flood: {messages} QoS 0 JSON readings ({size:.0f} bytes) from "
                f"{args.terminals} terminals, mosquitto on 127.0.0.1:{port}, {rounds} rounds"
            )
            ratios, plains, bridges = [], [], []
            for run in range(rounds):  # alternate, so both see the same machine load
                plain = asyncio.run(plain_subscriber(port, files, messages))
                bridged = asyncio.run(bridge(port, files, messages, workdir, run))
                plains.append(plain)
                bridges.append(bridged)
                ratios.append(bridged.rate / plain.rate if plain.rate else 0.0)
                print(
                    f"  round {run + 1}: plain {plain.rate:,.0f} msg/s, "
                    f"bridge {bridged.rate:,.0f} msg/s, ratio {ratios[-1]:.2f}"
                )
            sub = mosquitto_sub_rate(port, files, messages)
            plain_rate = statistics.median(p.rate for p in plains)
            bridge_rate = statistics.median(b.rate for b in bridges)
            plain_cpu = statistics.median(p.cpu for p in plains) * 1e6
            bridge_cpu = statistics.median(b.cpu for b in bridges) * 1e6
            print(f"plain-aiomqtt-subscriber: {plain_rate:,.0f} msg/s ({plain_cpu:.0f} µs CPU/msg)")
            print(
                f"bridge (decode + spool + QoS 1 republish + PUBACK): {bridge_rate:,.0f} msg/s "
                f"({bridge_cpu:.0f} µs CPU/msg)"
            )
            print(f"mosquitto_sub: {sub:,.0f} msg/s (flood start to last message)")
            print(f"CPU-per-message ratio (plain / bridge): {plain_cpu / bridge_cpu:.2f}")
            print(f"P4-bridge-vs-subscriber: {statistics.median(ratios):.2f}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
