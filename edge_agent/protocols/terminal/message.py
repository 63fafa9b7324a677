"""What travels between a terminal and the daemon, independent of the encoding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ...model import Value

#: Largest sequence number, timestamp and command id (unsigned 32-bit).
U32_MAX = 0xFFFF_FFFF
#: Longest meter address a command may name.
MAX_METER_LEN = 32


class Encoding(StrEnum):
    """How a terminal encodes its payloads."""

    JSON = "json"
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class TerminalMessage:
    """One reading published by a terminal on its ``up`` topic."""

    terminal_id: str
    #: Counter incremented per message, 0 after each boot.
    seq: int
    #: Unix time in seconds when the values were read; 0 when the terminal clock is not set.
    timestamp: int
    values: Mapping[str, Value]


class CommandKind(StrEnum):
    """What a command asks the terminal to do."""

    RELAY_TRIP = "relay_trip"
    RELAY_CLOSE = "relay_close"
    TIME_SYNC = "time_sync"


@dataclass(frozen=True, slots=True)
class Command:
    """A command published by the daemon on a terminal's ``down`` topic."""

    #: Increasing id the terminal echoes in its ack; ids at or below the last executed are stale.
    id: int
    kind: CommandKind
    #: Unix time in seconds when the command was issued; ``time_sync`` sets the clock to it.
    issued_at: int
    #: Address of the meter behind the terminal; None for the terminal's only meter.
    meter: str | None = None


class AckStatus(StrEnum):
    """Outcome of a command, reported by the terminal."""

    OK = "ok"
    #: Understood but not carried out (meter refused or did not answer).
    FAILED = "failed"
    #: The terminal does not implement this command kind.
    UNSUPPORTED = "unsupported"
    #: Refused: bad MAC, stale id or expired timestamp.
    REJECTED = "rejected"
    #: The command payload could not be decoded.
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Ack:
    """A terminal's answer to a command, published on its ``ack`` topic."""

    command_id: int
    status: AckStatus
    #: Free text (JSON encoding only; the binary encoding has no room for it).
    detail: str = ""
