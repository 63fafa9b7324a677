"""DL/T 645-2007 frame codec and request builders."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import (
    AbnormalReplyError,
    ChecksumError,
    ConfigError,
    FrameError,
    NoiseError,
    TruncatedFrameError,
)
from edge_agent.protocols import dlt645
from edge_agent.protocols.dlt645 import (
    Code,
    Frame,
    RelayAction,
    abnormal_error,
    decode_frame,
    encode_frame,
    parse_frame,
    parse_frames,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Published captures (DL/T 645-2007 tutorials and test vectors).
READ_ADDRESS = h("FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")
READ_ENERGY = h("68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16")
ENERGY_REPLY = h("68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8B 16")
READ_VOLTAGE = h("68 61 01 00 00 00 00 68 11 04 33 34 34 35 17 16")
VOLTAGE_REPLY = h("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16")
VOLTAGE_REPLY_2 = h("68 45 92 66 23 00 10 68 91 06 33 34 34 35 66 55 62 16")
RELAY_TRIP = h(
    "68 06 10 24 05 19 20 68 1C 10 35 33 33 33 33 33 33 33 4D 33 33 33 33 33 33 33 C0 16"
)


class TestPublishedFrames:
    def test_read_address_request_matches_capture(self) -> None:
        assert dlt645.read_address_request() == b"\xfe" + READ_ADDRESS

    def test_read_requests_match_captures(self) -> None:
        assert dlt645.read_request("000102030425", 0x00010000)[4:] == READ_ENERGY
        assert dlt645.read_request("161", 0x02010100)[4:] == READ_VOLTAGE

    def test_energy_reply_decodes(self) -> None:
        frame = parse_frame(ENERGY_REPLY)
        assert frame.address == "000102030425"
        assert frame.code == Code.READ
        assert frame.is_reply and not frame.is_abnormal and not frame.has_follow_up
        assert frame.data == h("00 00 01 00 42 06 12 00")

    def test_voltage_replies_decode(self) -> None:
        assert parse_frame(VOLTAGE_REPLY).data == h("00 01 01 02 01 10")
        second = parse_frame(VOLTAGE_REPLY_2)
        assert second.address == "100023669245"
        assert second.data[4:] == h("33 22")

    def test_relay_capture_has_standard_layout(self) -> None:
        frame = parse_frame(RELAY_TRIP)
        assert frame.code == Code.RELAY
        built = parse_frame(
            dlt645.relay_request(
                "200519241006",
                RelayAction.TRIP,
                password=h("02 00 00 00"),
                operator=h("00 00 00 00"),
                valid_until=datetime(2030, 12, 31, 23, 59, 58),
            )
        )
        assert built.data[:10] == frame.data[:10]
        assert built.data[10:] == h("58 59 23 31 12 30")


class TestEncodeDecode:
    def test_encode_adds_offset_checksum_and_preamble(self) -> None:
        raw = encode_frame("000000000001", 0x11, b"\x00\xcd", preamble=2)
        assert raw[:2] == b"\xfe\xfe"
        assert raw[12:14] == b"\x33\x00"  # 0xCD + 0x33 wraps to 0x00
        assert raw[-2] == sum(raw[2:-2]) & 0xFF
        assert raw[-1] == 0x16

    @pytest.mark.parametrize("preamble", [0, 1, 4])
    def test_decode_skips_wake_up_bytes(self, preamble: int) -> None:
        raw = encode_frame("123456789012", 0x91, b"\x01\x02", preamble=preamble)
        frame, used = decode_frame(raw)
        assert frame == Frame("123456789012", 0x91, b"\x01\x02")
        assert used == len(raw)

    def test_needs_more_bytes(self) -> None:
        raw = encode_frame("123456789012", 0x91, b"\x01\x02")
        for cut in range(len(raw)):
            assert decode_frame(raw[:cut]) == (None, 0)

    def test_noise_before_frame_is_skipped(self) -> None:
        raw = encode_frame("123456789012", 0x91, b"\x07")
        noise = h("00 68 01 16 FF 68")
        frame, used = decode_frame(noise + raw + b"\x99")
        assert frame is not None and frame.data == b"\x07"
        assert used == len(noise) + len(raw)

    def test_false_start_with_bad_checksum_before_a_good_frame(self) -> None:
        good = encode_frame("123456789012", 0x91, b"\x07", preamble=0)
        fake = bytearray(good)
        fake[-2] ^= 0xFF
        frame, used = decode_frame(bytes(fake) + good)
        assert frame is not None and used == 2 * len(good)

    def test_bad_checksum_raises(self) -> None:
        raw = bytearray(READ_ENERGY)
        raw[-2] ^= 0x01
        with pytest.raises(ChecksumError):
            decode_frame(bytes(raw))
        with pytest.raises(ChecksumError):
            parse_frame(bytes(raw))

    def test_bad_end_byte_raises_frame_error(self) -> None:
        raw = bytearray(READ_ENERGY)
        raw[-1] = 0x17
        with pytest.raises(FrameError):
            decode_frame(bytes(raw))

    def test_parse_frame_errors(self) -> None:
        with pytest.raises(NoiseError):
            parse_frame(h("00 11 22 33"))
        with pytest.raises(TruncatedFrameError):
            parse_frame(READ_ENERGY[:-3])

    def test_parse_frames_reads_request_and_reply(self) -> None:
        frames = parse_frames(READ_ENERGY + b"\xfe\xfe" + ENERGY_REPLY)
        assert [f.control for f in frames] == [0x11, 0x91]

    def test_control_bits(self) -> None:
        frame = Frame("000000000001", 0xF2, b"")
        assert frame.code == 0x12
        assert frame.is_reply and frame.is_abnormal and frame.has_follow_up

    def test_bad_inputs_are_config_errors(self) -> None:
        with pytest.raises(ConfigError):
            encode_frame("12345", 0x11, preamble=5)
        with pytest.raises(ConfigError):
            encode_frame("ABCDEFABCDEF", 0x11)
        with pytest.raises(ConfigError):
            encode_frame("000000000001", 0x11, bytes(256))

    def test_short_address_is_zero_padded(self) -> None:
        assert dlt645.normalize_address("161") == "000000000161"


class TestBuilders:
    def test_follow_up_carries_di_and_sequence(self) -> None:
        frame = parse_frame(dlt645.read_follow_up_request("000000000001", 0x06000001, 2))
        assert frame.code == Code.READ_FOLLOW_UP
        assert frame.data == h("01 00 00 06 02")

    def test_load_profile_read_carries_count_and_start(self) -> None:
        raw = dlt645.read_request(
            "000000000001", 0x06000001, count=3, start=datetime(2024, 5, 17, 12, 30)
        )
        assert parse_frame(raw).data == h("01 00 00 06 03 30 12 17 05 24")
        with pytest.raises(ConfigError):
            dlt645.read_request("000000000001", 0x06000001, count=3)

    def test_write_request_layout(self) -> None:
        raw = dlt645.write_request(
            "000000000001",
            0x04000102,
            h("56 34 12"),
            password=h("02 11 22 33"),
            operator=h("AA BB CC DD"),
        )
        frame = parse_frame(raw)
        assert frame.code == Code.WRITE
        assert frame.data == h("02 01 00 04 02 11 22 33 AA BB CC DD 56 34 12")
        with pytest.raises(ConfigError):
            dlt645.write_request("1", 0x04000102, b"", password=b"\x00", operator=bytes(4))

    def test_broadcast_time(self) -> None:
        frame = parse_frame(dlt645.broadcast_time_request(datetime(2024, 5, 17, 12, 30, 45)))
        assert frame.address == dlt645.BROADCAST_ADDRESS
        assert frame.code == Code.BROADCAST_TIME
        assert frame.data == h("45 30 12 17 05 24")

    def test_freeze(self) -> None:
        assert parse_frame(dlt645.freeze_request("000000000001")).data == h("99 99 99 99")
        frame = parse_frame(dlt645.freeze_request("000000000001", "00129999"))
        assert frame.code == Code.FREEZE and frame.data == h("00 12 99 99")
        with pytest.raises(ConfigError):
            dlt645.freeze_request("000000000001", "12:00")

    @pytest.mark.parametrize("action", list(RelayAction))
    def test_relay_actions(self, action: RelayAction) -> None:
        frame = parse_frame(
            dlt645.relay_request(
                "000000000001",
                action,
                password=h("02 00 00 00"),
                operator=h("01 02 03 04"),
                valid_until=datetime(2025, 1, 2, 3, 4, 5),
            )
        )
        assert frame.data == h("02 00 00 00 01 02 03 04") + bytes([action, 0]) + h(
            "05 04 03 02 01 25"
        )

    def test_reply_frame(self) -> None:
        request = parse_frame(READ_ENERGY)
        raw = dlt645.reply_frame(request, h("00 00 01 00 42 06"))
        assert raw[0] == 0x68  # replies default to no wake-up bytes
        assert parse_frame(raw).control == 0x91
        assert parse_frame(dlt645.reply_frame(request, b"\x02", abnormal=True)).control == 0xD1
        assert parse_frame(dlt645.reply_frame(request, b"", follow_up=True)).control == 0xB1
        wildcard = parse_frame(READ_ADDRESS)
        answer = parse_frame(dlt645.reply_frame(wildcard, b"", address="000000000161"))
        assert answer.address == "000000000161"


class TestAbnormal:
    def test_message_names_bits(self) -> None:
        error = abnormal_error(0x06)
        assert isinstance(error, AbnormalReplyError)
        assert error.flags == 0x06
        assert "no requested data" in str(error)
        assert "password" in str(error)

    def test_reserved_bit(self) -> None:
        assert "reserved" in str(abnormal_error(0x80))
        assert "other error" in str(abnormal_error(0x01))


addresses = st.text(alphabet="0123456789", min_size=12, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes_is_typed(buffer: bytes) -> None:
    try:
        frame, used = decode_frame(buffer)
    except FrameError:
        return
    if frame is None:
        assert used == 0
    else:
        assert 0 < used <= len(buffer)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=40), addresses, st.integers(0, 255))
def test_frame_survives_noise(prefix: bytes, payload: bytes, address: str, control: int) -> None:
    raw = encode_frame(address, control, payload)
    noise = prefix.replace(b"\x68", b"\x00")
    frame, used = decode_frame(noise + raw)
    assert frame == Frame(address, control, payload)
    assert used == len(noise) + len(raw)


@settings(max_examples=300, deadline=None)
@given(addresses, st.integers(0, 255), st.binary(max_size=255), st.integers(0, 4))
def test_parse_encode_round_trip(address: str, control: int, data: bytes, preamble: int) -> None:
    frame = parse_frame(encode_frame(address, control, data, preamble=preamble))
    assert frame == Frame(address, control, data)


def test_bad_frame_is_reported_even_with_68_in_its_tail() -> None:
    raw = bytearray(encode_frame("000000000001", 0x91, b"\x01\x02\x35\x04", preamble=0))
    assert raw[-4] == 0x68  # 0x35 + 0x33
    raw[-2] ^= 0x01
    with pytest.raises(ChecksumError):
        decode_frame(bytes(raw))
