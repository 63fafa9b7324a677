"""DL/T 645 sans-I/O exchanges against replies built with the real codec."""

from __future__ import annotations

from datetime import datetime

import pytest

from edge_agent.errors import AbnormalReplyError, ChecksumError, ConfigError, UnexpectedReplyError
from edge_agent.model import Value
from edge_agent.protocols import dlt645, dlt645_1997
from edge_agent.protocols.dlt645 import Code, RelayAction, parse_frame, reply_frame
from edge_agent.protocols.dlt645_catalogue import (
    BadDataError,
    Version,
    di_bytes,
    encode_item,
    encode_load_record,
)
from edge_agent.protocols.dlt645_exchange import (
    CommandExchange,
    FreezeExchange,
    LoadProfileExchange,
    ReadAddressExchange,
    ReadExchange,
)

ADDRESS = "000000000161"
VOLTAGE_KEYS = {0x02010100: "voltage_a", 0x02010200: "voltage_b", 0x02010300: "voltage_c"}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def answer(
    request: bytes, data: bytes, *, follow_up: bool = False, abnormal: bool = False
) -> bytes:
    """Build the reply a meter sends to ``request`` with ``data`` (DI included)."""
    frame = parse_frame(request)
    return reply_frame(frame, data, follow_up=follow_up, abnormal=abnormal, preamble=4)


def run(exchange: ReadExchange, replies: list[bytes]) -> list[bytes]:
    """Play ``replies`` one per request; return the requests sent."""
    sent = []
    for reply in replies:
        sent.append(exchange.request())
        assert exchange.receive(reply[:-1]) == 0
        assert exchange.receive(reply) == len(reply)
    assert exchange.done
    return sent


class TestRead2007:
    def test_published_voltage_capture(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x02010100, VOLTAGE_KEYS)
        assert exchange.request()[4:] == h("68 61 01 00 00 00 00 68 11 04 33 34 34 35 17 16")
        reply = h("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16")
        assert exchange.receive(reply) == len(reply)
        assert exchange.done
        assert exchange.values() == {"voltage_a": 100.1}
        assert exchange.silence_chars == 0

    def test_block(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x0201FF00, VOLTAGE_KEYS)
        payload = encode_item(0x0201FF00, {0x02010100: 230.1, 0x02010200: 229.9, 0x02010300: 0.0})
        run(exchange, [answer(exchange.request(), di_bytes(0x0201FF00) + payload)])
        assert exchange.values() == {"voltage_a": 230.1, "voltage_b": 229.9, "voltage_c": 0.0}

    def test_unkeyed_members_are_only_in_decoded(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x0201FF00, {0x02010100: "voltage_a"})
        payload = encode_item(0x0201FF00, {0x02010100: 230.1, 0x02010200: 229.9})
        run(exchange, [answer(exchange.request(), di_bytes(0x0201FF00) + payload)])
        assert exchange.values() == {"voltage_a": 230.1}
        assert exchange.decoded == {0x02010100: 230.1, 0x02010200: 229.9}

    def test_follow_up_frames_are_assembled(self) -> None:
        di = 0x0001FF00
        values: dict[int, Value] = {
            0x00010000: 1206.42,
            0x00010100: 100.0,
            0x00010200: 200.0,
            0x00010300: 300.0,
            0x00010400: 606.42,
        }
        payload = encode_item(di, values)
        keys = {0x00010000: "energy_import_total", 0x00010400: "energy_import_t4"}
        exchange = ReadExchange(ADDRESS, di, keys)
        first = answer(exchange.request(), di_bytes(di) + payload[:7], follow_up=True)
        exchange.receive(first)
        assert not exchange.done
        follow = exchange.request()
        assert parse_frame(follow).code == Code.READ_FOLLOW_UP
        assert parse_frame(follow).data == di_bytes(di) + b"\x01"
        second = answer(follow, di_bytes(di) + payload[7:15] + b"\x01", follow_up=True)
        exchange.receive(second)
        follow = exchange.request()
        assert parse_frame(follow).data[-1] == 2
        exchange.receive(answer(follow, di_bytes(di) + payload[15:] + b"\x02"))
        assert exchange.done
        assert exchange.values() == {"energy_import_total": 1206.42, "energy_import_t4": 606.42}

    def test_follow_up_with_wrong_sequence(self) -> None:
        di = 0x0001FF00
        exchange = ReadExchange(ADDRESS, di, {})
        exchange.receive(answer(exchange.request(), di_bytes(di) + bytes(4), follow_up=True))
        with pytest.raises(UnexpectedReplyError, match="sequence"):
            exchange.receive(answer(exchange.request(), di_bytes(di) + bytes(4) + b"\x05"))

    def test_abnormal_reply(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x02010100, VOLTAGE_KEYS)
        reply = answer(exchange.request(), b"\x02", abnormal=True)
        with pytest.raises(AbnormalReplyError, match="no requested data") as info:
            exchange.receive(reply)
        assert info.value.flags == 0x02

    def test_unexpected_replies(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x02010100, VOLTAGE_KEYS)
        request = exchange.request()
        other_di = answer(request, di_bytes(0x02010200) + h("00 22"))
        with pytest.raises(UnexpectedReplyError, match="DI"):
            exchange.receive(other_di)
        other_meter = dlt645.encode_frame("000000000162", 0x91, di_bytes(0x02010100) + h("00 22"))
        with pytest.raises(UnexpectedReplyError, match="000000000162"):
            exchange.receive(other_meter)
        other_code = dlt645.encode_frame(ADDRESS, 0x94, b"")
        with pytest.raises(UnexpectedReplyError, match="code"):
            exchange.receive(other_code)

    def test_echo_of_request_is_skipped(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x02010100, VOLTAGE_KEYS)
        request = exchange.request()
        reply = answer(request, di_bytes(0x02010100) + h("00 22"))
        assert exchange.receive(request) == 0
        assert exchange.receive(request + reply) == len(request) + len(reply)
        assert exchange.values() == {"voltage_a": 220.0}

    def test_wildcard_address_accepts_the_meter(self) -> None:
        exchange = ReadExchange("AAAAAAAAAAAA", 0x02010100, VOLTAGE_KEYS)
        reply = reply_frame(
            parse_frame(exchange.request()), di_bytes(0x02010100) + h("00 22"), address=ADDRESS
        )
        exchange.receive(reply)
        assert exchange.values() == {"voltage_a": 220.0}

    def test_corrupt_reply(self) -> None:
        exchange = ReadExchange(ADDRESS, 0x02010100, VOLTAGE_KEYS)
        reply = bytearray(answer(exchange.request(), di_bytes(0x02010100) + h("00 22")))
        reply[-2] ^= 0x55
        with pytest.raises(ChecksumError):
            exchange.receive(bytes(reply))


class TestRead1997:
    def test_published_b611(self) -> None:
        exchange = ReadExchange(
            "000000000003", 0xB611, {0xB611: "voltage_a"}, version=Version.V1997
        )
        assert exchange.request()[4:] == h("68 03 00 00 00 00 00 68 01 02 44 E9 03 16")
        exchange.receive(h("68 03 00 00 00 00 00 68 81 04 44 E9 33 34 EC 16"))
        assert exchange.values() == {"voltage_a": 100.0}

    def test_follow_up_has_no_sequence(self) -> None:
        exchange = ReadExchange(
            ADDRESS, 0x901F, {0x9010: "energy_import_total"}, version=Version.V1997
        )
        values: dict[int, Value] = {0x9010: 12.5, 0x9011: 1, 0x9012: 2, 0x9013: 3, 0x9014: 6.5}
        payload = encode_item(0x901F, values, Version.V1997)
        exchange.receive(answer(exchange.request(), h("1F 90") + payload[:8], follow_up=True))
        follow = parse_frame(exchange.request())
        assert follow.code == dlt645_1997.Code1997.READ_FOLLOW_UP
        assert follow.data == h("1F 90")
        exchange.receive(reply_frame(follow, h("1F 90") + payload[8:]))
        assert exchange.values() == {"energy_import_total": 12.5}
        assert exchange.decoded[0x9014] == 6.5

    def test_abnormal_reply_uses_1997_bits(self) -> None:
        exchange = ReadExchange(ADDRESS, 0xB611, {}, version=Version.V1997)
        with pytest.raises(AbnormalReplyError, match="wrong data identifier"):
            exchange.receive(answer(exchange.request(), b"\x02", abnormal=True))

    def test_no_load_profile_on_1997(self) -> None:
        with pytest.raises(ConfigError):
            ReadExchange(ADDRESS, 0xB611, {}, version=Version.V1997, count=1)


def record_values(seed: int) -> dict[int, Value]:
    base = 220.0 + seed
    return {
        0x02010100: base,
        0x02010200: base + 0.5,
        0x02010300: base + 1.0,
        0x02020100: -1.25,
        0x02020200: 0.5,
        0x02020300: 0.0,
        0x02800002: 50.0,
    }


LP_KEYS = {0x02010100: "voltage_a", 0x02020100: "current_a", 0x02800002: "frequency"}


class TestLoadProfile:
    def test_records_across_follow_up_frames(self) -> None:
        start = datetime(2024, 5, 17, 12, 0)
        records = b"".join(
            encode_load_record(start.replace(minute=15 * n), record_values(n)) for n in range(4)
        )
        exchange = LoadProfileExchange(ADDRESS, LP_KEYS, count=4, start=start)
        request = parse_frame(exchange.request())
        assert request.data == h("01 00 00 06 04 00 12 17 05 24")
        di = di_bytes(0x06000001)
        exchange.receive(reply_frame(request, di + records[:50], follow_up=True))
        seq = 1
        rest = records[50:]
        while rest:
            chunk, rest = rest[:60], rest[60:]
            follow = parse_frame(exchange.request())
            exchange.receive(reply_frame(follow, di + chunk + bytes([seq]), follow_up=bool(rest)))
            seq += 1
        assert exchange.done
        rows = exchange.rows()
        assert [when.minute for when, _ in rows] == [0, 15, 30, 45]
        assert rows[2][1] == {"voltage_a": 222.0, "current_a": -1.25, "frequency": 50.0}
        assert exchange.values() == rows[-1][1]

    def test_no_data_means_no_rows(self) -> None:
        exchange = LoadProfileExchange(ADDRESS, LP_KEYS, count=1, start=datetime(2024, 5, 17))
        exchange.receive(answer(exchange.request(), b"\x02", abnormal=True))
        assert exchange.done and exchange.rows() == [] and exchange.values() == {}

    def test_other_refusals_raise(self) -> None:
        exchange = LoadProfileExchange(ADDRESS, LP_KEYS, count=1, start=datetime(2024, 5, 17))
        with pytest.raises(AbnormalReplyError):
            exchange.receive(answer(exchange.request(), b"\x04", abnormal=True))


class TestFreeze:
    def test_daily_freeze_reads_time_then_energies(self) -> None:
        keys = {0x00010000: "energy_import_total", 0x00020000: "energy_export_total"}
        exchange = FreezeExchange(ADDRESS, keys, back=2)
        replies = {
            0x05060002: encode_item(0x05060002, {0x05060002: "2024-05-16T00:00"}),
            0x05060102: encode_item(0x05060102, {0x00010000: 1500.25, 0x00010100: 700.0}),
            0x05060202: encode_item(0x05060202, {0x00020000: 3.5}),
        }
        asked = []
        while not exchange.done:
            request = parse_frame(exchange.request())
            di = int.from_bytes(request.data[:4], "little")
            asked.append(di)
            exchange.receive(reply_frame(request, request.data[:4] + replies[di]))
        assert asked == [0x05060002, 0x05060102, 0x05060202]
        assert exchange.row == (
            datetime(2024, 5, 16),
            {"energy_import_total": 1500.25, "energy_export_total": 3.5},
        )

    def test_hourly_freeze_skips_unkeyed_blocks(self) -> None:
        exchange = FreezeExchange(ADDRESS, {0x00010000: "energy_import_total"}, hourly=True)
        asked = []
        replies = {
            0x05040001: encode_item(0x05040001, {0x05040001: "2024-05-17T13:00"}),
            0x05040101: encode_item(0x05040101, {0x00010000: 42.0}),
        }
        while not exchange.done:
            request = parse_frame(exchange.request())
            di = int.from_bytes(request.data[:4], "little")
            asked.append(di)
            exchange.receive(reply_frame(request, request.data[:4] + replies[di]))
        assert asked == [0x05040001, 0x05040101]
        assert exchange.values() == {"energy_import_total": 42.0}


class TestCommands:
    def test_relay_command_accepted(self) -> None:
        request = dlt645.relay_request(
            ADDRESS,
            RelayAction.TRIP,
            password=h("02 00 00 00"),
            operator=bytes(4),
            valid_until=datetime(2030, 1, 1),
        )
        exchange = CommandExchange(request, ADDRESS, Code.RELAY)
        assert exchange.request() == request and not exchange.done
        assert exchange.receive(answer(request, b"")) > 0
        assert exchange.done and exchange.values() == {}

    def test_write_refused_for_password(self) -> None:
        request = dlt645.write_request(
            ADDRESS, 0x04000102, h("00 00 12"), password=bytes(4), operator=bytes(4)
        )
        exchange = CommandExchange(request, ADDRESS, Code.WRITE)
        exchange.request()
        with pytest.raises(AbnormalReplyError, match="password"):
            exchange.receive(answer(request, b"\x04", abnormal=True))

    def test_broadcast_needs_no_reply(self) -> None:
        request = dlt645.broadcast_time_request(datetime(2024, 5, 17, 12, 0))
        exchange = CommandExchange(request, dlt645.BROADCAST_ADDRESS, Code.BROADCAST_TIME)
        assert not exchange.expects_reply
        exchange.request()
        assert exchange.done

    def test_1997_write_address_reply_from_new_address(self) -> None:
        request = dlt645_1997.write_address_request("000000000777")
        exchange = CommandExchange(
            request,
            dlt645.BROADCAST_ADDRESS,
            dlt645_1997.Code1997.WRITE_ADDRESS,
            version=Version.V1997,
            expects_reply=True,
        )
        exchange.request()
        reply = reply_frame(parse_frame(request), b"", address="000000000777")
        exchange.receive(reply)
        assert exchange.done and exchange.reply is not None
        assert exchange.reply.address == "000000000777"


class TestReadAddress:
    def test_reads_the_address(self) -> None:
        exchange = ReadAddressExchange()
        request = exchange.request()
        assert request[-5:] == h("68 13 00 DF 16")
        reply = reply_frame(parse_frame(request), h("61 01 00 00 00 00"), address=ADDRESS)
        exchange.receive(reply)
        assert exchange.done and exchange.address == ADDRESS

    def test_bad_length(self) -> None:
        exchange = ReadAddressExchange()
        reply = reply_frame(parse_frame(exchange.request()), b"\x01", address=ADDRESS)
        with pytest.raises(BadDataError, match="not 6"):
            exchange.receive(reply)


def test_freeze_number_is_checked() -> None:
    with pytest.raises(ConfigError):
        FreezeExchange(ADDRESS, {}, back=0)
    with pytest.raises(ConfigError):
        FreezeExchange(ADDRESS, {}, back=63)
    assert FreezeExchange(ADDRESS, {}, hourly=True, back=254).request()
