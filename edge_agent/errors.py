"""Typed errors of the edge agent.

Every failure that can come from a wire, a meter, a file or a user maps to one of
these classes, so callers can tell a noisy line from a refusing meter from a bad
configuration without parsing messages.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base of every error raised by the edge agent."""


# --- bytes that do not make a valid frame -------------------------------------------


class FrameError(EdgeAgentError):
    """The bytes received do not form a valid frame."""


class ChecksumError(FrameError):
    """A frame arrived whole but its checksum or CRC is wrong."""


class TruncatedFrameError(FrameError):
    """A frame is shorter than its header promises."""


class NoiseError(FrameError):
    """The bytes contain no frame start at all."""


class UnexpectedReplyError(FrameError):
    """A well-formed frame that does not answer the request (other address, code or DI)."""


class UnknownDataIdError(FrameError):
    """A DL/T 645 data identifier that is not in the catalogue."""


# --- a meter that answered, but refused ---------------------------------------------


class MeterError(EdgeAgentError):
    """The meter answered with a refusal."""


class AbnormalReplyError(MeterError):
    """DL/T 645 abnormal reply (control byte bit D6 set); `flags` holds the error byte."""

    def __init__(self, message: str, flags: int) -> None:
        super().__init__(message)
        self.flags = flags


class ModbusExceptionError(MeterError):
    """Modbus exception response; `code` holds the exception code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- the link -------------------------------------------------------------------------


class MeterTimeoutError(EdgeAgentError):
    """No complete reply arrived before the deadline."""


class LinkError(EdgeAgentError):
    """The port or socket could not be used."""


class PortNotFoundError(LinkError):
    """The serial device does not exist or the host does not resolve."""


class PortBusyError(LinkError):
    """The serial device is held by another process."""


class ConnectionLostError(LinkError):
    """The port or socket went away while in use."""


# --- files and configuration ----------------------------------------------------------


class ProfileError(EdgeAgentError):
    """A meter profile file is invalid or unknown."""


class ConfigError(EdgeAgentError):
    """A configuration is invalid."""
