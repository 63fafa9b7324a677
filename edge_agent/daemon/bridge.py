"""The terminal bridge, sans-I/O: ``<base>/<id>/up`` payloads in, state messages out.

Each configured terminal gets a :class:`~edge_agent.protocols.terminal.TerminalCodec`
(which verifies its HMAC when a key is configured) and a
:class:`~edge_agent.protocols.terminal.SequenceTracker`. A payload is accepted when it
decodes, verifies and is fresh; duplicates and stale messages are dropped. Every verdict
is counted in :class:`~.stats.DaemonStats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..profiles import load_profile
from ..protocols.terminal import (
    Ack,
    AuthenticationError,
    Channel,
    Command,
    PayloadError,
    SequenceKind,
    SequenceTracker,
    TerminalCodec,
)
from .config import TerminalConfig
from .discovery import state_payload
from .message import Outgoing
from .stats import DaemonStats
from .topics import DaemonTopics


class Verdict(StrEnum):
    """Why a payload was not turned into a reading."""

    MALFORMED = "malformed"
    AUTH_FAILED = "auth_failed"
    UNKNOWN_TERMINAL = "unknown_terminal"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A payload the bridge dropped."""

    terminal_id: str
    verdict: Verdict
    detail: str = ""


@dataclass(slots=True)
class _Terminal:
    config: TerminalConfig
    codec: TerminalCodec
    tracker: SequenceTracker
    #: Quantity keys announced to Home Assistant (profile keys, then every key seen), as
    #: an insertion-ordered set.
    keys: dict[str, None]
    state_topic: str


class TerminalBridge:
    """Decodes, verifies and de-duplicates what the configured terminals publish."""

    def __init__(
        self,
        terminals: Sequence[TerminalConfig],
        topics: DaemonTopics,
        stats: DaemonStats,
        *,
        window: int = 256,
    ) -> None:
        """Prepare one codec and sequence tracker per terminal."""
        self.topics = topics
        self.stats = stats
        self._terminals = {
            t.id: _Terminal(
                t,
                TerminalCodec(t.id, t.encoding, t.hmac_key, t.mac_length),
                SequenceTracker(window),
                dict.fromkeys(load_profile(t.profile).keys if t.profile else ()),
                topics.terminals.topic(t.id, Channel.STATE),
            )
            for t in terminals
        }
        #: Terminals whose key set grew since :meth:`take_grown` was last called.
        self._grown: set[str] = {t.id for t in terminals if t.profile}
        #: Terminals that sent ``ts`` 0 (clock not set) since :meth:`take_clock_unset`.
        self._clock_unset: set[str] = set()

    @property
    def terminal_ids(self) -> list[str]:
        """The configured terminal ids."""
        return list(self._terminals)

    def config(self, terminal_id: str) -> TerminalConfig | None:
        """Return the configuration of a terminal, None if it is not configured."""
        terminal = self._terminals.get(terminal_id)
        return terminal.config if terminal else None

    def keys(self, terminal_id: str) -> list[str]:
        """Quantity keys of a terminal known so far: its profile's, then those seen."""
        return list(self._terminals[terminal_id].keys)

    def take_grown(self) -> list[str]:
        """Return and forget the terminals whose discovery must be (re)published."""
        grown, self._grown = sorted(self._grown), set()
        return grown

    def take_clock_unset(self) -> list[str]:
        """Return and forget the terminals that need a ``time_sync``."""
        unset, self._clock_unset = sorted(self._clock_unset), set()
        return unset

    # --- readings -----------------------------------------------------------------------

    def reading(self, terminal_id: str, payload: bytes, now: float) -> Outgoing | Rejected:
        """Turn one ``up`` payload into the terminal's state message, or say why not."""
        stats = self.stats
        stats.received += 1
        terminal = self._terminals.get(terminal_id)
        if terminal is None:
            stats.unknown_terminal += 1
            return Rejected(terminal_id, Verdict.UNKNOWN_TERMINAL)
        try:
            message = terminal.codec.decode_reading(payload)
        except AuthenticationError as err:
            stats.auth_failed += 1
            return Rejected(terminal_id, Verdict.AUTH_FAILED, str(err))
        except PayloadError as err:
            stats.malformed += 1
            return Rejected(terminal_id, Verdict.MALFORMED, str(err))
        event = terminal.tracker.observe(message.seq, message.timestamp)
        kind = event.kind
        if kind is SequenceKind.DUPLICATE:
            stats.duplicates += 1
            return Rejected(terminal_id, Verdict.DUPLICATE, f"seq {message.seq}")
        if kind is SequenceKind.STALE:
            stats.stale += 1
            return Rejected(terminal_id, Verdict.STALE, f"seq {message.seq}")
        if kind is SequenceKind.GAP:
            stats.missing += sum(last - first + 1 for first, last in event.missing)
        elif kind is SequenceKind.OUT_OF_ORDER:
            stats.out_of_order += 1
        elif kind is SequenceKind.RESTART:
            stats.restarts += 1
        stats.accepted += 1
        if not terminal.keys.keys() >= message.values.keys():
            terminal.keys.update(dict.fromkeys(message.values))
            self._grown.add(terminal_id)
        # A terminal without a set clock sends 0: the reading is as old as its arrival.
        timestamp = float(message.timestamp)
        if not timestamp:
            timestamp = now
            self._clock_unset.add(terminal_id)
        return Outgoing(
            terminal.state_topic, state_payload(message.values, timestamp=timestamp), 1, timestamp
        )

    # --- commands and acks --------------------------------------------------------------

    def encode_command(self, terminal_id: str, command: Command) -> tuple[str, bytes]:
        """Return the ``down`` topic and payload of a command for a configured terminal."""
        terminal = self._terminals[terminal_id]
        return (
            self.topics.terminals.topic(terminal_id, Channel.DOWN),
            terminal.codec.encode_command(command),
        )

    def decode_ack(self, terminal_id: str, payload: bytes) -> Ack:
        """Decode and verify an ack (raises PayloadError, KeyError for unknown terminals)."""
        return self._terminals[terminal_id].codec.decode_ack(payload)
