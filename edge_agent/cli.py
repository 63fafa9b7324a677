"""The ``edge-agent`` command line: read, scan, decode, simulate, profiles.

Bad input prints one line on stderr and exits non-zero; ``--json`` prints JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .bus import Bus, MeterConfig
from .cli_daemon import add_daemon_commands
from .decode import decode_capture
from .errors import EdgeAgentError
from .indicators.instant import instant_indicators
from .link import LinkConfig
from .model import SerialSettings, Wire
from .profiles import all_profiles, load_profile
from .simulator import serve_from_cli

EXIT_USAGE = 2
EXIT_FAILED = 1


class UsageError(EdgeAgentError):
    """The command line itself is wrong."""


def _link_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocol", required=True, choices=[w.value for w in Wire], help="what the meters speak"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", metavar="DEVICE", help="serial device, e.g. /dev/ttyUSB0")
    where.add_argument("--tcp", metavar="HOST:PORT", help="TCP gateway or Modbus TCP endpoint")
    parser.add_argument("--baud", type=int, default=None, help="default 9600 (2400 for DL/T 645)")
    parser.add_argument("--parity", choices=["N", "E", "O"], default=None)
    parser.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a reply")


def _link_config(args: argparse.Namespace) -> LinkConfig:
    wire = Wire(args.protocol)
    is_dlt = wire in (Wire.DLT645_2007, Wire.DLT645_1997)
    settings = SerialSettings(
        baudrate=args.baud or (2400 if is_dlt else 9600),
        parity=args.parity or ("E" if is_dlt else "N"),
        stopbits=args.stopbits,
    )
    if args.serial:
        return LinkConfig(kind="serial", device=args.serial, serial=settings)
    host, sep, port = str(args.tcp).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--tcp wants HOST:PORT, got {args.tcp!r}")
    return LinkConfig(kind="tcp", host=host, port=int(port), serial=settings)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    read = sub.add_parser("read", help="read every quantity of one meter once")
    _link_arguments(read)
    read.add_argument("--address", required=True, help="Modbus unit id or DL/T 645 address")
    read.add_argument("--profile", required=True, help="profile id (see `edge-agent profiles`)")
    read.add_argument("--json", action="store_true")

    scan = sub.add_parser("scan", help="find the meters on a bus")
    _link_arguments(scan)
    scan.add_argument(
        "--addresses",
        help="Modbus: unit-id range like 1-32; DL/T 645: comma-separated addresses to probe",
    )
    scan.add_argument("--json", action="store_true")

    decode = sub.add_parser("decode", help="explain a captured frame")
    decode.add_argument(
        "--protocol", required=True, choices=["dlt645-2007", "dlt645-1997", "modbus-rtu"]
    )
    decode.add_argument("--json", action="store_true")
    decode.add_argument("hex", nargs="+", help="frame bytes in hex, spaces allowed")

    sim = sub.add_parser("simulate", help="serve simulated meters on a pty or TCP port")
    sim.add_argument(
        "--meter",
        action="append",
        required=True,
        metavar="PROFILE:ADDRESS",
        help="a meter to simulate (repeatable), e.g. eastron-sdm630:1",
    )
    where = sim.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pty (default)")
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve on a TCP port (0 = any free)")
    sim.add_argument("--mbap", action="store_true", help="speak Modbus TCP on --tcp")
    sim.add_argument("--baud", type=int, default=9600)
    sim.add_argument("--parity", choices=["N", "E", "O"], default="N")
    sim.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    sim.add_argument("--time-scale", type=float, default=1.0, help="run the meters' clock faster")
    sim.add_argument("--unbalance", type=float, default=None, help="extra phase unbalance (0..1)")
    sim.add_argument("--silent", action="append", default=[], metavar="ADDRESS")
    sim.add_argument("--corrupt-rate", type=float, default=0.0, help="share of corrupted replies")
    sim.add_argument("--delay", type=float, default=0.0, help="extra answer delay in seconds")
    sim.add_argument("--json", action="store_true", help="print where it serves as JSON")

    profiles = sub.add_parser("profiles", help="list the meter profiles")
    profiles.add_argument("--json", action="store_true")
    add_daemon_commands(sub)
    return parser


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, ensure_ascii=False) if args.json else text)


async def _cmd_read(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    meter = MeterConfig(args.address, profile.id, Wire(args.protocol))
    async with Bus(_link_config(args), timeout=args.timeout) as bus:
        reading = await bus.probe(meter)
    indicators = instant_indicators(reading.values, nominal_voltage=profile.nominal_voltage)
    payload = {
        "address": reading.address,
        "profile": reading.profile,
        "timestamp": reading.timestamp,
        "values": dict(reading.values),
        "units": reading.units,
        "missing": sorted(reading.missing),
        "indicators": indicators,
    }
    lines = [f"{reading.profile} @ {reading.address}"]
    lines += [f"  {k:<32} {v} {reading.units[k] or ''}".rstrip() for k, v in reading.values.items()]
    lines += [f"  {k:<32} {v:.3f}" for k, v in indicators.items()]
    _print(args, payload, "\n".join(lines))
    return 0


def _scan_addresses(wire: Wire, spec: str | None) -> list[str] | None:
    if not spec:
        return None
    if wire in (Wire.MODBUS_RTU, Wire.MODBUS_TCP):
        low, sep, high = spec.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise UsageError(f"--addresses wants a range like 1-32, got {spec!r}") from None
        if not 1 <= first <= last <= 247:
            raise UsageError("Modbus unit ids are 1..247")
        return [str(u) for u in range(first, last + 1)]
    return [a.strip() for a in spec.split(",") if a.strip()]


async def _cmd_scan(args: argparse.Namespace) -> int:
    wire = Wire(args.protocol)
    addresses = _scan_addresses(wire, args.addresses)
    async with Bus(_link_config(args)) as bus:
        found = await bus.scan(wire, addresses, timeout=min(args.timeout, 0.3))
    payload = {"meters": [{"address": f.address, "protocol": f.wire.value} for f in found]}
    text = "\n".join(f"{f.wire.value} {f.address}" for f in found) or "no meters found"
    _print(args, payload, text)
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    text = "".join(args.hex).replace(" ", "")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise UsageError("frame bytes must be hexadecimal") from None
    explained = decode_capture(args.protocol, data)
    lines = [f"{k}: {v}" for k, v in explained.items() if k != "values"]
    lines += [f"  {k} = {v}" for k, v in explained.get("values", {}).items()]
    _print(args, explained, "\n".join(lines))
    return 0


async def _cmd_simulate(args: argparse.Namespace) -> int:
    await serve_from_cli(args)
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    rows = [
        {
            "id": p.id,
            "manufacturer": p.manufacturer,
            "model": p.model,
            "protocol": p.protocol.value,
            "quantities": len(p.keys),
            "source": p.source,
        }
        for p in all_profiles().values()
    ]
    text = "\n".join(
        f"{r['id']:<22} {r['protocol']:<12} {r['manufacturer']} {r['model']} "
        f"({r['quantities']} quantities)"
        for r in rows
    )
    _print(args, {"profiles": rows}, text)
    return 0


_ASYNC_COMMANDS = {"read": _cmd_read, "scan": _cmd_scan, "simulate": _cmd_simulate}
_COMMANDS = {"decode": _cmd_decode, "profiles": _cmd_profiles}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edge-agent`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "handler"):  # run, simulate-terminals
            return int(args.handler(args))
        if args.command in _ASYNC_COMMANDS:
            return asyncio.run(_ASYNC_COMMANDS[args.command](args))
        return _COMMANDS[args.command](args)
    except UsageError as err:
        print(f"edge-agent: {err}", file=sys.stderr)
        return EXIT_USAGE
    except EdgeAgentError as err:
        print(f"edge-agent: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
