"""The ``edge-agent run`` and ``edge-agent simulate-terminals`` sub-commands.

``add_daemon_commands(subparsers)`` adds both parsers; each sets ``handler`` to the
function that runs it (``handler(args) -> exit code``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from .daemon.app import run_daemon
from .daemon.config import load_config
from .errors import ConfigError, EdgeAgentError
from .terminal_sim import BrokerOptions, FleetOptions, TerminalFleet, run_fleet

EXIT_USAGE = 2


def add_daemon_commands(subparsers: Any) -> None:
    """Add ``run`` and ``simulate-terminals`` to the ``edge-agent`` sub-command parsers."""
    run = subparsers.add_parser(
        "run", help="run the daemon: poll buses, bridge terminals, publish to MQTT"
    )
    run.add_argument("config", metavar="CONFIG.yaml", help="daemon configuration file")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--check", action="store_true", help="validate the configuration and exit")
    run.set_defaults(handler=cmd_run)

    sim = subparsers.add_parser(
        "simulate-terminals", help="publish readings of simulated NB-IoT terminals"
    )
    sim.add_argument("--broker", required=True, metavar="HOST:PORT")
    sim.add_argument("--count", type=int, default=1, help="number of terminals")
    sim.add_argument("--encoding", choices=["json", "binary", "both"], default="json")
    sim.add_argument("--rate", type=float, default=1.0, help="readings per second, all terminals")
    sim.add_argument(
        "--messages",
        type=int,
        default=None,
        help="readings per terminal (default: run until stopped)",
    )
    sim.add_argument("--duplicates", type=float, default=0.0, metavar="P", help="share sent twice")
    sim.add_argument("--out-of-order", type=float, default=0.0, metavar="P", help="share sent late")
    sim.add_argument(
        "--malformed",
        type=float,
        default=0.0,
        metavar="P",
        help="share followed by a malformed payload",
    )
    sim.add_argument("--hmac-key", metavar="HEX", help="sign every payload with this key")
    sim.add_argument("--mac-length", type=int, choices=[8, 16, 32], default=16)
    sim.add_argument("--prefix", default="sim", help="terminal ids are PREFIX-0001, …")
    sim.add_argument("--profile", default="dlt645-2007-1phase", help="meter profile of the values")
    sim.add_argument("--base-topic", default="gridmeter")
    sim.add_argument("--qos", type=int, choices=[0, 1], default=1)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--username")
    sim.add_argument("--password")
    sim.add_argument(
        "--per-terminal-login",
        action="store_true",
        help="one connection per terminal, user name = terminal id (as the ACL expects)",
    )
    sim.add_argument("--tls-ca", metavar="FILE")
    sim.add_argument("--tls-cert", metavar="FILE")
    sim.add_argument("--tls-key", metavar="FILE")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.set_defaults(handler=cmd_simulate_terminals)


def cmd_run(args: argparse.Namespace) -> int:
    """``edge-agent run CONFIG.yaml``."""
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"edge-agent: {args.config}: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(f"{args.config}: ok ({len(config.buses)} buses, {len(config.terminals)} terminals)")
        return 0
    try:
        asyncio.run(run_daemon(config))
    except EdgeAgentError as err:
        print(f"edge-agent: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_simulate_terminals(args: argparse.Namespace) -> int:
    """``edge-agent simulate-terminals --broker HOST:PORT …``."""
    host, sep, port = str(args.broker).rpartition(":")
    if not sep or not host or not port.isdigit():
        print(f"edge-agent: --broker wants HOST:PORT, got {args.broker!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        key = bytes.fromhex(args.hmac_key) if args.hmac_key else None
    except ValueError:
        print("edge-agent: --hmac-key must be hex", file=sys.stderr)
        return EXIT_USAGE
    options = FleetOptions(
        count=args.count,
        encoding=args.encoding,
        prefix=args.prefix,
        profile=args.profile,
        hmac_key=key,
        mac_len=args.mac_length,
        duplicates=args.duplicates,
        out_of_order=args.out_of_order,
        malformed=args.malformed,
        seed=args.seed,
        base_topic=args.base_topic,
    )
    broker = BrokerOptions(
        host=host,
        port=int(port),
        username=args.username,
        password=args.password,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        per_terminal_login=args.per_terminal_login,
        qos=args.qos,
    )
    try:
        fleet = TerminalFleet(options)
        stats = asyncio.run(run_fleet(fleet, broker, rate=args.rate, messages=args.messages))
    except EdgeAgentError as err:
        print(f"edge-agent: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stats = fleet.stats
    summary = stats.as_dict()
    if args.json:
        print(json.dumps(summary))
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``run`` or ``simulate-terminals`` on their own (``python -m edge_agent.cli_daemon``)."""
    parser = argparse.ArgumentParser(prog="edge-agent")
    add_daemon_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
