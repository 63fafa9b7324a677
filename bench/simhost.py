"""A separate process that serves simulated buses on ptys and reports what crossed them.

Started by :class:`bench.simclient.SimHost`; the simulator gets its own event loop, so the
software under test never shares one with the wire. Reads one JSON spec from argv, prints
``{"paths": [...]}`` when the ptys are open, then answers stdin commands with one JSON line
each: ``log`` (transactions since the last ``log``, per bus), ``stats`` (counters per
bus), ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from edge_agent.model import SerialSettings
from edge_agent.simulator import PtyServer, SimMeter, start_pty

from .recording import RecordingSimulator, stats_dict


def build(spec: dict[str, Any]) -> list[RecordingSimulator]:
    """Build the simulators of a spec.

    ``{"buses": [{"baud", "parity", "stopbits", "meters": [[profile, address]]}],
    "turnaround": seconds}``.
    """
    sims = []
    for bus in spec["buses"]:
        settings = SerialSettings(int(bus["baud"]), 8, str(bus["parity"]), int(bus["stopbits"]))
        meters = [SimMeter(profile, address) for profile, address in bus["meters"]]
        sims.append(RecordingSimulator(meters, settings, turnaround=float(spec["turnaround"])))
    return sims


def _answer(command: str, sims: list[RecordingSimulator], servers: list[PtyServer]) -> Any:
    if command == "log":
        logs = [[t.as_list() for t in sim.log] for sim in sims]
        for sim in sims:
            sim.log.clear()
        return {"log": logs}
    if command == "stats":
        return {
            "stats": [
                stats_dict(sim.stats) | {"dropped_bytes": server.dropped_bytes}
                for sim, server in zip(sims, servers, strict=True)
            ]
        }
    return {"error": f"unknown command {command!r}"}


async def serve(spec: dict[str, Any]) -> None:
    """Serve until ``quit`` or end of stdin."""
    loop = asyncio.get_running_loop()
    sims = build(spec)
    servers = [await start_pty(sim) for sim in sims]
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"paths": [s.path for s in servers]}), flush=True)
    try:
        while line := (await reader.readline()).decode().strip():
            if line == "quit":
                break
            print(json.dumps(_answer(line, sims, servers)), flush=True)
    finally:
        for server in servers:
            await server.close()


def main() -> None:
    """Entry point: ``python -m bench.simhost SPEC_JSON``."""
    asyncio.run(serve(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
