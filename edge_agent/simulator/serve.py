"""Convenience entry points: ``async with simulate(...)`` for tests, and the CLI server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from typing import Literal

from ..errors import ConfigError
from ..model import SerialSettings
from .engine import BusSimulator
from .faults import Faults
from .meter import SimMeter
from .pty import PtyServer, start_pty
from .tcp import TcpServer, start_tcp
from .values import MILD_UNBALANCE


@asynccontextmanager
async def simulate(
    meters: Sequence[SimMeter],
    settings: SerialSettings | None = None,
    *,
    transport: Literal["pty", "tcp"] = "pty",
    host: str = "127.0.0.1",
    port: int = 0,
    mbap: bool = False,
    turnaround: float = 0.0,
    time_scale: float = 1.0,
) -> AsyncIterator[PtyServer | TcpServer]:
    """Serve ``meters`` for the duration of the block; the server's ``.sim`` is the bus."""
    sim = BusSimulator(meters, settings, turnaround=turnaround, time_scale=time_scale)
    server: PtyServer | TcpServer
    if transport == "pty":
        server = await start_pty(sim)
    elif transport == "tcp":
        server = await start_tcp(sim, host, port, mbap=mbap)
    else:
        raise ConfigError(f"transport must be 'pty' or 'tcp', got {transport!r}")
    try:
        yield server
    finally:
        await server.close()


def meters_from_cli(args: argparse.Namespace) -> list[SimMeter]:
    """SimMeters from ``--meter PROFILE:ADDRESS`` and the fault options of ``simulate``."""
    silent = set(args.silent or ())
    meters = []
    for spec in args.meter:
        profile, sep, address = spec.rpartition(":")
        if not sep or not profile or not address:
            raise ConfigError(f"--meter needs PROFILE:ADDRESS, got {spec!r}")
        faults = Faults(silent=address in silent, corrupt_rate=args.corrupt_rate, delay=args.delay)
        meter = SimMeter(profile=profile, address=address, faults=faults)
        if args.unbalance is not None:
            meter = replace(meter, unbalance=MILD_UNBALANCE + args.unbalance)
        meters.append(meter)
    return meters


def _tcp_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--tcp needs HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


async def serve_from_cli(args: argparse.Namespace) -> None:
    """Run ``edge-agent simulate`` until cancelled: print where it serves, then the counters."""
    settings = SerialSettings(baudrate=args.baud, parity=args.parity, stopbits=args.stopbits)
    sim = BusSimulator(meters_from_cli(args), settings, time_scale=args.time_scale)
    server: PtyServer | TcpServer
    if args.tcp:
        host, port = _tcp_address(args.tcp)
        server = await start_tcp(sim, host, port, mbap=args.mbap)
        where = {"transport": "tcp", "host": server.host, "port": server.port, "mbap": args.mbap}
        text = f"serving {len(sim.meters)} meters on tcp://{server.host}:{server.port}"
    else:
        server = await start_pty(sim)
        where = {"transport": "pty", "path": server.path}
        text = f"serving {len(sim.meters)} meters on {server.path}"
    where["meters"] = [f"{m.profile.id}:{m.address}" for m in sim.meters]
    print(json.dumps(where) if args.json else f"{text} (Ctrl-C to stop)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
        print(f"counters: {json.dumps(asdict(sim.stats))}", file=sys.stderr, flush=True)
