"""DL/T 645-1997: 2-byte DIs, its control codes, builders and catalogue."""

from __future__ import annotations

from datetime import datetime

import pytest

from edge_agent.errors import AbnormalReplyError, ConfigError, UnknownDataIdError
from edge_agent.protocols import dlt645_1997 as v97
from edge_agent.protocols.dlt645 import parse_frame, reply_frame
from edge_agent.protocols.dlt645_1997 import Code1997
from edge_agent.protocols.dlt645_catalogue import Version, decode_item, di_from_bytes, lookup


def h(text: str) -> bytes:
    return bytes.fromhex(text)


V97 = Version.V1997

# Published captures: B611 (phase A voltage) and 9010 (forward active energy).
READ_B611 = h("68 03 00 00 00 00 00 68 01 02 44 E9 03 16")
REPLY_B611 = h("68 03 00 00 00 00 00 68 81 04 44 E9 33 34 EC 16")
READ_9010 = h("68 54 07 13 00 80 13 68 01 02 43 C3 DA 16")
REPLY_9010 = h("68 54 07 13 00 80 13 68 81 06 43 C3 34 33 33 33 2B 16")


class TestPublishedFrames:
    def test_read_requests(self) -> None:
        assert v97.read_request("000000000003", 0xB611)[4:] == READ_B611
        assert v97.read_request("138000130754", 0x9010)[4:] == READ_9010

    def test_voltage_reply(self) -> None:
        frame = parse_frame(REPLY_B611)
        assert frame.control == 0x81 and frame.code == Code1997.READ
        assert di_from_bytes(frame.data, V97) == 0xB611
        assert decode_item(0xB611, frame.data[2:], V97) == {0xB611: 100.0}

    def test_energy_reply(self) -> None:
        frame = parse_frame(REPLY_9010)
        assert frame.address == "138000130754"
        assert decode_item(0x9010, frame.data[2:], V97) == {0x9010: 0.01}


class TestBuilders:
    def test_follow_up_has_only_the_di(self) -> None:
        frame = parse_frame(v97.read_follow_up_request("000000000001", 0x901F))
        assert frame.code == Code1997.READ_FOLLOW_UP
        assert frame.data == h("1F 90")

    def test_write_carries_password_without_operator(self) -> None:
        frame = parse_frame(
            v97.write_request("000000000001", 0xC011, h("00 30 12"), password=h("00 11 22 33"))
        )
        assert frame.code == Code1997.WRITE
        assert frame.data == h("11 C0 00 11 22 33 00 30 12")

    def test_broadcast_time(self) -> None:
        frame = parse_frame(v97.broadcast_time_request(datetime(1999, 12, 31, 23, 59, 58)))
        assert frame.address == "999999999999" and frame.code == Code1997.BROADCAST_TIME
        assert frame.data == h("58 59 23 31 12 99")

    def test_write_address(self) -> None:
        frame = parse_frame(v97.write_address_request("123456789012"))
        assert frame.address == "999999999999" and frame.code == Code1997.WRITE_ADDRESS
        assert frame.data == h("12 90 78 56 34 12")

    def test_change_baud(self) -> None:
        frame = parse_frame(v97.change_baud_request("000000000001", 9600))
        assert frame.code == Code1997.CHANGE_BAUD and frame.data == b"\x20"
        with pytest.raises(ConfigError):
            v97.change_baud_request("000000000001", 115200)

    def test_change_password(self) -> None:
        frame = parse_frame(
            v97.change_password_request("000000000001", h("00 00 00 00"), h("00 12 34 56"))
        )
        assert frame.code == Code1997.CHANGE_PASSWORD
        assert frame.data == h("00 00 00 00 00 12 34 56")
        with pytest.raises(ConfigError):
            v97.change_password_request("000000000001", b"", bytes(4))

    def test_di_range(self) -> None:
        with pytest.raises(ConfigError):
            v97.read_request("000000000001", 0x10000)

    def test_reply_control_bytes(self) -> None:
        request = parse_frame(READ_B611)
        assert parse_frame(reply_frame(request, b"")).control == 0x81
        assert parse_frame(reply_frame(request, b"\x01", abnormal=True)).control == 0xC1
        assert parse_frame(reply_frame(request, b"", follow_up=True)).control == 0xA1


def test_abnormal_error_bits() -> None:
    error = v97.abnormal_error_1997(0x05)
    assert isinstance(error, AbnormalReplyError) and error.flags == 0x05
    assert "illegal data" in str(error) and "wrong password" in str(error)
    assert "reserved" in str(v97.abnormal_error_1997(0x08))


class TestCatalogue:
    @pytest.mark.parametrize(
        ("di", "length", "decimals", "unit"),
        [
            (0x9010, 4, 2, "kWh"),
            (0xB611, 2, 0, "V"),
            (0xB623, 2, 2, "A"),
            (0xB630, 3, 4, "kW"),
            (0xB643, 2, 2, "kvar"),
            (0xB650, 2, 3, None),
        ],
    )
    def test_formats(self, di: int, length: int, decimals: int, unit: str | None) -> None:
        item = lookup(di, V97)
        assert (item.length, item.decimals, item.unit, item.signed) == (
            length,
            decimals,
            unit,
            False,
        )

    def test_blocks(self) -> None:
        assert lookup(0x901F, V97).members == (0x9010, 0x9011, 0x9012, 0x9013, 0x9014)
        values = decode_item(0xB63F, h("00 50 01 00 50 00 00 00 00 00 00 10"), V97)
        assert values == {0xB630: 1.5, 0xB631: 0.5, 0xB632: 0.0, 0xB633: 10.0}
        assert decode_item(0xB61F, h("20 02 21 02 19 02"), V97)[0xB613] == 219.0

    def test_date_time_number(self) -> None:
        assert decode_item(0xC010, h("01 17 05 24"), V97) == {0xC010: "2024-05-17"}
        assert decode_item(0xC011, h("58 59 23"), V97) == {0xC011: "23:59:58"}
        assert decode_item(0xC032, h("54 07 13 00 80 13"), V97) == {0xC032: "138000130754"}

    def test_2007_ids_are_not_1997_ids(self) -> None:
        assert lookup(0xB611, V97).name == "voltage A"
        with pytest.raises(UnknownDataIdError, match="not in the DL/T 645-1997"):
            lookup(0x02010100, V97)
