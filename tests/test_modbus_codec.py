"""Modbus RTU/TCP codec on pymodbus: published frames, round trips, errors, register decoding."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU

from edge_agent.errors import (
    ChecksumError,
    FrameError,
    ModbusExceptionError,
    NoiseError,
    UnexpectedReplyError,
)
from edge_agent.profiles.model import ModbusOptions, RegisterSpec, RegisterType
from edge_agent.protocols.modbus import (
    Framing,
    ModbusRequest,
    ReadExchange,
    decode_reply,
    decode_request,
    decode_value,
    encode_exception,
    encode_read,
    encode_response,
    encode_value,
    register_span,
)

BIG = ModbusOptions()
LITTLE = ModbusOptions(word_order="little")
FOUR_BYTE = ModbusOptions(register_bytes=4, max_registers=8)
RTU, TCP = Framing.RTU, Framing.TCP


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def spec(type_: str, address: int = 0, scale: float = 1.0, key: str = "voltage_a") -> RegisterSpec:
    return RegisterSpec(key, address, RegisterType(type_), scale)


class TestPublishedFrames:
    def test_sdm_phase_1_voltage_request(self) -> None:
        # Read input registers 30001-30002 of unit 1 (Eastron's example query).
        assert encode_read(1, 4, 0, 2, RTU) == h("01 04 00 00 00 02 71 CB")

    def test_float_voltage_reply_quoted_by_tasmota(self) -> None:
        # Tasmota xnrg_11_ddsu666.ino: "01 04 04 43 66 33 34 1B 38 = 230.2 Volt".
        reply = h("01 04 04 43 66 33 34 1B 38")
        assert decode_reply(reply, RTU, unit=1, function=4) == (9, [0x4366, 0x3334])
        exchange = ReadExchange(1, 4, 0, 2, [spec("float32")], BIG, RTU)
        assert exchange.receive(reply) == 9
        assert exchange.values() == {"voltage_a": 230.2}

    def test_im1253b_request_from_its_manual(self) -> None:
        # Read 8 four-byte registers from 0x48 (voltage .. frequency).
        assert encode_read(1, 3, 0x48, 8, RTU) == h("01 03 00 48 00 08 C4 1A")

    def test_im1253b_one_register_reply_is_four_bytes(self) -> None:
        # A one-address read answered with 4 data bytes: 0x00231860 * 0.0001 V = 230.0 V.
        reply = h("01 03 04 00 23 18 60 01 D1")
        exchange = ReadExchange(1, 3, 0x48, 1, [spec("u32", 0x48, 0.0001)], FOUR_BYTE, RTU)
        assert exchange.request() == h("01 03 00 48 00 01 04 1C")
        assert exchange.receive(reply) == len(reply)
        assert exchange.values() == {"voltage_a": 230.0}

    def test_exception_reply_illegal_address(self) -> None:
        with pytest.raises(ModbusExceptionError, match="illegal data address") as err:
            decode_reply(h("01 83 02 C0 F1"), RTU, unit=1, function=3)
        assert err.value.code == 2

    def test_tcp_request_layout(self) -> None:
        frame = encode_read(17, 3, 0x006B, 3, TCP, tid=1)
        # MBAP: tid 0001, protocol 0000, length 0006, unit 11; PDU 03 006B 0003.
        assert frame == h("00 01 00 00 00 06 11 03 00 6B 00 03")


class TestRoundTrip:
    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_request_reply_exception(self, data: st.DataObject) -> None:
        unit = data.draw(st.integers(1, 247))
        function = data.draw(st.sampled_from([3, 4]))
        address = data.draw(st.integers(0, 0xFF00))
        count = data.draw(st.integers(1, 125))
        framing = data.draw(st.sampled_from(list(Framing)))
        tid = data.draw(st.integers(0, 0xFFFF)) if framing is TCP else 0
        request = encode_read(unit, function, address, count, framing, tid)
        used, decoded = decode_request(request, framing)
        assert used == len(request)
        assert decoded == ModbusRequest(unit, function, address, count, tid)

        words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=count, max_size=count))
        reply = encode_response(decoded, words, framing)
        assert decode_reply(reply, framing, unit=unit, function=function, tid=tid) == (
            len(reply),
            words,
        )
        code = data.draw(st.integers(1, 11))
        with pytest.raises(ModbusExceptionError) as err:
            decode_reply(
                encode_exception(decoded, code, framing),
                framing,
                unit=unit,
                function=function,
                tid=tid,
            )
        assert err.value.code == code

    def test_exception_frame_matches_pymodbus_crc(self) -> None:
        frame = encode_exception(ModbusRequest(1, 3, 0, 2), 2, RTU)
        assert frame == h("01 83 02 C0 F1")
        assert FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))

    @pytest.mark.parametrize("framing", list(Framing))
    def test_every_prefix_needs_more(self, framing: Framing) -> None:
        reply = encode_response(ModbusRequest(5, 3, 0, 4, 9), [1, 2, 3, 4], framing)
        for cut in range(len(reply)):
            assert decode_reply(reply[:cut], framing, unit=5, function=3, tid=9) == (0, None)
        assert decode_reply(reply, framing, unit=5, function=3, tid=9) == (len(reply), [1, 2, 3, 4])

    def test_trailing_bytes_are_left(self) -> None:
        reply = encode_response(ModbusRequest(5, 3, 0, 1), [7], RTU)
        assert decode_reply(reply + b"\x00\x00", RTU, unit=5, function=3) == (len(reply), [7])


class TestRtuErrors:
    REPLY = encode_response(ModbusRequest(1, 4, 0, 4), [0x4366, 0x3334, 0x0000, 0x1234], RTU)

    @pytest.mark.parametrize("index", [3, 6, 10, -2, -1])
    def test_corrupted_byte_is_checksum_error(self, index: int) -> None:
        bad = bytearray(self.REPLY)
        bad[index] ^= 0x5A
        with pytest.raises(ChecksumError, match="CRC"):
            decode_reply(bytes(bad), RTU, unit=1, function=4)

    def test_leading_noise_is_skipped(self) -> None:
        noisy = b"\x00\xff\x7f" + self.REPLY
        assert decode_reply(noisy, RTU, unit=1, function=4) == (
            len(noisy),
            [0x4366, 0x3334, 0, 0x1234],
        )

    @pytest.mark.parametrize(
        "late",
        [
            encode_response(ModbusRequest(2, 4, 0, 4), [1, 0x0104, 3, 4], RTU),  # other unit
            encode_response(ModbusRequest(1, 3, 0, 1), [0x0104], RTU),  # other function
            encode_exception(ModbusRequest(7, 4, 0, 1), 2, RTU),
        ],
    )
    def test_late_frames_of_others_are_skipped(self, late: bytes) -> None:
        # On a shared bus these are late replies to earlier requests; ours may follow.
        assert decode_reply(late, RTU, unit=1, function=4) == (0, None)
        both = late + self.REPLY
        assert decode_reply(both, RTU, unit=1, function=4) == (
            len(both),
            [0x4366, 0x3334, 0, 0x1234],
        )

    def test_odd_byte_count_is_frame_error(self) -> None:
        body = h("01 04 03 00 01 02")
        frame = body + FramerRTU.compute_CRC(body).to_bytes(2, "big")
        with pytest.raises(FrameError, match="byte count"):
            decode_reply(frame, RTU, unit=1, function=4)

    def test_adversarial_noise_is_cheap(self) -> None:
        # Looks like frame starts everywhere; pymodbus' own hunting takes ~1 s on this.
        noise = bytes([1, 3, 0] * 85)
        started = time.perf_counter()
        assert decode_reply(noise, RTU, unit=2, function=3) == (0, None)
        assert time.perf_counter() - started < 0.25

    def test_long_noise_is_noise_error(self) -> None:
        with pytest.raises(NoiseError):
            decode_reply(bytes(512), RTU, unit=1, function=4)
        assert decode_reply(bytes(511), RTU, unit=1, function=4) == (0, None)

    def test_word_count_mismatch_in_exchange(self) -> None:
        exchange = ReadExchange(1, 4, 0, 2, [spec("float32")], BIG, RTU)
        with pytest.raises(UnexpectedReplyError, match="3 words, expected 2"):
            exchange.receive(encode_response(ModbusRequest(1, 4, 0, 3), [1, 2, 3], RTU))
        assert not exchange.done


class TestTcpErrors:
    def test_late_reply_to_an_earlier_transaction_is_skipped(self) -> None:
        late = encode_response(ModbusRequest(1, 3, 0, 1, tid=7), [1], TCP)
        ours = encode_response(ModbusRequest(1, 3, 0, 1, tid=8), [2], TCP)
        assert decode_reply(late, TCP, unit=1, function=3, tid=8) == (0, None)
        assert decode_reply(late + ours[:9], TCP, unit=1, function=3, tid=8) == (0, None)
        assert decode_reply(late + ours, TCP, unit=1, function=3, tid=8) == (len(late + ours), [2])

    def test_our_transaction_from_another_unit_or_function(self) -> None:
        reply = encode_response(ModbusRequest(2, 3, 0, 1, tid=8), [1], TCP)
        with pytest.raises(UnexpectedReplyError, match="answered by unit 2"):
            decode_reply(reply, TCP, unit=1, function=3, tid=8)
        reply = encode_response(ModbusRequest(1, 4, 0, 1, tid=8), [1], TCP)
        with pytest.raises(UnexpectedReplyError, match="function 4, expected 3"):
            decode_reply(reply, TCP, unit=1, function=3, tid=8)

    def test_protocol_id_must_be_zero(self) -> None:
        with pytest.raises(FrameError, match="protocol id"):
            decode_reply(h("00 01 00 05 00 05 01 03 02 00 01"), TCP, unit=1, function=3, tid=1)

    def test_length_field_range(self) -> None:
        with pytest.raises(FrameError, match="length field"):
            decode_reply(h("00 01 00 00 01 00 01 03"), TCP, unit=1, function=3, tid=1)

    def test_request_must_be_a_read(self) -> None:
        with pytest.raises(FrameError, match="not a Modbus read"):
            decode_request(h("00 01 00 00 00 06 01 06 00 01 00 03"), TCP)


class TestArbitraryBytes:
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.sampled_from(list(Framing)), st.sampled_from([3, 4]))
    def test_reply_side_yields_frame_or_typed_error(
        self, data: bytes, framing: Framing, function: int
    ) -> None:
        try:
            used, words = decode_reply(data, framing, unit=1, function=function, tid=0)
        except (FrameError, ModbusExceptionError):
            return  # a well-formed exception reply is the only MeterError possible
        assert (used == 0 and words is None) or (0 < used <= len(data) and words is not None)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.sampled_from(list(Framing)))
    def test_request_side_yields_request_or_typed_error(
        self, data: bytes, framing: Framing
    ) -> None:
        try:
            used, request = decode_request(data, framing)
        except FrameError:
            return
        assert 0 <= used <= len(data)
        assert request is None or request.function in (3, 4)

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=40))
    def test_rtu_request_found_behind_any_noise(self, noise: bytes) -> None:
        request = encode_read(9, 3, 0x2000, 10, RTU)
        buffer = noise + request
        used, found = decode_request(buffer, RTU)
        while found is None and used:
            buffer = buffer[used:]
            used, found = decode_request(buffer, RTU)
        assert found == ModbusRequest(9, 3, 0x2000, 10)


class TestRegisterValues:
    @pytest.mark.parametrize(
        ("type_", "words", "options", "expected"),
        [
            ("u16", [0xFFFF], BIG, 65535),
            ("i16", [0xFFFF], BIG, -1),
            ("u32", [0x0001, 0x0002], BIG, 0x00010002),
            ("u32", [0x0001, 0x0002], LITTLE, 0x00020001),
            ("i32", [0xFFFF, 0xFFFE], BIG, -2),
            ("i32", [0xFFFE, 0xFFFF], LITTLE, -2),
            ("float32", [0x4366, 0x3334], BIG, 230.2),
            ("float32", [0x3334, 0x4366], LITTLE, 230.2),
            ("float32", [0xC2C8, 0x0000], BIG, -100.0),
        ],
    )
    def test_types_and_word_order(
        self, type_: str, words: list[int], options: ModbusOptions, expected: float
    ) -> None:
        assert decode_value(words, spec(type_), options) == expected

    def test_scale_gives_clean_decimals(self) -> None:
        assert decode_value([2301], spec("u16", scale=0.1), BIG) == 230.1
        assert decode_value([0x0012, 0xD687], spec("i32", scale=0.001), BIG) == 1234.567
        assert decode_value([0x4499, 0x4000], spec("float32", scale=0.001), BIG) == 1.226
        assert decode_value([5], spec("u16", scale=10), BIG) == 50

    def test_ints_stay_ints_without_scale(self) -> None:
        assert isinstance(decode_value([7], spec("u16"), BIG), int)

    def test_nan_passes_through(self) -> None:
        assert math.isnan(decode_value([0x7FC0, 0x0000], spec("float32"), BIG))

    def test_wrong_word_count(self) -> None:
        with pytest.raises(FrameError, match="needs 2 words"):
            decode_value([1], spec("float32"), BIG)

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(list(RegisterType)),
        st.sampled_from([BIG, LITTLE]),
        st.sampled_from([1.0, 0.1, 0.01, 0.001]),
        st.integers(-32768, 32767),
    )
    def test_encode_decode_round_trip(
        self, type_: RegisterType, options: ModbusOptions, scale: float, raw: int
    ) -> None:
        if type_ in (RegisterType.U16, RegisterType.U32):
            raw = abs(raw)
        the_spec = RegisterSpec("voltage_a", 0, type_, scale)
        value = raw * scale
        decoded = decode_value(encode_value(value, the_spec, options), the_spec, options)
        assert decoded == pytest.approx(value, rel=1e-6, abs=scale / 2)

    def test_encode_out_of_range(self) -> None:
        with pytest.raises(ValueError, match="does not fit"):
            encode_value(70000, spec("u16"), BIG)

    def test_register_span(self) -> None:
        assert register_span(RegisterType.U16, 2) == 1
        assert register_span(RegisterType.FLOAT32, 2) == 2
        assert register_span(RegisterType.U32, 4) == 1
        with pytest.raises(ValueError, match="2-byte registers"):
            register_span(RegisterType.I16, 4)


class TestReadExchange:
    def test_block_with_gap_and_four_byte_registers(self) -> None:
        specs = [spec("u32", 0x48, 0.0001), spec("u32", 0x4F, 0.01, key="frequency")]
        exchange = ReadExchange(1, 3, 0x48, 8, specs, FOUR_BYTE, RTU)
        words = [0] * 16
        words[0:2] = [0x0023, 0x1860]  # 230.0 V
        words[14:16] = [0x0000, 0x1389]  # 50.01 Hz
        reply = encode_response(ModbusRequest(1, 3, 0x48, 8), words, RTU)
        assert exchange.receive(reply[:5]) == 0
        assert exchange.receive(reply) == len(reply)
        assert exchange.done
        assert exchange.values() == {"voltage_a": 230.0, "frequency": 50.01}

    def test_request_echo_is_skipped(self) -> None:
        exchange = ReadExchange(1, 3, 0x2000, 2, [spec("float32", 0x2000)], BIG, RTU)
        echo = exchange.request()
        reply = encode_response(ModbusRequest(1, 3, 0x2000, 2), [0x4366, 0x3334], RTU)
        assert exchange.receive(echo[:5]) == 0
        assert exchange.receive(echo) == 0
        assert exchange.receive(echo + reply[:4]) == 0
        assert exchange.receive(echo + reply) == len(echo) + len(reply)
        assert exchange.values() == {"voltage_a": 230.2}

    def test_protocol_attributes(self) -> None:
        rtu = ReadExchange(1, 4, 0, 2, [spec("float32")], BIG, RTU)
        tcp = ReadExchange(1, 4, 0, 2, [spec("float32")], BIG, TCP, tid=3)
        assert rtu.silence_chars == 3.5
        assert tcp.silence_chars == 0
        assert rtu.keys == {0: "voltage_a"}
        again = tcp.fresh()
        assert again is not tcp and again.request() == tcp.request()

    def test_spec_outside_the_read_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="outside"):
            ReadExchange(1, 4, 0, 1, [spec("float32")], BIG, RTU)
