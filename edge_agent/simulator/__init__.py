"""Simulated meters on a real pty or TCP port, paced like a serial line.

Meters speak the same codecs as the agent, from the other side: Modbus RTU/TCP register
reads and DL/T 645-2007/1997 reads, history and commands, with values from a seeded
three-phase model that moves with (optionally accelerated) time. Faults (silence,
corrupt checksums, delays, line noise) can be switched while the bus runs, and counters
say what crossed the wire.

* Timing: with :class:`~edge_agent.model.SerialSettings` every reply byte reaches the
  port when its stop bit would have (see :mod:`.pacing`), so cycle times measured on a
  pty are wire times; without settings (Modbus TCP) replies go out at once.
* Clock: ``time_scale`` runs the meters' time faster (0 freezes it; values then stay
  exactly what ``values_at()`` says); the simulated time is Unix seconds.
* DL/T 645 wildcard (0x13 read address): real meters on one bus would all answer and
  collide, so the simulator answers only for a lone DL/T 645 meter, or for the one
  meter configured ``responds_to_wildcard=True``.

Typical use::

    sim = BusSimulator([SimMeter("eastron-sdm630", "1")], SerialSettings(9600))
    server = await start_pty(sim)        # open server.path with the serial code
    sim.meter("1").faults.silent = True  # the meter vanishes
    await server.close()
"""

from .clock import SimClock
from .engine import BusSession, BusSimulator, PlannedReply
from .faults import Faults
from .meter import FreezeRecord, SimMeter, SimMeterState
from .pty import PtyServer, start_pty
from .serve import meters_from_cli, serve_from_cli, simulate
from .stats import SimStats
from .tcp import TcpServer, start_tcp
from .values import MILD_UNBALANCE, STRONG_UNBALANCE, ModelOptions, ValueModel

__all__ = [
    "MILD_UNBALANCE",
    "STRONG_UNBALANCE",
    "BusSession",
    "BusSimulator",
    "Faults",
    "FreezeRecord",
    "ModelOptions",
    "PlannedReply",
    "PtyServer",
    "SimClock",
    "SimMeter",
    "SimMeterState",
    "SimStats",
    "TcpServer",
    "ValueModel",
    "meters_from_cli",
    "serve_from_cli",
    "simulate",
    "start_pty",
    "start_tcp",
]
