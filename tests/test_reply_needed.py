"""Reply-length hints: the link decodes a reply once, when it is whole, never too late."""

from __future__ import annotations

import pytest

from edge_agent.errors import EdgeAgentError
from edge_agent.model import Exchange
from edge_agent.profiles.model import ModbusOptions, RegisterSpec, RegisterType
from edge_agent.protocols.dlt645 import parse_frame, reply_frame, write_request
from edge_agent.protocols.dlt645_catalogue import di_bytes
from edge_agent.protocols.dlt645_exchange import CommandExchange
from edge_agent.protocols.dlt645_exchange import ReadExchange as DltRead
from edge_agent.protocols.modbus import (
    Framing,
    ModbusRequest,
    ReadExchange,
    encode_exception,
    encode_response,
)

ADDRESS = "000000000161"
SPECS = [
    RegisterSpec("voltage_a", 0, RegisterType.FLOAT32),
    RegisterSpec("voltage_b", 2, RegisterType.FLOAT32),
]


def feed(exchange: Exchange, stream: bytes) -> tuple[int, int]:
    """Deliver ``stream`` a byte at a time as the link does: (length at the end, decodes)."""
    decodes = 0
    for n in range(1, len(stream) + 1):
        data = stream[:n]
        if n < exchange.needed(data):
            continue
        decodes += 1
        try:
            if exchange.receive(data):
                return n, decodes
        except EdgeAgentError:
            return n, decodes
    return 0, decodes


def modbus_read(framing: Framing = Framing.RTU) -> ReadExchange:
    return ReadExchange(1, 4, 0, 4, SPECS, ModbusOptions(), framing, tid=7)


def modbus_reply(exchange: ReadExchange, *, exception: bool = False) -> bytes:
    request = ModbusRequest(exchange.unit, exchange.function, 0, 4, exchange.tid)
    if exception:
        return encode_exception(request, 2, exchange.framing)
    return encode_response(request, [0x4366, 0x3334, 0x4366, 0x3334], exchange.framing)


class TestModbus:
    @pytest.mark.parametrize("framing", [Framing.RTU, Framing.TCP])
    def test_one_decode_once_the_length_is_known(self, framing: Framing) -> None:
        exchange = modbus_read(framing)
        reply = modbus_reply(exchange)
        assert feed(exchange, reply) == (len(reply), 1)
        assert exchange.done

    @pytest.mark.parametrize("framing", [Framing.RTU, Framing.TCP])
    def test_exception_reply_is_not_waited_past(self, framing: Framing) -> None:
        exchange = modbus_read(framing)
        reply = modbus_reply(exchange, exception=True)
        assert feed(exchange, reply) == (len(reply), 1)

    def test_adapter_echo_then_reply(self) -> None:
        exchange = modbus_read()
        stream = exchange.request() + modbus_reply(exchange)
        end, decodes = feed(exchange, stream)
        assert end == len(stream)
        # Until the echo is whole its last bytes could still be a short reply: a few decodes.
        assert decodes <= 5
        assert exchange.done

    def test_noise_before_the_reply_is_decoded_past(self) -> None:
        exchange = modbus_read()
        stream = bytes([0x00, 0xFF, 0x13]) + modbus_reply(exchange)
        assert feed(exchange, stream)[0] == len(stream)
        assert exchange.done


def wake_ups(exchange: Exchange, stream: bytes) -> int:
    """Count how often the link's receiver wakes the transaction for ``stream``."""
    want, wakes = exchange.needed(b""), 0
    for n in range(1, len(stream) + 1):
        if n >= want:
            wakes += 1
            want = exchange.needed(stream[:n])
            if n >= want:
                return wakes
    return wakes


class TestDlt645:
    def test_wake_up_bytes_do_not_wake_the_transaction_one_by_one(self) -> None:
        exchange = DltRead(ADDRESS, 0x02010100, {0x02010100: "voltage_a"})
        data = di_bytes(0x02010100) + b"\x10\x22"
        reply = reply_frame(parse_frame(exchange.request()), data, preamble=4)
        # Header start, L field, the header's second 68 ruled out as a start, whole frame:
        # 4 wake-ups for 22 bytes.
        assert wake_ups(exchange, reply) == 4

    def test_reply_after_preamble_decoded_once(self) -> None:
        exchange = DltRead(ADDRESS, 0x02010100, {0x02010100: "voltage_a"})
        data = di_bytes(0x02010100) + b"\x10\x22"
        reply = reply_frame(parse_frame(exchange.request()), data, preamble=4)
        assert feed(exchange, reply) == (len(reply), 1)
        assert exchange.values() == {"voltage_a": 221.0}

    def test_echo_is_skipped_without_decoding_it_byte_by_byte(self) -> None:
        exchange = DltRead(ADDRESS, 0x02010100, {0x02010100: "voltage_a"})
        request = exchange.request()
        stream = request + reply_frame(parse_frame(request), di_bytes(0x02010100) + b"\x10\x22")
        assert feed(exchange, stream) == (len(stream), 1)
        assert exchange.done

    def test_false_start_in_noise_does_not_hide_the_reply(self) -> None:
        exchange = CommandExchange(write_address(), ADDRESS, 0x14)
        reply = reply_frame(parse_frame(write_address()), b"")
        # A 68 with another 68 seven bytes later and a huge L field, then the real reply.
        noise = bytes([0x68, 1, 2, 3, 4, 5, 6, 0x68, 0x11, 0xF0])
        stream = noise + reply
        assert feed(exchange, stream)[0] == len(stream)
        assert exchange.done

    def test_abnormal_reply_reaches_the_decoder(self) -> None:
        exchange = DltRead(ADDRESS, 0x02010100, {0x02010100: "voltage_a"})
        reply = reply_frame(parse_frame(exchange.request()), b"\x02", abnormal=True)
        assert feed(exchange, reply) == (len(reply), 1)


def write_address() -> bytes:
    """Return a write request to the test meter (its normal reply has no DATA)."""
    return write_request(
        ADDRESS, 0x04000401, b"\x00" * 6, password=b"\x02\x00\x00\x00", operator=b"\x00" * 4
    )
