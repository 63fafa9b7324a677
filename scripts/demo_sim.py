#!/usr/bin/env python3
"""Serve the demo's simulated meters until SIGTERM or Ctrl-C.

Bus 1, an RS485 line on a pty: a Modbus SDM630 and DTSU666 and DL/T 645-2007 three-phase and
single-phase meters, reached through a stable symlink ``RUN_DIR/rs485-bus`` (as
/dev/serial/by-id names are). Bus 2, a transparent RS485-to-Ethernet gateway on
``127.0.0.1:GATEWAY_PORT``: a Modbus SDM120, DDSU666 and ADW300. When both are up the
process writes ``RUN_DIR/sim.json`` ({"serial": path, "gateway_port": port}).

Usage: demo_sim.py RUN_DIR [--gateway-port PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from edge_agent.model import SerialSettings
from edge_agent.simulator import (
    MILD_UNBALANCE,
    STRONG_UNBALANCE,
    BusSimulator,
    SimMeter,
    start_pty,
    start_tcp,
)

#: (address, profile) of the meters on each bus; the demo's config entries list the same.
SERIAL_METERS = (
    ("1", "eastron-sdm630"),
    ("2", "chint-dtsu666"),
    ("3", "eastron-sdm630"),
    ("000000000011", "dlt645-2007-3phase"),
    ("000000000012", "dlt645-2007-1phase"),
)
#: Serial-bus addresses of meters on a strongly unbalanced feeder: their voltage unbalance is
#: above the 2 % limit, so the integration raises advice about it after 10 minutes.
UNBALANCED = frozenset({"3"})
GATEWAY_METERS = (
    ("1", "eastron-sdm120"),
    ("2", "chint-ddsu666"),
    ("3", "acrel-adw300"),
)
#: Line settings of both buses (a pty refuses to be re-opened with parity, so 8N1).
LINE = SerialSettings(baudrate=9600)
#: Meters' load curves follow China Standard Time.
UTC_OFFSET = 8.0


def _meters(
    spec: tuple[tuple[str, str], ...], unbalanced: frozenset[str] = frozenset()
) -> list[SimMeter]:
    return [
        SimMeter(
            profile=p,
            address=a,
            utc_offset=UTC_OFFSET,
            unbalance=STRONG_UNBALANCE if a in unbalanced else MILD_UNBALANCE,
        )
        for a, p in spec
    ]


def _relink(link: Path, target: str) -> None:
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


async def serve(run_dir: Path, gateway_port: int) -> None:
    """Serve both buses until SIGTERM or SIGINT."""
    pty = await start_pty(BusSimulator(_meters(SERIAL_METERS, UNBALANCED), LINE))
    gateway = await start_tcp(
        BusSimulator(_meters(GATEWAY_METERS), LINE), "127.0.0.1", gateway_port
    )
    link = run_dir / "rs485-bus"
    _relink(link, pty.path)
    ready = run_dir / "sim.json"
    ready.write_text(json.dumps({"serial": str(link), "gateway_port": gateway.port}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        ready.unlink(missing_ok=True)
        await gateway.close()
        await pty.close()


def main(argv: list[str]) -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description="Serve the Grid Meter demo's simulated meters.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--gateway-port", type=int, default=0)
    args = parser.parse_args(argv)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.run_dir.resolve(), args.gateway_port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
