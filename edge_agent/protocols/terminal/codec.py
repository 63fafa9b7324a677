"""One terminal's codec: its id, encoding and key bound together for the daemon and simulator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ...model import Value
from . import binary_codec, json_codec
from .message import Ack, Command, Encoding, TerminalMessage


def detect_encoding(payload: bytes) -> Encoding:
    """Return BINARY if the first byte has its top bit set (all type bytes do), else JSON.

    JSON text starts with an ASCII character, so the two never overlap.
    """
    return Encoding.BINARY if payload[:1] >= b"\x80" else Encoding.JSON


class _Codec(Protocol):
    """The functions json_codec and binary_codec both provide."""

    def encode_reading(
        self, message: TerminalMessage, key: bytes | None = ..., mac_len: int = ...
    ) -> bytes: ...
    def decode_reading(
        self, payload: bytes, terminal_id: str, key: bytes | None = ...
    ) -> TerminalMessage: ...
    def encode_command(
        self, command: Command, terminal_id: str, key: bytes | None = ..., mac_len: int = ...
    ) -> bytes: ...
    def decode_command(
        self, payload: bytes, terminal_id: str, key: bytes | None = ...
    ) -> Command: ...
    def encode_ack(
        self, ack: Ack, terminal_id: str, key: bytes | None = ..., mac_len: int = ...
    ) -> bytes: ...
    def decode_ack(self, payload: bytes, terminal_id: str, key: bytes | None = ...) -> Ack: ...


def _module(encoding: Encoding) -> _Codec:
    return json_codec if encoding is Encoding.JSON else binary_codec


@dataclass(frozen=True, slots=True)
class TerminalCodec:
    """Encode and decode everything one terminal sends or receives.

    Decoding detects the encoding from the first byte, so a terminal may switch; encoding
    uses ``encoding``. With a ``key``, every decoded payload must carry a valid MAC and
    every encoded one gets a ``mac_len``-byte tag.
    """

    terminal_id: str
    encoding: Encoding = Encoding.JSON
    key: bytes | None = field(default=None, repr=False)
    mac_len: int = 16

    def encode_reading(self, seq: int, timestamp: int, values: Mapping[str, Value]) -> bytes:
        """Encode a reading as this terminal (used by simulators and tests)."""
        message = TerminalMessage(self.terminal_id, seq, timestamp, values)
        return _module(self.encoding).encode_reading(message, self.key, self.mac_len)

    def decode_reading(self, payload: bytes) -> TerminalMessage:
        """Decode a payload from this terminal's ``up`` topic."""
        return _module(detect_encoding(payload)).decode_reading(payload, self.terminal_id, self.key)

    def encode_command(self, command: Command) -> bytes:
        """Encode a command for this terminal's ``down`` topic."""
        return _module(self.encoding).encode_command(
            command, self.terminal_id, self.key, self.mac_len
        )

    def decode_command(self, payload: bytes) -> Command:
        """Decode a payload from this terminal's ``down`` topic (the terminal side)."""
        return _module(detect_encoding(payload)).decode_command(payload, self.terminal_id, self.key)

    def encode_ack(self, ack: Ack) -> bytes:
        """Encode an ack as this terminal."""
        return _module(self.encoding).encode_ack(ack, self.terminal_id, self.key, self.mac_len)

    def decode_ack(self, payload: bytes) -> Ack:
        """Decode a payload from this terminal's ``ack`` topic."""
        return _module(detect_encoding(payload)).decode_ack(payload, self.terminal_id, self.key)
