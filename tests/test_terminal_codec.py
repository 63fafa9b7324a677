"""Terminal protocol: worked examples of docs/terminal-protocol.md, codecs, errors, sequences."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import FrameError
from edge_agent.protocols.terminal import (
    BY_CODE,
    BY_KEY,
    Ack,
    AckStatus,
    AuthenticationError,
    Channel,
    Command,
    CommandKind,
    EncodeError,
    Encoding,
    MalformedJsonError,
    PayloadError,
    PayloadFieldError,
    PayloadLengthError,
    SequenceKind,
    SequenceTracker,
    TerminalCodec,
    TerminalTopics,
    UnknownQuantityError,
    UnsupportedVersionError,
    detect_encoding,
    is_valid_terminal_id,
)
from edge_agent.quantities import QUANTITIES

# --- worked examples, byte for byte as in docs/terminal-protocol.md ------------------------

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
TID = "nb-0001"
VALUES = {
    "voltage_a": 229.87,
    "current_a": 5.123,
    "power_active_total": 1.1772,
    "energy_import_total": 12345.67,
}
BINARY_READING = bytes.fromhex(
    "b1 01 2a 00 00 00 80 85 74 67 04"
    " 01 cb 59 00 00  08 03 14 00 00  10 fc 2d 00 00  30 87 d6 12 00"
    " ae 78 3d 5b fc 11 c9 56"
)
BINARY_COMMAND = bytes.fromhex(
    "c1 01 07 00 00 00 bc 85 74 67 01 0c 30 30 30 30 31 32 33 34 35 36 37 38"
    " 7f 53 60 6b f5 a2 d3 86"
)
BINARY_TIME_SYNC = bytes.fromhex("c1 01 08 00 00 00 f8 85 74 67 03 00 21 75 24 a2 ee f4 e5 d9")
BINARY_ACK = bytes.fromhex("a1 01 07 00 00 00 00 e1 c7 db 98 bf b2 62 e3")
JSON_READING = (
    b'{"seq":42,"ts":1735689600,"values":{"voltage_a":229.87,"current_a":5.123,'
    b'"power_active_total":1.1772,"energy_import_total":12345.67},'
    b'"mac":"dbc9f3a9abf7a62e299eb8d56a7bcb90"}'
)
JSON_COMMAND = (
    b'{"id":7,"cmd":"relay_trip","ts":1735689660,"meter":"000012345678",'
    b'"mac":"69788a43f8cccd04037654727dd2b981"}'
)
JSON_ACK = b'{"id":7,"status":"ok","mac":"1def2df64dded94a0de7223eddf3f64c"}'


def _tag(context: str, body: bytes, length: int) -> bytes:
    """Compute the documented MAC without the package."""
    return hmac.new(KEY, context.encode() + b"\n" + body, hashlib.sha256).digest()[:length]


def test_binary_reading_example_decodes_field_by_field() -> None:
    magic, flags, seq, ts, count = struct.unpack_from("<BBIIB", BINARY_READING)
    assert (magic, flags, seq, ts, count) == (0xB1, 0x01, 42, 1735689600, 4)
    assert BINARY_READING[-8:] == _tag("nb-0001/up", BINARY_READING[:-8], 8)
    message = TerminalCodec(TID, Encoding.BINARY, KEY).decode_reading(BINARY_READING)
    assert (message.terminal_id, message.seq, message.timestamp) == (TID, 42, 1735689600)
    assert message.values == VALUES


def test_binary_reading_example_is_what_the_encoder_writes() -> None:
    codec = TerminalCodec(TID, Encoding.BINARY, KEY, mac_len=8)
    assert codec.encode_reading(42, 1735689600, VALUES) == BINARY_READING
    unsigned = TerminalCodec(TID, Encoding.BINARY).encode_reading(42, 1735689600, VALUES)
    assert unsigned == b"\xb1\x00" + BINARY_READING[2:-8]


def test_json_reading_example_mac_covers_the_body_without_the_mac_member() -> None:
    body = JSON_READING[: JSON_READING.index(b',"mac"')] + b"}"
    tag = json.loads(JSON_READING)["mac"]
    assert bytes.fromhex(tag) == _tag("nb-0001/up", body, 16)
    codec = TerminalCodec(TID, Encoding.JSON, KEY)
    assert codec.encode_reading(42, 1735689600, VALUES) == JSON_READING
    assert codec.decode_reading(JSON_READING).values == VALUES


def test_command_and_ack_examples() -> None:
    binary = TerminalCodec(TID, Encoding.BINARY, KEY, mac_len=8)
    trip = Command(7, CommandKind.RELAY_TRIP, 1735689660, "000012345678")
    assert binary.encode_command(trip) == BINARY_COMMAND
    assert binary.decode_command(BINARY_COMMAND) == trip
    assert BINARY_COMMAND[-8:] == _tag("nb-0001/down", BINARY_COMMAND[:-8], 8)
    sync = binary.decode_command(BINARY_TIME_SYNC)
    assert sync == Command(8, CommandKind.TIME_SYNC, 1735689720, None)
    assert binary.decode_ack(BINARY_ACK) == Ack(7, AckStatus.OK)
    assert BINARY_ACK[-8:] == _tag("nb-0001/ack", BINARY_ACK[:-8], 8)
    as_json = TerminalCodec(TID, Encoding.JSON, KEY)
    assert as_json.encode_command(trip) == JSON_COMMAND
    assert as_json.decode_command(JSON_COMMAND) == trip
    assert as_json.encode_ack(Ack(7, AckStatus.OK)) == JSON_ACK
    assert as_json.decode_ack(JSON_ACK) == Ack(7, AckStatus.OK)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize("key", [None, KEY])
def test_round_trips(encoding: Encoding, key: bytes | None) -> None:
    codec = TerminalCodec(TID, encoding, key, mac_len=8)
    values = {"voltage_b": 231.5, "relay_state": 1, "status_word_1": 0x8001, "frequency": 49.98}
    message = codec.decode_reading(codec.encode_reading(0, 0, values))
    assert (message.seq, message.timestamp, message.values) == (0, 0, values)
    for command in (
        Command(1, CommandKind.RELAY_CLOSE, 1, "3"),
        Command(0xFFFF_FFFF, CommandKind.TIME_SYNC, 0xFFFF_FFFF),
    ):
        assert codec.decode_command(codec.encode_command(command)) == command
    for status in AckStatus:
        assert codec.decode_ack(codec.encode_ack(Ack(9, status))) == Ack(9, status)


def test_json_ack_carries_detail_binary_does_not() -> None:
    ack = Ack(3, AckStatus.FAILED, "meter did not answer")
    assert (
        TerminalCodec(TID, Encoding.JSON).decode_ack(
            TerminalCodec(TID, Encoding.JSON).encode_ack(ack)
        )
        == ack
    )
    binary = TerminalCodec(TID, Encoding.BINARY)
    assert binary.decode_ack(binary.encode_ack(ack)) == Ack(3, AckStatus.FAILED)


def test_binary_values_are_rounded_to_the_code_scale() -> None:
    codec = TerminalCodec(TID, Encoding.BINARY)
    values = {"voltage_a": 229.876, "energy_import_total": 0.004, "power_factor_total": -0.9876}
    decoded = codec.decode_reading(codec.encode_reading(1, 1, values)).values
    assert decoded == {
        "voltage_a": 229.88,
        "energy_import_total": 0.0,
        "power_factor_total": -0.988,
    }


def test_decoder_detects_the_encoding() -> None:
    assert detect_encoding(b'  {"seq":1}') is Encoding.JSON
    assert detect_encoding(b"") is Encoding.JSON
    assert detect_encoding(BINARY_READING) is Encoding.BINARY
    # A terminal configured for binary may still send JSON.
    assert TerminalCodec(TID, Encoding.BINARY, KEY).decode_reading(JSON_READING).seq == 42


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [BINARY_READING, JSON_READING])
def test_mac_binds_key_terminal_and_channel(payload: bytes) -> None:
    TerminalCodec(TID, key=KEY).decode_reading(payload)
    with pytest.raises(AuthenticationError, match="mismatch"):
        TerminalCodec(TID, key=bytes(16)).decode_reading(payload)
    with pytest.raises(AuthenticationError, match="mismatch"):
        TerminalCodec("nb-0002", key=KEY).decode_reading(payload)
    with pytest.raises(PayloadError):  # a reading replayed as an ack
        TerminalCodec(TID, key=KEY).decode_ack(payload)


def test_tampered_binary_reading_is_rejected() -> None:
    tampered = bytearray(BINARY_READING)
    tampered[12] ^= 0x01  # voltage_a low byte
    with pytest.raises(AuthenticationError):
        TerminalCodec(TID, key=KEY).decode_reading(bytes(tampered))
    # Without a key the same bytes decode: the MAC is only checked when configured.
    assert TerminalCodec(TID).decode_reading(bytes(tampered)).values["voltage_a"] == 229.86


def test_tampered_json_reading_is_rejected() -> None:
    tampered = JSON_READING.replace(b"229.87", b"239.87")
    with pytest.raises(AuthenticationError, match="mismatch"):
        TerminalCodec(TID, key=KEY).decode_reading(tampered)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"seq":1,"ts":1,"values":{}}', "missing MAC"),
        (BINARY_READING[:-8].replace(b"\xb1\x01", b"\xb1\x00", 1), "missing MAC"),
        (b'{"mac":"0011223344556677","seq":1,"ts":1,"values":{}}', "last member"),
        (b'{"seq":1,"ts":1,"values":{},"mac":"zz"}', "not hex"),
        (b'{"seq":1,"ts":1,"values":{},"mac":"\\ud800"}', "not hex"),
        (b'{"seq":1,"ts":1,"values":{},"mac":7}', "hex string"),
        (b'{"seq":1,"ts":1,"values":{},"mac":"00"}', "MAC of 1 bytes"),
    ],
)
def test_missing_or_misplaced_mac(payload: bytes, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        TerminalCodec(TID, key=KEY).decode_reading(payload)


def test_json_mac_may_be_followed_by_a_newline() -> None:
    assert TerminalCodec(TID, key=KEY).decode_reading(JSON_READING + b"\r\n").seq == 42


# --- malformed payloads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (b"\xb1", PayloadLengthError, "no header"),
        (b"\xb2\x00" + BINARY_READING[2:-8], UnsupportedVersionError, "0xB2"),
        (b"\xb1\x04" + BINARY_READING[2:-8], UnsupportedVersionError, "flags"),
        (b"\xb1\x02" + BINARY_READING[2:-8], UnsupportedVersionError, "flags"),
        (b"\xb1\x00\x01\x00", PayloadLengthError, "shorter than its header"),
        (b"\xb1\x00" + BINARY_READING[2:-9], PayloadLengthError, "announces 4 values"),
        (b"\xb1\x00" + bytes(8) + b"\x01\xff\x00\x00\x00\x00", UnknownQuantityError, "0xFF"),
        (b"\xb1\x00" + bytes(8) + b"\x02" + b"\x01" * 10, PayloadFieldError, "twice"),
        (b"\xb1\x01" + bytes(5), PayloadLengthError, "8-byte MAC"),
        (b"{", MalformedJsonError, "not JSON"),
        (b"{\xff}", MalformedJsonError, "not JSON"),
        (b"{" * 100_000, MalformedJsonError, "not JSON"),
        (b"[1]", MalformedJsonError, "object"),
        (b'{"seq":1,"ts":1,"values":{"voltage_a":NaN}}', MalformedJsonError, "NaN"),
        (b'{"seq":1,"ts":1,"values":[]}', PayloadFieldError, "values"),
        (b'{"seq":1,"ts":1,"values":{"voltage_a":"230"}}', PayloadFieldError, "number"),
        (b'{"seq":1,"ts":1,"values":{"voltage_a":true}}', PayloadFieldError, "number"),
        (b'{"seq":1,"ts":1,"values":{"volts":230}}', UnknownQuantityError, "volts"),
        (b'{"seq":1,"ts":1,"values":{"voltage_a":1,"voltage_a":2}}', PayloadFieldError, "twice"),
        (b'{"ts":1,"values":{}}', PayloadFieldError, "missing field 'seq'"),
        (b'{"seq":-1,"ts":1,"values":{}}', PayloadFieldError, "seq"),
        (b'{"seq":4294967296,"ts":1,"values":{}}', PayloadFieldError, "seq"),
        (b'{"seq":1.5,"ts":1,"values":{}}', PayloadFieldError, "seq"),
        (b'{"seq":1,"ts":true,"values":{}}', PayloadFieldError, "ts"),
    ],
)
def test_malformed_readings(payload: bytes, error: type[PayloadError], message: str) -> None:
    with pytest.raises(error, match=message):
        TerminalCodec(TID).decode_reading(payload)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"id":1,"cmd":"explode","ts":1}', "relay_trip, relay_close, time_sync"),
        (b'{"id":1,"cmd":["relay_trip"],"ts":1}', "cmd"),
        (b'{"id":1,"cmd":"relay_trip","ts":1,"meter":""}', "meter"),
        (b"\xc1\x00" + bytes(8) + b"\x09\x00", "unknown command kind 9"),
        (b"\xc1\x00" + bytes(8) + b"\x01\x01\xff", "ASCII"),
        (b"\xc1\x00" + bytes(8) + b"\x01\x21" + b"1" * 33, "at most 32"),
    ],
)
def test_malformed_commands(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadFieldError, match=message):
        TerminalCodec(TID).decode_command(payload)


def test_malformed_acks() -> None:
    codec = TerminalCodec(TID)
    with pytest.raises(PayloadFieldError, match="unknown ack status 7"):
        codec.decode_ack(b"\xa1\x00\x01\x00\x00\x00\x07")
    with pytest.raises(PayloadLengthError):
        codec.decode_ack(b"\xa1\x00\x01\x00\x00\x00")
    with pytest.raises(PayloadFieldError, match="detail"):
        codec.decode_ack(b'{"id":1,"status":"ok","detail":5}')


def test_payload_errors_are_frame_errors() -> None:
    assert issubclass(PayloadError, FrameError)
    assert issubclass(AuthenticationError, PayloadError)


# --- encoder errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "values", "message"),
    [
        (Encoding.BINARY, {"voltage_a": 3e7}, "does not fit"),
        (Encoding.BINARY, {"voltage_a": math.nan}, "not finite"),
        (Encoding.JSON, {"voltage_a": math.inf}, "not finite"),
        (Encoding.JSON, {"voltage_a": "230"}, "must be a number"),
        (Encoding.JSON, {"volts": 230.0}, "unknown quantity key"),
    ],
)
def test_unencodable_values(encoding: Encoding, values: dict[str, float], message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        TerminalCodec(TID, encoding).encode_reading(1, 1, values)


def test_unencodable_fields() -> None:
    with pytest.raises(EncodeError, match="seq"):
        TerminalCodec(TID).encode_reading(-1, 0, {})
    with pytest.raises(EncodeError, match="255"):
        TerminalCodec(TID, Encoding.BINARY).encode_reading(1, 1, {f"k{i}": 0 for i in range(256)})
    with pytest.raises(EncodeError, match="binary MAC length"):
        TerminalCodec(TID, Encoding.BINARY, KEY, mac_len=32).encode_ack(Ack(1, AckStatus.OK))
    with pytest.raises(EncodeError, match="meter address"):
        TerminalCodec(TID).encode_command(Command(1, CommandKind.RELAY_TRIP, 1, "x" * 33))


# --- quantity codes and topics --------------------------------------------------------------


def test_quantity_code_table() -> None:
    assert len(BY_CODE) == len(BY_KEY)
    assert set(BY_KEY) <= set(QUANTITIES)
    assert all(0 < row.code < 0x100 and row.exponent <= 0 for row in BY_CODE.values())
    common = {key for key, q in QUANTITIES.items() if q.common}
    assert common <= set(BY_KEY), f"common quantities without a code: {common - set(BY_KEY)}"
    assert BY_KEY["energy_import_total"].code == 0x30
    assert BY_KEY["energy_import_total"].exponent == -2


def test_topics() -> None:
    topics = TerminalTopics()
    assert topics.topic("nb-0001", Channel.UP) == "gridmeter/nb-0001/up"
    assert topics.subscription(Channel.ACK) == "gridmeter/+/ack"
    assert topics.bridge_status == "gridmeter/bridge/status"
    match = topics.parse("gridmeter/nb-0001/status")
    assert match is not None
    assert (match.terminal_id, match.channel) == ("nb-0001", Channel.STATUS)
    for other in ("gridmeter/nb-0001", "gridmeter/a/b/up", "other/nb-0001/up", "gridmeter/x/foo"):
        assert topics.parse(other) is None
    assert TerminalTopics("site/7").parse("site/7/t1/down") is not None
    assert is_valid_terminal_id("864215040123456")
    for bad in ("", "a/b", "a+", "#", "bridge", "x" * 65):
        assert not is_valid_terminal_id(bad)


# --- sequence tracking --------------------------------------------------------------------------


def _kinds(tracker: SequenceTracker, *events: tuple[int, int]) -> list[SequenceKind]:
    return [tracker.observe(seq, ts).kind for seq, ts in events]


def test_sequence_in_order_gap_and_late_arrival() -> None:
    tracker = SequenceTracker()
    assert _kinds(tracker, (0, 100), (1, 101)) == [SequenceKind.FIRST, SequenceKind.IN_ORDER]
    gap = tracker.observe(5, 105)
    assert (gap.kind, gap.missing) == (SequenceKind.GAP, ((2, 4),))
    assert tracker.observe(9, 109).missing == ((6, 8),)
    assert list(tracker.missing) == [(2, 4), (6, 8)]
    late = tracker.observe(3, 103)
    assert (late.kind, late.fresh) == (SequenceKind.OUT_OF_ORDER, True)
    assert list(tracker.missing) == [(2, 2), (4, 4), (6, 8)]
    assert tracker.observe(3, 103).kind is SequenceKind.DUPLICATE
    assert tracker.last == 9


def test_sequence_duplicate_is_not_fresh() -> None:
    tracker = SequenceTracker()
    _kinds(tracker, (10, 1000), (11, 1010))
    event = tracker.observe(11, 1010)
    assert (event.kind, event.fresh) == (SequenceKind.DUPLICATE, False)


def test_sequence_restart_is_told_from_a_duplicate_by_its_timestamp() -> None:
    tracker = SequenceTracker()
    _kinds(tracker, (0, 1000), (1, 1010), (2, 1020))
    restart = tracker.observe(0, 2000)
    assert (restart.kind, restart.previous, restart.fresh) == (SequenceKind.RESTART, 2, True)
    assert tracker.observe(1, 2010).kind is SequenceKind.IN_ORDER
    # After a reboot without a clock the timestamp is 0.
    assert tracker.observe(0, 0).kind is SequenceKind.RESTART


def test_sequence_restart_far_below_the_window() -> None:
    tracker = SequenceTracker(window=4)
    _kinds(tracker, *((n, 1000 + n) for n in range(100, 110)))
    assert tracker.observe(0, 5000).kind is SequenceKind.RESTART
    assert tracker.missing == ()


def test_sequence_stale_message() -> None:
    tracker = SequenceTracker(window=4)
    _kinds(tracker, *((n, 1000 + n) for n in range(100, 110)))
    stale = tracker.observe(50, 900)
    assert (stale.kind, stale.fresh) == (SequenceKind.STALE, False)
    assert tracker.last == 109
    # A recent number with an older timestamp than the one recorded is stale too.
    assert tracker.observe(108, 1000).kind is SequenceKind.STALE


def test_sequence_limits_missing_ranges() -> None:
    tracker = SequenceTracker(max_ranges=3)
    _kinds(tracker, *((n * 2, n) for n in range(10)))
    assert tracker.missing == ((13, 13), (15, 15), (17, 17))


# --- properties -----------------------------------------------------------------------------

_CODECS = [TerminalCodec(TID), TerminalCodec(TID, Encoding.BINARY, KEY)]
_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_JSON_KEYS = st.sampled_from(["seq", "ts", "values", "mac", "id", "cmd", "status", "meter"])
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_JSON_KEYS | st.sampled_from(sorted(QUANTITIES)[:5]), inner, max_size=5)
    ),
    max_leaves=12,
)


def _decode_everything(payload: bytes) -> None:
    for codec in _CODECS:
        for decode in (codec.decode_reading, codec.decode_command, codec.decode_ack):
            with contextlib.suppress(PayloadError):
                decode(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_decode_or_raise_a_payload_error(payload: bytes) -> None:
    _decode_everything(payload)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([0xB1, 0xC1, 0xA1]),
    st.sampled_from([0, 1, 3]),
    st.binary(min_size=9, max_size=40),
)
def test_any_binary_body_decodes_or_raises_a_payload_error(
    type_byte: int, flags: int, body: bytes
) -> None:
    _decode_everything(bytes((type_byte, flags)) + body)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_json_decodes_or_raises_a_payload_error(document: object) -> None:
    _decode_everything(json.dumps(document).encode())


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(BY_KEY)),
        st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
        max_size=20,
    ),
    st.integers(0, 0xFFFF_FFFF),
)
def test_binary_round_trip_is_within_half_a_step(values: dict[str, float], seq: int) -> None:
    codec = TerminalCodec(TID, Encoding.BINARY, KEY)
    decoded = codec.decode_reading(codec.encode_reading(seq, seq, values))
    assert decoded.seq == seq
    assert decoded.values.keys() == values.keys()
    for key, value in values.items():
        step = 10.0 ** BY_KEY[key].exponent
        assert abs(float(decoded.values[key]) - value) <= step / 2 + 1e-9


# --- the documentation matches the code ----------------------------------------------------

DOC = (Path(__file__).resolve().parent.parent / "docs" / "terminal-protocol.md").read_text()


def test_documented_code_table_matches() -> None:
    rows = re.findall(r"^\| `0x([0-9A-F]{2})` \| `(\w+)` \| [^|]+ \| (-?\d+) \|$", DOC, re.M)
    documented = {int(code, 16): (key, int(exponent)) for code, key, exponent in rows}
    assert documented == {code: (row.key, row.exponent) for code, row in BY_CODE.items()}


def _documented_hex() -> list[str]:
    """Hex dumps in the code blocks: the leading bytes of each line, and each block joined."""
    dumps = []
    for block in re.findall(r"^```\w*\n(.*?)^```", DOC, re.S | re.M):
        heads = [line.split("  ")[0].strip() for line in block.splitlines()]
        lines = [head for head in heads if re.fullmatch(r"[0-9a-f]{2}( [0-9a-f]{2})*", head)]
        dumps += [*lines, " ".join(lines)]
    return dumps


@pytest.mark.parametrize(
    "example", [BINARY_READING, BINARY_COMMAND, BINARY_TIME_SYNC, BINARY_ACK, JSON_READING]
)
def test_documented_examples_match(example: bytes) -> None:
    if example.startswith(b"{"):
        assert example.decode() in DOC
    else:
        assert example.hex(" ") in _documented_hex()
