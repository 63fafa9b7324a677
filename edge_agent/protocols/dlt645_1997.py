"""DL/T 645-1997 specifics: 2-byte data identifiers, its control codes and request builders.

The frame layout, wake-up bytes, 0x33 offset and checksum are those of 2007 and come from
:mod:`.dlt645` (``encode_frame`` / ``decode_frame`` / ``parse_frame``). What differs:

* DI is 2 bytes (``DI0`` first on the wire, e.g. B611 is sent as ``11 B6`` + 0x33 = ``44 E9``);
* codes: read 0x01, read follow-up 0x02, write 0x04, broadcast time 0x08,
  write address 0x0A, change baud 0x0C, change password 0x0F; a reply has
  C = code | 0x80, | 0x40 when abnormal, | 0x20 when more frames follow;
* a follow-up request carries only the DI (no sequence number); a write carries the
  password (PA P0 P1 P2) and no operator code;
* the error-information word names: bit0 illegal data, bit1 wrong data identifier,
  bit2 wrong password, bit4..6 too many annual zones / daily periods / tariffs.

Followed: DL/T 645-1997 clauses 4.2 (frame), 4.3 (control codes) and its ERR word as
quoted by public manuals; worked example ``68 03 00 00 00 00 00 68 01 02 44 E9 03 16``
(read B611) and its reply ``… 68 81 04 44 E9 33 34 EC 16`` (100 V).
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from ..errors import AbnormalReplyError, ConfigError
from .dlt645 import (
    BROADCAST_ADDRESS,
    address_bytes,
    code_bytes,
    describe_error,
    encode_frame,
    time_bytes,
)


class Code1997(IntEnum):
    """DL/T 645-1997 function codes (control byte D4..D0)."""

    READ = 0x01
    READ_FOLLOW_UP = 0x02
    WRITE = 0x04
    BROADCAST_TIME = 0x08
    WRITE_ADDRESS = 0x0A
    CHANGE_BAUD = 0x0C
    CHANGE_PASSWORD = 0x0F


#: Baud-rate characteristic byte Z of the 0x0C command.
BAUD_CODES: dict[int, int] = {600: 0x02, 1200: 0x04, 2400: 0x08, 4800: 0x10, 9600: 0x20}

#: Error-information word of a 1997 abnormal reply, bit -> meaning.
ERROR_BITS_1997: dict[int, str] = {
    0: "illegal data",
    1: "wrong data identifier",
    2: "wrong password",
    4: "too many annual time zones",
    5: "too many daily time periods",
    6: "too many tariffs",
}


def di_bytes_1997(di: int) -> bytes:
    """Encode a 2-byte data identifier in wire order (DI0 first)."""
    if not 0 <= di <= 0xFFFF:
        raise ConfigError(f"DL/T 645-1997 data identifier out of range: {di:#x}")
    return di.to_bytes(2, "little")


def abnormal_error_1997(flags: int) -> AbnormalReplyError:
    """Build the error for a 1997 abnormal reply with error-information word ``flags``."""
    return AbnormalReplyError(
        f"meter refused (error word 0x{flags:02X}): {describe_error(flags, ERROR_BITS_1997)}",
        flags,
    )


def read_request(address: str, di: int) -> bytes:
    """0x01 read one DI."""
    return encode_frame(address, Code1997.READ, di_bytes_1997(di))


def read_follow_up_request(address: str, di: int) -> bytes:
    """0x02 read the next frame of a multi-frame answer."""
    return encode_frame(address, Code1997.READ_FOLLOW_UP, di_bytes_1997(di))


def write_request(address: str, di: int, data: bytes, *, password: bytes) -> bytes:
    """0x04 write: DI + password (PA P0 P1 P2) + data."""
    payload = di_bytes_1997(di) + code_bytes(password, 4, "password") + data
    return encode_frame(address, Code1997.WRITE, payload)


def broadcast_time_request(now: datetime) -> bytes:
    """0x08 broadcast time (ssmmhhDDMMYY); meters do not answer."""
    return encode_frame(BROADCAST_ADDRESS, Code1997.BROADCAST_TIME, time_bytes(now))


def write_address_request(new_address: str) -> bytes:
    """0x0A set the address of the single meter on the bus (sent to the broadcast address)."""
    return encode_frame(BROADCAST_ADDRESS, Code1997.WRITE_ADDRESS, address_bytes(new_address))


def change_baud_request(address: str, baud: int) -> bytes:
    """0x0C change the communication speed to ``baud``."""
    try:
        code = BAUD_CODES[baud]
    except KeyError:
        raise ConfigError(f"DL/T 645-1997 cannot select {baud} baud") from None
    return encode_frame(address, Code1997.CHANGE_BAUD, bytes([code]))


def change_password_request(address: str, old: bytes, new: bytes) -> bytes:
    """0x0F replace password ``old`` (PA P0 P1 P2) with ``new``."""
    payload = code_bytes(old, 4, "old password") + code_bytes(new, 4, "new password")
    return encode_frame(address, Code1997.CHANGE_PASSWORD, payload)
