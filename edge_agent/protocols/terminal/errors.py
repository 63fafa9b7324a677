"""Errors of the terminal protocol: untrusted or undecodable payloads, unsendable values."""

from __future__ import annotations

from ...errors import EdgeAgentError, FrameError


class PayloadError(FrameError):
    """A terminal payload (reading, command or ack) is not valid."""


class MalformedJsonError(PayloadError):
    """A JSON payload is not UTF-8, not JSON, or not a JSON object."""


class PayloadFieldError(PayloadError):
    """A field is missing, has the wrong type, is out of range, or appears twice."""


class UnknownQuantityError(PayloadError):
    """A quantity key (JSON) or quantity code (binary) that is not in the table."""


class PayloadLengthError(PayloadError):
    """A binary payload whose length does not match its header."""


class UnsupportedVersionError(PayloadError):
    """A binary type/version byte or flag bit this decoder does not know."""


class AuthenticationError(PayloadError):
    """The HMAC tag is missing or does not match the terminal's key."""


class EncodeError(EdgeAgentError):
    """A message cannot be expressed in the chosen encoding (value out of range, unknown key)."""
