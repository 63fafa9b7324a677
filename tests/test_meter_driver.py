"""MeterDriver: profile + address -> exchanges; refusals remembered and planned around.

The meters here are small fakes built from the real codecs' server side (Modbus
``decode_request``/``encode_response``, DL/T 645 ``parse_frame``/``reply_frame``), and the
poll loop plays the bus's part the way ``edge_agent.bus`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from edge_agent.errors import ConfigError, MeterError, ModbusExceptionError
from edge_agent.meter import MeterDriver
from edge_agent.model import Exchange, Value
from edge_agent.profiles import load_profile
from edge_agent.profiles.model import ModbusOptions, Profile
from edge_agent.protocols.dlt645 import parse_frame, reply_frame
from edge_agent.protocols.dlt645_catalogue import (
    Version,
    di_bytes,
    di_from_bytes,
    encode_item,
    lookup,
)
from edge_agent.protocols.modbus import (
    Framing,
    ReadExchange,
    decode_request,
    encode_exception,
    encode_response,
    encode_value,
    register_span,
)

# --- fake meters ----------------------------------------------------------------------------


@dataclass
class ModbusMeter:
    """Serves a profile's registers; answers exception 2 for reads touching ``holes``."""

    profile: Profile
    values: Mapping[str, float]
    framing: Framing = Framing.RTU
    holes: set[int] = field(default_factory=set)
    busy: bool = False
    requests: list[tuple[int, int]] = field(default_factory=list)

    def image(self) -> dict[tuple[int, int], list[int]]:
        options = self.profile.modbus or ModbusOptions()
        words: dict[tuple[int, int], list[int]] = {}
        for spec in self.profile.registers:
            encoded = encode_value(self.values[spec.key], spec, options)
            per = len(encoded) // register_span(spec.type, options.register_bytes)
            for i in range(register_span(spec.type, options.register_bytes)):
                words[spec.function, spec.address + i] = encoded[i * per : (i + 1) * per]
        return words

    def answer(self, request: bytes) -> bytes:
        used, req = decode_request(request, self.framing)
        assert req is not None and used == len(request)
        self.requests.append((req.address, req.count))
        if self.busy:
            return encode_exception(req, 6, self.framing)
        addresses = range(req.address, req.address + req.count)
        if self.holes & set(addresses):
            return encode_exception(req, 2, self.framing)
        per = (self.profile.modbus or ModbusOptions()).register_bytes // 2
        image = self.image()
        words = [w for a in addresses for w in image.get((req.function, a), [0] * per)]
        return encode_response(req, words, self.framing)


@dataclass
class DltMeter:
    """Serves a DL/T 645 profile's items; refuses the DIs in ``refuses`` (abnormal reply)."""

    values: Mapping[int, Value]
    version: Version = Version.V2007
    refuses: set[int] = field(default_factory=set)
    requests: list[int] = field(default_factory=list)

    def answer(self, request: bytes) -> bytes:
        frame = parse_frame(request)
        di = di_from_bytes(frame.data, self.version)
        self.requests.append(di)
        if di in self.refuses:
            return reply_frame(frame, b"\x02", abnormal=True)
        item = lookup(di, self.version)
        members = item.members or (di,)
        values = {m: self.values[m] for m in members}
        data = di_bytes(di, self.version) + encode_item(di, values, self.version)
        return reply_frame(frame, data, preamble=4)


def keys_of(exchange: Exchange) -> set[str]:
    keys: dict[int, str] = getattr(exchange, "keys", {})
    return set(keys.values())


def poll(driver: MeterDriver, meter: ModbusMeter | DltMeter) -> tuple[dict[str, Value], int]:
    """One full poll as the bus runs it; returns the values and the transaction count."""
    values: dict[str, Value] = {}
    pending: list[Exchange] = driver.exchanges()
    transactions = 0
    while pending:
        exchange = pending.pop(0)
        transactions += 1
        reply = meter.answer(exchange.request())
        try:
            assert exchange.receive(reply) == len(reply)
        except MeterError as err:
            if driver.refused(exchange, err):
                pending = [e for e in driver.exchanges() if keys_of(e) - values.keys()]
            continue
        assert exchange.done
        values.update(exchange.values())
    return values, transactions


def sample_values(profile: Profile) -> dict[str, float]:
    """Return a distinct float32-exact value per key (n + 0.5)."""
    return {key: 100.5 + n for n, key in enumerate(profile.keys)}


# --- Modbus ---------------------------------------------------------------------------------


class TestModbusDriver:
    def test_sdm630_full_poll_in_four_transactions(self) -> None:
        profile = load_profile("eastron-sdm630")
        served = sample_values(profile)
        meter = ModbusMeter(profile, served)
        driver = MeterDriver(profile, "1")
        values, transactions = poll(driver, meter)
        assert transactions == 4
        assert values == pytest.approx(served)
        assert driver.unread_keys() == frozenset()

    def test_refused_gap_is_read_around_and_remembered(self) -> None:
        profile = load_profile("eastron-sdm630")
        served = sample_values(profile)
        # This meter refuses any read touching the undocumented 0xD0..0xDF.
        meter = ModbusMeter(profile, served, holes=set(range(0xD0, 0xE0)))
        driver = MeterDriver(profile, "1")
        values, transactions = poll(driver, meter)
        assert values == pytest.approx(served)
        assert transactions == 4 + 4  # the refused block, then its 4 gap-free runs
        values, transactions = poll(driver, meter)
        assert transactions == 3 + 4  # learnt: no more refusals
        assert values == pytest.approx(served)

    def test_missing_registers_become_unread_keys(self) -> None:
        profile = load_profile("eastron-sdm630")
        served = sample_values(profile)
        meter = ModbusMeter(profile, served, holes=set(range(0xF0, 0xF6)))  # no current THD
        driver = MeterDriver(profile, "1")
        values, _ = poll(driver, meter)
        missing = {"thd_current_a", "thd_current_b", "thd_current_c"}
        assert driver.unread_keys() == missing
        assert set(values) == set(profile.keys) - missing
        meter.requests.clear()
        poll(driver, meter)
        assert not any(0xF0 <= a < 0xF6 for a, _count in meter.requests)

    def test_busy_meter_is_not_a_refusal(self) -> None:
        profile = load_profile("chint-ddsu666")
        driver = MeterDriver(profile, "7")
        plan = driver.plan
        exchange = driver.exchanges()[0]
        busy = ModbusExceptionError("busy", 6)
        assert driver.refused(exchange, busy) is False
        assert driver.plan == plan

    def test_refusal_of_a_foreign_exchange_is_ignored(self) -> None:
        profile = load_profile("chint-ddsu666")
        other = MeterDriver(load_profile("eastron-sdm120"), "7").exchanges()[0]
        driver = MeterDriver(profile, "7")
        assert driver.refused(other, ModbusExceptionError("no", 2)) is False

    def test_reset_forgets_refusals(self) -> None:
        profile = load_profile("chint-ddsu666")
        driver = MeterDriver(profile, "7")
        first = driver.exchanges()[0]
        assert driver.refused(first, ModbusExceptionError("no", 2)) is True
        assert len(driver.plan) > 2
        driver.reset()
        assert len(driver.plan) == 2

    def test_four_byte_registers(self) -> None:
        profile = load_profile("im1253b")
        served = {
            "voltage_a": 229.8765,
            "current_a": 1.2345,
            "power_active_total": 0.2837654,
            "energy_import_total": 1234.5678,
            "power_factor_total": 0.998,
            "temperature": 31.25,
            "frequency": 50.01,
        }
        values, transactions = poll(MeterDriver(profile, "1"), ModbusMeter(profile, served))
        assert transactions == 1
        assert values == served

    def test_tcp_exchanges_carry_fresh_transaction_ids(self) -> None:
        profile = load_profile("eastron-sdm630")
        driver = MeterDriver(profile, "3", Framing.TCP)
        exchanges = driver.exchanges() + driver.exchanges()
        tids = [e.tid for e in exchanges if isinstance(e, ReadExchange)]
        assert tids == list(range(1, 9))
        served = sample_values(profile)
        values, transactions = poll(driver, ModbusMeter(profile, served, Framing.TCP))
        assert transactions == 4 and values == pytest.approx(served)

    @pytest.mark.parametrize(
        ("address", "framing"),
        [("0", Framing.RTU), ("248", Framing.RTU), ("x1", None), ("256", Framing.TCP)],
    )
    def test_bad_unit_id(self, address: str, framing: Framing | None) -> None:
        with pytest.raises(ConfigError, match="invalid Modbus unit id"):
            MeterDriver(load_profile("eastron-sdm120"), address, framing)

    def test_unit_zero_allowed_on_tcp(self) -> None:
        assert MeterDriver(load_profile("eastron-sdm120"), "0", Framing.TCP).unit == 0


# --- DL/T 645 --------------------------------------------------------------------------------


def dlt_values(profile: Profile, version: Version = Version.V2007) -> dict[int, Value]:
    """Return a distinct value per item, in the item's range and resolution."""
    values: dict[int, Value] = {}
    for n, item in enumerate(profile.items):
        entry = lookup(item.di, version)
        base = 0.9 + n / 1000 if entry.unit is None else 1.25 + n
        values[item.di] = round(base, entry.decimals)
    return values


class TestDlt645Driver:
    def test_three_phase_poll_with_blocks(self) -> None:
        profile = load_profile("dlt645-2007-3phase")
        served = dlt_values(profile)
        meter = DltMeter(served)
        driver = MeterDriver(profile, "161")
        assert driver.address == "000000000161"
        values, transactions = poll(driver, meter)
        assert transactions == 13
        assert values == {item.key: served[item.di] for item in profile.items}

    def test_refused_block_falls_back_and_is_remembered(self) -> None:
        profile = load_profile("dlt645-2007-3phase")
        served = dlt_values(profile)
        meter = DltMeter(served, refuses={0x0201FF00, 0x02800007})
        driver = MeterDriver(profile, "000000000161")
        values, transactions = poll(driver, meter)
        assert transactions == 13 + 3  # the three voltages one by one
        assert driver.unread_keys() == {"temperature"}
        assert set(values) == set(profile.keys) - {"temperature"}
        meter.requests.clear()
        _values, transactions = poll(driver, meter)
        assert transactions == 14
        assert 0x0201FF00 not in meter.requests and 0x02800007 not in meter.requests

    def test_1997_single_phase(self) -> None:
        profile = load_profile("dlt645-1997-1phase")
        served = dlt_values(profile, Version.V1997)
        meter = DltMeter(served, Version.V1997, refuses={0x901F})
        driver = MeterDriver(profile, "123456789012")
        values, transactions = poll(driver, meter)
        assert transactions == 6 + 5
        assert values == {item.key: served[item.di] for item in profile.items}

    def test_framing_does_not_apply(self) -> None:
        with pytest.raises(ConfigError, match="DL/T 645"):
            MeterDriver(load_profile("dlt645-2007-1phase"), "1", Framing.RTU)

    def test_bad_address(self) -> None:
        with pytest.raises(ConfigError, match="12 digits"):
            MeterDriver(load_profile("dlt645-2007-1phase"), "12-34")
