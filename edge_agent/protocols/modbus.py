"""Modbus RTU and TCP read transactions, sans-I/O, on pymodbus' framers and PDU classes.

pymodbus builds and parses every frame (MBAP header, RTU address and CRC, PDU bytes); this
module adds what a poller on a shared RS485 bus needs around it: a strict answer to "is
this buffer the reply to *my* request yet?", typed errors, and register decoding.

pymodbus' RTU framer hunts through garbage and silently skips a frame whose CRC is wrong,
so the reply is located here first (our unit and function code), its length taken from
the pymodbus PDU class, and its CRC checked with ``FramerRTU.check_CRC`` before the
framer and decoder see it. Only API that is the same in pymodbus 3.8 and 3.11 is used.

Devices such as the IM1253B hold 4 bytes per register address: a read of ``count``
addresses returns ``2 * count`` 16-bit words. ``register_bytes`` in
:class:`~edge_agent.profiles.model.ModbusOptions` says which kind a device is.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.framer.base import FramerBase
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
)

from ..errors import (
    ChecksumError,
    FrameError,
    ModbusExceptionError,
    NoiseError,
    UnexpectedReplyError,
)
from ..model import Value
from ..profiles.model import ModbusOptions, RegisterSpec, RegisterType


class Framing(StrEnum):
    """How Modbus PDUs travel: RTU (address + CRC) or TCP (MBAP header)."""

    RTU = "rtu"
    TCP = "tcp"


#: Function codes this module reads with: 3 holding registers, 4 input registers.
READ_FUNCTIONS = frozenset({3, 4})
#: Most 16-bit words one read reply can carry (byte count field <= 250).
MAX_WORDS = 125
#: Bytes without our reply after which an RTU buffer is declared noise (two longest frames).
MAX_RTU_NOISE = 512
#: The shortest replies: an exception (unit, function, code, CRC) and its MBAP form.
_MIN_RTU_REPLY = 5
_MIN_TCP_REPLY = 9

_REQUESTS: dict[int, type[ModbusPDU]] = {
    3: ReadHoldingRegistersRequest,
    4: ReadInputRegistersRequest,
}
_RESPONSES: dict[int, type[ModbusPDU]] = {
    3: ReadHoldingRegistersResponse,
    4: ReadInputRegistersResponse,
}
_EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
_PYMODBUS_ERRORS = (ModbusException, ValueError, IndexError, struct.error)


def _framer(framing: Framing, server: bool) -> FramerBase:
    decoder = DecodePDU(server)
    return FramerRTU(decoder) if framing is Framing.RTU else FramerSocket(decoder)


_FRAMERS: dict[tuple[Framing, bool], FramerBase] = {
    (framing, server): _framer(framing, server) for framing in Framing for server in (False, True)
}


def _check_read(unit: int, function: int, address: int, count: int, tid: int) -> None:
    if function not in READ_FUNCTIONS:
        raise ValueError(f"function {function} is not a register read (3 or 4)")
    if not 0 <= unit <= 255:
        raise ValueError(f"unit id {unit} out of range 0..255")
    if not 0 <= address <= 0xFFFF or not 1 <= count <= MAX_WORDS or address + count > 0x10000:
        raise ValueError(f"register range {address}+{count} out of range")
    if not 0 <= tid <= 0xFFFF:
        raise ValueError(f"transaction id {tid} out of range 0..65535")


# --- client side --------------------------------------------------------------------------


def encode_read(  # noqa: PLR0917 - the shared API takes them positionally
    unit: int, function: int, address: int, count: int, framing: Framing, tid: int = 0
) -> bytes:
    """Build a read-registers request for ``count`` register addresses from ``address``."""
    _check_read(unit, function, address, count, tid)
    pdu = _REQUESTS[function](address=address, count=count, dev_id=unit, transaction_id=tid)
    return _FRAMERS[framing, False].buildFrame(pdu)


def decode_reply(
    buffer: bytes, framing: Framing, *, unit: int, function: int, tid: int = 0
) -> tuple[int, list[int] | None]:
    """Find the reply to a read in ``buffer``: ``(bytes used, register words)``.

    ``(0, None)`` means more bytes are needed. Bytes before the reply are skipped and
    counted as used: line noise and whole frames of other units or functions on RTU, late
    replies to other transaction ids on TCP. Raises :class:`ChecksumError` for a wrong
    CRC, :class:`ModbusExceptionError` for an exception reply, :class:`UnexpectedReplyError`
    for a TCP reply to this transaction from another unit or function, :class:`NoiseError`
    after 512 RTU bytes without our reply and :class:`FrameError` for other malformed bytes.
    """
    if framing is Framing.RTU:
        used, pdu_bytes = _locate_rtu_reply(bytes(buffer), unit, function)
    else:
        used, pdu_bytes = _locate_tcp_reply(bytes(buffer), unit, tid)
    if not used:
        return 0, None
    return used, _reply_words(pdu_bytes, function)


def _locate_rtu_reply(buffer: bytes, unit: int, function: int) -> tuple[int, bytes]:
    """Scan for our reply, skipping noise and whole frames of other units or functions.

    On a shared bus those are late replies to earlier requests; the reply to this request
    may still follow them.
    """
    codes = (function, function | 0x80)
    framer = _FRAMERS[Framing.RTU, False]
    pos = 0
    while pos < len(buffer) - 1:
        if buffer[pos] == unit and buffer[pos + 1] in codes:
            return _our_rtu_frame(framer, buffer, pos)
        pos += len(_rtu_frame_at(framer, buffer[pos:])) or 1
    if len(buffer) >= MAX_RTU_NOISE:
        raise NoiseError(f"{len(buffer)} bytes without a Modbus reply from unit {unit}")
    return 0, b""


def _our_rtu_frame(framer: FramerBase, buffer: bytes, start: int) -> tuple[int, bytes]:
    frame = buffer[start:]
    pdu_class = framer.decoder.lookupPduClass(frame)
    if pdu_class is None:  # pragma: no cover - 3, 4 and exceptions are always known
        raise FrameError(f"pymodbus has no PDU class for function {frame[1]}")
    size = pdu_class.calculateRtuFrameSize(frame)
    if not size or len(frame) < size:
        return 0, b""
    frame = frame[:size]
    if not FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big")):
        raise ChecksumError(
            f"Modbus RTU CRC mismatch in reply from unit {frame[0]}: {frame.hex(' ')}"
        )
    _used, _dev_id, _tid, pdu_bytes = framer.decode(frame)
    if not pdu_bytes:  # pragma: no cover - the CRC was just checked
        raise FrameError(f"pymodbus rejected RTU frame {frame.hex(' ')}")
    return start + size, pdu_bytes


def _rtu_frame_at(framer: FramerBase, data: bytes) -> bytes:
    """Return the CRC-valid frame that pymodbus' PDU tables say starts ``data``, or b''.

    Not pymodbus' own hunting (``FramerRTU.decode`` on the whole buffer): that retries
    the CRC at every possible end and costs about a second on 256 bytes of noise.
    """
    try:
        pdu_class = framer.decoder.lookupPduClass(data)
        size = pdu_class.calculateRtuFrameSize(data) if pdu_class else 0
    except _PYMODBUS_ERRORS:
        return b""
    if not FramerRTU.MIN_SIZE <= size <= len(data):
        return b""
    frame = data[:size]
    return frame if FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big")) else b""


def _locate_tcp_reply(buffer: bytes, unit: int, tid: int) -> tuple[int, bytes]:
    """Find the frame of transaction ``tid``, skipping late replies to earlier ones."""
    framer = _FRAMERS[Framing.TCP, False]
    pos = 0
    while size := _mbap_size(buffer[pos:]):
        _used, dev_id, rx_tid, pdu_bytes = framer.decode(buffer[pos : pos + size])
        pos += size
        if rx_tid != tid:
            continue
        if dev_id != unit:
            raise UnexpectedReplyError(
                f"Modbus TCP transaction {tid} answered by unit {dev_id}, expected unit {unit}"
            )
        return pos, pdu_bytes
    return 0, b""


def _mbap_size(buffer: bytes) -> int:
    """Length of the MBAP frame at the start of ``buffer``; 0 while incomplete."""
    if len(buffer) < 8:
        return 0
    _tid, protocol, length = struct.unpack(">HHH", buffer[:6])
    if protocol != 0:
        raise FrameError(f"Modbus TCP protocol id {protocol}, expected 0")
    if not 3 <= length <= 254:
        raise FrameError(f"Modbus TCP length field {length} out of range 3..254")
    return 6 + length if len(buffer) >= 6 + length else 0


def _reply_words(pdu_bytes: bytes, function: int) -> list[int]:
    code = pdu_bytes[0]
    if code == function | 0x80:
        # Read the one code byte directly: pymodbus 3.8 logs every ExceptionResponse it
        # constructs at ERROR level, and a refused block is routine here.
        exception = pdu_bytes[1] if len(pdu_bytes) == 2 else -1
        if exception < 0:
            raise FrameError(f"Modbus exception reply of {len(pdu_bytes)} bytes, expected 2")
        name = _EXCEPTION_NAMES.get(exception, "unknown exception")
        raise ModbusExceptionError(
            f"Modbus exception {exception} ({name}) to function {function}", exception
        )
    if code != function:
        raise UnexpectedReplyError(f"Modbus reply with function {code}, expected {function}")
    byte_count = pdu_bytes[1] if len(pdu_bytes) > 1 else -1
    if byte_count < 0 or byte_count % 2 or byte_count + 2 != len(pdu_bytes):
        raise FrameError(f"Modbus byte count {byte_count} does not match {len(pdu_bytes)} bytes")
    return list(_decode_pdu(pdu_bytes).registers)


def _decode_pdu(pdu_bytes: bytes, server: bool = False) -> ModbusPDU:
    try:
        pdu = _FRAMERS[Framing.RTU, server].decoder.decode(pdu_bytes)
    except _PYMODBUS_ERRORS:
        pdu = None
    if pdu is None:
        raise FrameError(f"pymodbus cannot decode PDU {pdu_bytes.hex(' ')}")
    return pdu


# --- register values --------------------------------------------------------------------

_SIXTEEN_BIT = frozenset({RegisterType.U16, RegisterType.I16})
_INT_FORMATS = {
    RegisterType.U16: ">H",
    RegisterType.I16: ">h",
    RegisterType.U32: ">I",
    RegisterType.I32: ">i",
    RegisterType.FLOAT32: ">f",
}


def register_span(type: RegisterType, register_bytes: int) -> int:
    """Register addresses one value of ``type`` spans on a device of ``register_bytes``."""
    if register_bytes == 4:
        if type in _SIXTEEN_BIT:
            raise ValueError(f"{type} values need 2-byte registers")
        return 1
    if register_bytes != 2:
        raise ValueError(f"register_bytes must be 2 or 4, not {register_bytes}")
    return 1 if type in _SIXTEEN_BIT else 2


def value_words(type: RegisterType) -> int:
    """16-bit words one value of ``type`` occupies in a reply."""
    return 1 if type in _SIXTEEN_BIT else 2


def _decimals(scale: float) -> int:
    """Decimal places a scale introduces (0.001 -> 3, 0.25 -> 2, 10 -> 0)."""
    exponent = Decimal(repr(scale)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def decode_value(words: Sequence[int], spec: RegisterSpec, options: ModbusOptions) -> float | int:
    """Return the value of ``spec`` from its own words, in the canonical unit.

    Integer types with scale 1 stay ints; float32 is rounded to its 7 significant digits
    and scaled integers to the decimals of their scale, so 2301 * 0.1 reads 230.1.
    """
    count = value_words(spec.type)
    if len(words) != count:
        raise FrameError(f"{spec.key}: {spec.type} needs {count} words, got {len(words)}")
    ordered = list(words) if options.word_order == "big" else list(reversed(words))
    raw_bytes = b"".join(w.to_bytes(2, "big") for w in ordered)
    raw: int | float = struct.unpack(_INT_FORMATS[spec.type], raw_bytes)[0]
    if spec.type is RegisterType.FLOAT32:
        number = float(f"{raw:.7g}") * spec.scale
        return float(f"{number:.7g}") if math.isfinite(number) else number
    if spec.scale == int(spec.scale):
        return int(raw) * int(spec.scale)
    return round(raw * spec.scale, _decimals(spec.scale))


def encode_value(value: float | int, spec: RegisterSpec, options: ModbusOptions) -> list[int]:
    """Return the words a device holds for ``value`` (inverse of :func:`decode_value`)."""
    raw = value / spec.scale
    fmt = _INT_FORMATS[spec.type]
    try:
        packed = struct.pack(fmt, raw if spec.type is RegisterType.FLOAT32 else round(raw))
    except (struct.error, OverflowError) as err:
        raise ValueError(f"{spec.key}: {value} does not fit {spec.type}") from err
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    return words if options.word_order == "big" else list(reversed(words))


# --- server side (simulator) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModbusRequest:
    """A decoded read request."""

    unit: int
    function: int
    address: int
    count: int
    tid: int = 0


def decode_request(buffer: bytes, framing: Framing) -> tuple[int, ModbusRequest | None]:
    """Find a read request (function 3 or 4) in ``buffer``: ``(bytes used, request)``.

    ``(0, None)``: more bytes needed. RTU: ``(n, None)`` with ``n > 0`` means ``n`` leading
    bytes cannot start a read request (noise, other protocols, frames with a bad CRC) and
    may be dropped. TCP raises :class:`FrameError` for anything but a read request.
    """
    data = bytes(buffer)
    if framing is Framing.TCP:
        return _tcp_request(data)
    framer = _FRAMERS[Framing.RTU, True]
    size = ReadHoldingRegistersRequest.rtu_frame_size
    for start in range(len(data) - size + 1):
        frame = data[start : start + size]
        if frame[1] not in READ_FUNCTIONS:
            continue
        if not FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big")):
            continue
        _used, dev_id, _tid, pdu_bytes = framer.decode(frame)
        pdu = _decode_pdu(pdu_bytes, server=True)
        return start + size, ModbusRequest(dev_id, pdu.function_code, pdu.address, pdu.count)
    return max(0, len(data) - size + 1), None


def _tcp_request(data: bytes) -> tuple[int, ModbusRequest | None]:
    size = _mbap_size(data)
    if not size:
        return 0, None
    _used, dev_id, tid, pdu_bytes = _FRAMERS[Framing.TCP, True].decode(data[:size])
    if pdu_bytes[0] not in READ_FUNCTIONS or len(pdu_bytes) != 5:
        raise FrameError(f"not a Modbus read request: {data[:size].hex(' ')}")
    pdu = _decode_pdu(pdu_bytes, server=True)
    return size, ModbusRequest(dev_id, pdu.function_code, pdu.address, pdu.count, tid)


def encode_response(request: ModbusRequest, words: Sequence[int], framing: Framing) -> bytes:
    """Build the reply carrying ``words`` (``2 * count`` of them on 4-byte devices)."""
    if not 1 <= len(words) <= MAX_WORDS or any(not 0 <= w <= 0xFFFF for w in words):
        raise ValueError(f"a read reply carries 1..{MAX_WORDS} words of 0..65535")
    pdu = _RESPONSES[request.function](
        registers=list(words), dev_id=request.unit, transaction_id=request.tid
    )
    return _FRAMERS[framing, True].buildFrame(pdu)


def encode_exception(request: ModbusRequest, code: int, framing: Framing) -> bytes:
    """Build an exception reply with ``code`` (2 = illegal data address) to ``request``."""
    if not 1 <= code <= 255:
        raise ValueError(f"exception code {code} out of range 1..255")
    # The framer's own encode (address + CRC, or MBAP): constructing ExceptionResponse
    # would log at ERROR level in pymodbus 3.8 for every simulated refusal.
    payload = bytes([request.function | 0x80, code])
    return _FRAMERS[framing, True].encode(payload, request.unit, request.tid)


# --- the exchange -------------------------------------------------------------------------


class ReadExchange:
    """One read of ``count`` register addresses from ``start``, decoded into ``specs``' keys.

    Implements :class:`edge_agent.model.Exchange`.
    """

    def __init__(  # noqa: PLR0917 - the shared API takes them positionally
        self,
        unit: int,
        function: int,
        start: int,
        count: int,
        specs: Sequence[RegisterSpec],
        options: ModbusOptions,
        framing: Framing,
        tid: int = 0,
    ) -> None:
        """Check the specs fit in the read; raise ValueError otherwise."""
        _check_read(unit, function, start, count * options.register_bytes // 2, tid)
        for spec in specs:
            span = register_span(spec.type, options.register_bytes)
            if spec.address < start or spec.address + span > start + count:
                raise ValueError(f"{spec.key} at {spec.address} is outside {start}+{count}")
        self.unit = unit
        self.function = function
        self.start = start
        self.count = count
        self.specs = tuple(specs)
        self.options = options
        self.framing = framing
        self.tid = tid
        self.silence_chars = 3.5 if framing is Framing.RTU else 0.0
        self._request = encode_read(unit, function, start, count, framing, tid)
        #: Register address -> quantity key.
        self.keys: dict[int, str] = {spec.address: spec.key for spec in self.specs}
        self._values: dict[str, Value] = {}
        self._done = False

    def __repr__(self) -> str:
        """Name the read for logs."""
        return (
            f"ReadExchange(unit={self.unit}, function={self.function}, "
            f"start={self.start}, count={self.count}, keys={list(self.keys.values())})"
        )

    def fresh(self) -> ReadExchange:
        """Return an unspent copy, for a retry."""
        return ReadExchange(
            self.unit,
            self.function,
            self.start,
            self.count,
            self.specs,
            self.options,
            self.framing,
            self.tid,
        )

    def request(self) -> bytes:
        """Return the request frame (encoded once: receive() and needed() compare echoes)."""
        return self._request

    def needed(self, data: bytes) -> int:
        """Bytes the reply needs, from its byte count (or MBAP length) once that has arrived.

        An adapter's echo of the request is allowed for, as :meth:`receive` skips it.
        """
        if self.framing is Framing.TCP:
            return 6 + int.from_bytes(data[4:6]) if len(data) >= 6 else _MIN_TCP_REPLY
        echo = self.request()
        if data.startswith(echo):
            return len(echo) + self._rtu_reply_needed(data[len(echo) :])
        reply = self._rtu_reply_needed(data)
        return min(reply, len(echo)) if echo.startswith(data) else reply

    def _rtu_reply_needed(self, data: bytes) -> int:
        if len(data) >= 2 and (data[0] != self.unit or data[1] & 0x7F != self.function):
            return len(data)  # not our reply first: decode now, which skips or rejects it
        if len(data) >= 3 and data[1] == self.function:
            return _MIN_RTU_REPLY + data[2]
        return _MIN_RTU_REPLY

    def receive(self, data: bytes) -> int:
        """Decode the reply once whole; see :func:`decode_reply` for the errors.

        On RTU an echo of the request (RS485 adapters that hear their own transmitter) is
        skipped: the bytes are compared with the request once all of them are in.
        """
        data = bytes(data)
        echo = self.request() if self.framing is Framing.RTU else b""
        if echo and len(data) < len(echo) and echo.startswith(data):
            return 0
        skip = len(echo) if echo and data.startswith(echo) else 0
        used, words = decode_reply(
            data[skip:], self.framing, unit=self.unit, function=self.function, tid=self.tid
        )
        if words is None:
            return 0
        used += skip
        per_address = self.options.register_bytes // 2
        if len(words) != self.count * per_address:
            raise UnexpectedReplyError(
                f"Modbus reply has {len(words)} words, expected {self.count * per_address}"
            )
        for spec in self.specs:
            offset = (spec.address - self.start) * per_address
            own = words[offset : offset + value_words(spec.type)]
            self._values[spec.key] = decode_value(own, spec, self.options)
        self._done = True
        return used

    @property
    def done(self) -> bool:
        """True once the reply has been decoded."""
        return self._done

    def values(self) -> dict[str, Value]:
        """Return the decoded values by quantity key."""
        return dict(self._values)
