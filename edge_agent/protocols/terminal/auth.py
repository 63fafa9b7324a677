r"""Per-terminal HMAC-SHA256 tags.

The tag covers ``"<terminal_id>/<channel>\n"`` followed by the message bytes, so a
message signed for one terminal or channel does not verify on another. Tags are
truncated to the first 8, 16 or 32 bytes of the digest.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import AuthenticationError, EncodeError
from .topics import Channel

#: Tag lengths each encoding allows.
BINARY_MAC_LENGTHS = (8, 16)
JSON_MAC_LENGTHS = (8, 16, 32)


def compute_mac(key: bytes, terminal_id: str, channel: Channel, body: bytes, length: int) -> bytes:
    """Return the truncated tag of ``body`` sent by or to ``terminal_id`` on ``channel``."""
    if length not in JSON_MAC_LENGTHS:
        raise EncodeError(f"MAC length must be one of {JSON_MAC_LENGTHS}, not {length}")
    context = f"{terminal_id}/{channel}\n".encode()
    return hmac.new(key, context + body, hashlib.sha256).digest()[:length]


def verify_mac(key: bytes, terminal_id: str, channel: Channel, body: bytes, tag: bytes) -> None:
    """Raise AuthenticationError unless ``tag`` is the tag of ``body`` (constant-time compare)."""
    if len(tag) not in JSON_MAC_LENGTHS:
        raise AuthenticationError(f"MAC of {len(tag)} bytes; expected one of {JSON_MAC_LENGTHS}")
    expected = compute_mac(key, terminal_id, channel, body, len(tag))
    if not hmac.compare_digest(expected, tag):
        raise AuthenticationError(f"MAC mismatch for terminal {terminal_id!r} on {channel}")
