"""DL/T 645 data-identifier catalogue: formats, signs, blocks, load-profile records."""

from __future__ import annotations

from datetime import datetime

import pytest

from edge_agent.errors import UnknownDataIdError
from edge_agent.model import Value
from edge_agent.protocols.dlt645_catalogue import (
    CATALOGUE,
    LOAD_PROFILE_BLOCKS,
    BadDataError,
    DataItem,
    ItemKind,
    ValueRangeError,
    Version,
    decode_item,
    decode_load_profile,
    decode_value,
    di_bytes,
    di_from_bytes,
    encode_item,
    encode_load_record,
    encode_value,
    lookup,
)

CANONICAL_UNITS = {"V", "A", "kW", "kvar", "kVA", "kWh", "kvarh", "Hz", "°C", None}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def sample(item: DataItem, seed: int) -> Value:
    """Return a value that uses every digit of ``item`` (negative when signed)."""
    match item.kind:
        case ItemKind.NUMBER:
            top = 7 if item.signed else 9  # bit 7 of the top byte is the sign
            rest = "".join(str((seed + i) % 10) for i in range(item.length * 2 - 1))
            number = int(f"{top}{rest}")
            value: float = number / 10**item.decimals
            return -value if item.signed and seed % 2 else value
        case ItemKind.STATUS:
            status: int = (seed * 7919) % 256**item.length
            return status
        case ItemKind.ADDRESS:
            return f"{seed:012d}"
        case ItemKind.DATE:
            return f"20{seed % 100:02d}-{seed % 12 + 1:02d}-{seed % 28 + 1:02d}"
        case ItemKind.TIME:
            return f"{seed % 24:02d}:{seed % 60:02d}:{(seed * 7) % 60:02d}"
        case _:
            return f"20{seed % 100:02d}-{seed % 12 + 1:02d}-{seed % 28 + 1:02d}T{seed % 24:02d}:30"


def leaf_items() -> list[tuple[Version, DataItem]]:
    return [
        (version, item)
        for version, table in CATALOGUE.items()
        for item in table.values()
        if not item.is_block and item.kind != ItemKind.RECORD
    ]


def test_every_item_is_well_formed() -> None:
    for version, table in CATALOGUE.items():
        for di, item in table.items():
            assert item.di == di and item.name
            assert item.unit in CANONICAL_UNITS
            if item.is_block:
                members = [lookup(m, version) for m in item.members]
                assert item.length == sum(m.length for m in members)
            elif item.kind != ItemKind.RECORD:
                assert item.length > 0


def test_every_single_item_round_trips() -> None:
    for seed, (version, item) in enumerate(leaf_items()):
        value = sample(item, seed)
        raw = encode_item(item.di, {item.di: value}, version)
        assert len(raw) == item.length
        decoded = decode_item(item.di, raw, version)
        assert decoded == {item.di: pytest.approx(value) if isinstance(value, float) else value}


def test_every_block_round_trips() -> None:
    for version, table in CATALOGUE.items():
        for seed, item in enumerate(i for i in table.values() if i.is_block):
            values = {m: sample(lookup(m, version), seed + n) for n, m in enumerate(item.members)}
            raw = encode_item(item.di, values, version)
            assert len(raw) == item.length
            assert decode_item(item.di, raw, version) == pytest.approx(values)


class TestFormats2007:
    def test_energy_ids(self) -> None:
        item = lookup(0x00010000)
        assert (item.length, item.decimals, item.signed, item.unit) == (4, 2, False, "kWh")
        assert lookup(0x00000000).signed  # combined active energy carries a sign
        assert "T3" in lookup(0x00020300).name
        assert "settlement -12" in lookup(0x0001000C).name
        assert lookup(0x0001FF00).members == (
            0x00010000,
            0x00010100,
            0x00010200,
            0x00010300,
            0x00010400,
        )

    def test_published_energy_value(self) -> None:
        # 75 39 45 33 - 33 = 42 06 12 00 -> 001206.42 kWh
        assert decode_item(0x00010000, h("42 06 12 00")) == {0x00010000: 1206.42}

    def test_voltage_block(self) -> None:
        values = decode_item(0x0201FF00, h("01 22 02 22 03 22"))
        assert values == {0x02010100: 220.1, 0x02010200: 220.2, 0x02010300: 220.3}

    def test_signed_current_and_power(self) -> None:
        # current XXX.XXX: 80 05 00 -> -0.5 A ; power XX.XXXX: 00 50 81 -> -1.5 kW
        assert decode_item(0x02020100, h("00 05 80")) == {0x02020100: -0.5}
        assert decode_item(0x02030000, h("00 50 81")) == {0x02030000: -1.5}
        assert encode_item(0x02030000, {0x02030000: -1.5}) == h("00 50 81")

    def test_power_factor_block(self) -> None:
        values = decode_item(0x0206FF00, h("99 09 00 10 50 89 00 00"))
        assert values == {0x02060000: 0.999, 0x02060100: 1.0, 0x02060200: -0.95, 0x02060300: 0.0}

    def test_short_block_answer_keeps_leading_members(self) -> None:
        assert decode_item(0x0201FF00, h("01 22")) == {0x02010100: 220.1}
        with pytest.raises(BadDataError):
            decode_item(0x0201FF00, h("01 22 02"))

    def test_frequency_date_time_address_status(self) -> None:
        assert decode_item(0x02800002, h("98 49")) == {0x02800002: 49.98}
        assert decode_item(0x04000101, h("05 17 05 24")) == {0x04000101: "2024-05-17"}
        assert encode_item(0x04000101, {0x04000101: "2024-05-17"}) == h("05 17 05 24")  # Friday
        assert encode_item(0x04000101, {0x04000101: "2024-05-19"})[0] == 0  # Sunday
        assert decode_item(0x04000102, h("45 30 12")) == {0x04000102: "12:30:45"}
        assert decode_item(0x04000401, h("61 01 00 00 00 00")) == {0x04000401: "000000000161"}
        assert decode_item(0x04000503, h("10 00")) == {0x04000503: 0x10}

    def test_freeze_items(self) -> None:
        stamp = decode_item(0x05060001, h("00 00 17 05 24"))
        assert stamp == {0x05060001: "2024-05-17T00:00"}
        daily = lookup(0x05060101)
        assert daily.members[0] == 0x00010000 and daily.length == 20
        assert lookup(0x0506023E).members[0] == 0x00020000
        hourly = decode_item(0x050401FE, h("42 06 12 00"))
        assert hourly == {0x00010000: 1206.42}

    def test_load_profile_is_a_record(self) -> None:
        assert lookup(0x06000001).kind == ItemKind.RECORD
        with pytest.raises(BadDataError):
            decode_item(0x06000001, b"")


class TestErrors:
    def test_unknown_di(self) -> None:
        with pytest.raises(UnknownDataIdError, match="12345678"):
            lookup(0x12345678)
        with pytest.raises(UnknownDataIdError, match="B6FF"):
            lookup(0xB6FF, Version.V1997)

    def test_wrong_length_and_non_bcd(self) -> None:
        with pytest.raises(BadDataError):
            decode_item(0x02010100, h("01"))
        with pytest.raises(BadDataError, match="not BCD"):
            decode_item(0x02010100, h("FF FF"))

    def test_out_of_range_values(self) -> None:
        voltage = lookup(0x02010100)
        with pytest.raises(ValueRangeError):
            encode_value(voltage, 1000.0)
        with pytest.raises(ValueRangeError):
            encode_value(voltage, -1.0)
        with pytest.raises(ValueRangeError):
            encode_value(lookup(0x02030000), 80.0)  # sign bit leaves 79.9999
        with pytest.raises(ValueRangeError):
            encode_value(voltage, "220")
        with pytest.raises(ValueRangeError):
            encode_value(lookup(0x04000101), "17.05.2024")
        with pytest.raises(ValueRangeError):
            encode_item(0x0201FF00, {0x02010200: 220.0})

    def test_decode_value_checks_length(self) -> None:
        with pytest.raises(BadDataError):
            decode_value(lookup(0x04000102), h("00 00"))


def test_di_wire_order() -> None:
    assert di_bytes(0x02010100) == h("00 01 01 02")
    assert di_bytes(0xB611, Version.V1997) == h("11 B6")
    assert di_from_bytes(h("00 01 01 02 99")) == 0x02010100
    assert di_from_bytes(h("11 B6"), Version.V1997) == 0xB611
    with pytest.raises(BadDataError):
        di_from_bytes(h("00 01"))


# --- load profile records -----------------------------------------------------------------


def full_record_values(seed: int) -> dict[int, Value]:
    return {
        di: sample(lookup(di), seed + n)
        for n, di in enumerate(di for block in LOAD_PROFILE_BLOCKS for di in block)
    }


def test_full_record_layout() -> None:
    record = encode_load_record(datetime(2024, 5, 17, 12, 15), full_record_values(3))
    assert record[:2] == h("A0 A0")
    assert record[3:8] == h("15 12 17 05 24")
    assert len(record) == 2 + 1 + 5 + (17 + 24 + 8 + 16 + 16 + 6) + 6 + 2
    assert record[2] == len(record) - 5
    assert record[-1] == 0xE5
    assert record[-2] == sum(record[:-2]) & 0xFF


def test_records_round_trip_with_empty_blocks() -> None:
    only_voltage = {di: sample(lookup(di), 1) for di in LOAD_PROFILE_BLOCKS[0]}
    first = encode_load_record(datetime(2024, 5, 17, 12, 0), only_voltage)
    second = encode_load_record(datetime(2024, 5, 17, 12, 15), full_record_values(5))
    assert first.count(0xAA) >= 6 and len(first) == 3 + 5 + 17 + 6 + 2
    rows = decode_load_profile(first + second)
    assert [when for when, _ in rows] == [
        datetime(2024, 5, 17, 12, 0),
        datetime(2024, 5, 17, 12, 15),
    ]
    assert rows[0][1] == pytest.approx(only_voltage)
    assert rows[1][1] == pytest.approx(full_record_values(5))


def test_bad_records() -> None:
    good = encode_load_record(datetime(2024, 5, 17, 12, 0), full_record_values(2))
    marked_bad = h("E0 E0") + good[2:]
    assert decode_load_profile(marked_bad + good)[0][0] == datetime(2024, 5, 17, 12, 0)
    assert len(decode_load_profile(marked_bad)) == 0
    for broken in (good[:-1], good[:-1] + b"\x00", b"\x00" + good, good[:-2] + b"\x00\xe5"):
        with pytest.raises(BadDataError):
            decode_load_profile(broken)
    with pytest.raises(ValueRangeError):
        encode_load_record(datetime(2024, 5, 17), {0x02010100: 220.0})
