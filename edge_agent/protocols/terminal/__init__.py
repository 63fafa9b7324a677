"""NB-IoT terminal protocol over MQTT: topics, JSON and binary payloads, HMAC, sequence tracking.

Pure code: no I/O. See docs/terminal-protocol.md for the wire format.
"""

from .codec import TerminalCodec, detect_encoding
from .codes import BY_CODE, BY_KEY, QuantityCode
from .errors import (
    AuthenticationError,
    EncodeError,
    MalformedJsonError,
    PayloadError,
    PayloadFieldError,
    PayloadLengthError,
    UnknownQuantityError,
    UnsupportedVersionError,
)
from .message import Ack, AckStatus, Command, CommandKind, Encoding, TerminalMessage
from .sequence import SequenceEvent, SequenceKind, SequenceTracker
from .topics import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Channel,
    TerminalTopics,
    TopicMatch,
    is_valid_terminal_id,
)

__all__ = [
    "BY_CODE",
    "BY_KEY",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "Ack",
    "AckStatus",
    "AuthenticationError",
    "Channel",
    "Command",
    "CommandKind",
    "EncodeError",
    "Encoding",
    "MalformedJsonError",
    "PayloadError",
    "PayloadFieldError",
    "PayloadLengthError",
    "QuantityCode",
    "SequenceEvent",
    "SequenceKind",
    "SequenceTracker",
    "TerminalCodec",
    "TerminalMessage",
    "TerminalTopics",
    "TopicMatch",
    "UnknownQuantityError",
    "UnsupportedVersionError",
    "detect_encoding",
    "is_valid_terminal_id",
]
