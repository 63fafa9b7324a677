"""Simulated DL/T 645 meters over a real pty: reads, blocks, history, follow-ups, commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.profiles import all_profiles
from edge_agent.profiles.model import ProfileProtocol
from edge_agent.protocols import dlt645, dlt645_1997
from edge_agent.protocols.dlt645 import Frame, RelayAction
from edge_agent.protocols.dlt645_catalogue import (
    DI_DATE,
    DI_LOAD_PROFILE,
    DI_TIME,
    Version,
    daily_freeze_di,
    decode_item,
    decode_load_profile,
    di_size,
    encode_value,
    energy_di,
    hourly_freeze_di,
    lookup,
)
from edge_agent.simulator import BusSimulator, SimMeter, SimMeterState, start_pty
from edge_agent.simulator.dimap import di_keys
from edge_agent.simulator.probe import Probe

#: 2023-11-14 12:34:56 UTC; meters run on UTC (utc_offset=0) with their clock frozen here.
NOW = datetime(2023, 11, 14, 12, 34, 56)
START = NOW.replace(tzinfo=UTC).timestamp()
THREE, SINGLE, OLD, SMALL = "000000000003", "000000000004", "000000000005", "000000000006"
PASSWORD = bytes([0x02, 0, 0, 0])
OPERATOR = bytes(4)
DLT_PROFILES = sorted(
    (p.id, p.protocol) for p in all_profiles().values() if p.protocol != ProfileProtocol.MODBUS
)


def frame_size(buffer: bytes) -> int:
    return dlt645.decode_frame(buffer)[1]


@dataclass
class Bench:
    sim: BusSimulator
    probe: Probe

    async def ask(self, request: bytes) -> Frame:
        frame, _ = dlt645.decode_frame(await self.probe.exchange(request, frame_size))
        assert frame is not None and frame.is_reply
        return frame

    async def read(self, address: str, di: int, version: Version = Version.V2007) -> bytes:
        """Read a DI, following up until the meter is done; the DATA after the DI."""
        size = di_size(version)
        if version == Version.V2007:
            frame = await self.ask(dlt645.read_request(address, di))
        else:
            frame = await self.ask(dlt645_1997.read_request(address, di))
        assert not frame.is_abnormal, f"{di:X} refused: {frame.data.hex()}"
        payload, seq = frame.data[size:], 0
        while frame.has_follow_up:
            seq += 1
            if version == Version.V2007:
                frame = await self.ask(dlt645.read_follow_up_request(address, di, seq))
                assert frame.data[-1] == seq
                payload += frame.data[size:-1]
            else:
                frame = await self.ask(dlt645_1997.read_follow_up_request(address, di))
                payload += frame.data[size:]
        return payload


def _meter(profile: str, address: str, **options: object) -> SimMeter:
    return SimMeter(profile, address, utc_offset=0.0, **options)  # type: ignore[arg-type]


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    meters = [
        _meter("dlt645-2007-3phase", THREE),
        _meter("dlt645-2007-1phase", SINGLE),
        _meter("dlt645-1997-1phase", OLD),
        _meter("dlt645-2007-3phase", SMALL, max_frame_data=12, reject_block_dis=False),
    ]
    sim = BusSimulator(meters, time_scale=0.0, start=START)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        yield Bench(sim, probe)
        await probe.close()


def _check(state: SimMeterState, di: int, got: object, at: float | None = None) -> None:
    """``got`` (decoded value of member ``di``) matches the model value of its key."""
    version = Version.V1997 if state.profile.protocol is ProfileProtocol.DLT645_1997 else 2007
    item = lookup(di, Version(version))
    key = di_keys(state.profile)[di]
    expected = state.values_at(at)[key]
    assert isinstance(got, int | float) and isinstance(expected, int | float)
    assert got == pytest.approx(expected, abs=0.51 * 10**-item.decimals), f"{di:08X} {key}"


def test_every_dlt645_profile_is_simulated() -> None:
    ids = {pid for pid, _ in DLT_PROFILES}
    assert {"dlt645-2007-3phase", "dlt645-2007-1phase", "dlt645-1997-1phase"} <= ids


async def test_every_item_and_block_of_every_profile_reads_the_model(bench: Bench) -> None:
    for address in (THREE, SINGLE, OLD):
        state = bench.sim.meter(address)
        version = Version.V1997 if state.profile.protocol is ProfileProtocol.DLT645_1997 else 2007
        version = Version(version)
        for item in state.profile.items:
            values = decode_item(item.di, await bench.read(address, item.di, version), version)
            _check(state, item.di, values[item.di])
        for block in state.profile.blocks:
            values = decode_item(block, await bench.read(address, block, version), version)
            assert values, f"{block:X} answered nothing"
            for di, value in values.items():
                _check(state, di, value)
    # The single-phase meter answers a voltage block with phase A only.
    single = decode_item(0x0201FF00, await bench.read(SINGLE, 0x0201FF00))
    assert list(single) == [0x02010100]


async def test_long_answers_come_in_follow_up_frames(bench: Bench) -> None:
    state = bench.sim.meter(SMALL)
    frame = await bench.ask(dlt645.read_request(SMALL, 0x0001FF00))
    assert frame.has_follow_up and len(frame.data) <= 12
    values = decode_item(0x0001FF00, await bench.read(SMALL, 0x0001FF00))
    assert len(values) == 5
    for di, value in values.items():
        _check(state, di, value)
    tariffs = sum(float(values[energy_di(1, t)]) for t in range(1, 5))
    assert tariffs == pytest.approx(float(values[energy_di(1)]), abs=0.03)


async def test_load_profile_records_follow_the_model_history(bench: Bench) -> None:
    state = bench.sim.meter(THREE)
    start = NOW - timedelta(hours=2)
    request = dlt645.read_request(THREE, DI_LOAD_PROFILE, count=6, start=start)
    first = await bench.ask(request)
    assert first.has_follow_up  # six records of ~100 bytes do not fit one frame
    payload, seq, frame = first.data[4:], 0, first
    while frame.has_follow_up:
        seq += 1
        frame = await bench.ask(dlt645.read_follow_up_request(THREE, DI_LOAD_PROFILE, seq))
        payload += frame.data[4:-1]
    rows = decode_load_profile(payload)
    assert [when for when, _ in rows] == [
        datetime(2023, 11, 14, 10, 45) + timedelta(minutes=15 * k) for k in range(6)
    ]
    for when, values in rows:
        at = when.replace(tzinfo=UTC).timestamp()
        for di in (0x02010100, 0x02030000, energy_di(1), 0x02800002):
            _check(state, di, values[di], at)
    # Nothing recorded after now: "no requested data".
    late = await bench.ask(
        dlt645.read_request(THREE, DI_LOAD_PROFILE, count=1, start=NOW + timedelta(hours=1))
    )
    assert late.is_abnormal and late.data[0] == 0x02


async def test_daily_hourly_and_settlement_history(bench: Bench) -> None:
    state = bench.sim.meter(THREE)
    stamp = decode_item(daily_freeze_di(0, 1), await bench.read(THREE, daily_freeze_di(0, 1)))
    assert stamp == {daily_freeze_di(0, 1): "2023-11-14T00:00"}
    midnight = datetime(2023, 11, 13, 0, 0).replace(tzinfo=UTC).timestamp()
    frozen = decode_item(daily_freeze_di(1, 2), await bench.read(THREE, daily_freeze_di(1, 2)))
    assert set(frozen) == {energy_di(1, t) for t in range(5)}
    for di, value in frozen.items():
        _check(state, di, value, midnight)
    hour = await bench.read(THREE, hourly_freeze_di(0, 3))
    assert decode_item(hourly_freeze_di(0, 3), hour) == {hourly_freeze_di(0, 3): "2023-11-14T10:00"}
    settled = decode_item(energy_di(1, 0, 1), await bench.read(THREE, energy_di(1, 0, 1)))
    first_of_month = datetime(2023, 11, 1).replace(tzinfo=UTC).timestamp()
    _check(state, energy_di(1), settled[energy_di(1, 0, 1)], first_of_month)
    now = state.values_at()["energy_import_total"]
    assert isinstance(now, float)
    assert float(settled[energy_di(1, 0, 1)]) < now


async def test_refusals_for_unknown_and_refused_block_dis() -> None:
    sim = BusSimulator([_meter("dlt645-2007-3phase", THREE, reject_block_dis=True)], time_scale=0)
    async with await start_pty(sim) as server:
        bench = Bench(sim, await Probe.open_pty(server.path))
        for di in (0x0201FF00, 0x12345678):
            refused = await bench.ask(dlt645.read_request(THREE, di))
            assert refused.is_abnormal and refused.data == b"\x02"
        assert decode_item(0x02010100, await bench.read(THREE, 0x02010100))
        await bench.probe.close()


async def test_relay_trip_and_close(bench: Bench) -> None:
    state = bench.sim.meter(THREE)
    until = NOW + timedelta(minutes=10)

    async def relay(action: RelayAction, password: bytes = PASSWORD) -> Frame:
        return await bench.ask(
            dlt645.relay_request(
                THREE, action, password=password, operator=OPERATOR, valid_until=until
            )
        )

    wrong = await relay(RelayAction.TRIP, bytes([0x02, 1, 2, 3]))
    assert wrong.is_abnormal and wrong.data[0] & 0x04
    assert state.relay
    ack = await relay(RelayAction.TRIP)
    assert not ack.is_abnormal and ack.code == dlt645.Code.RELAY and ack.data == b""
    assert not state.relay and state.values_at()["relay_state"] == 0
    power = decode_item(0x02030000, await bench.read(THREE, 0x02030000))
    assert power[0x02030000] == 0
    status = decode_item(0x04000503, await bench.read(THREE, 0x04000503))
    assert int(status[0x04000503]) & 0x10
    await relay(RelayAction.CLOSE_ALLOWED)
    assert state.relay
    power = decode_item(0x02030000, await bench.read(THREE, 0x02030000))
    assert float(power[0x02030000]) > 0


async def test_wildcard_address_on_a_lone_meter_and_a_shared_bus() -> None:
    request = dlt645.read_address_request()
    lone = BusSimulator([_meter("dlt645-2007-3phase", THREE)])
    async with await start_pty(lone) as server:
        bench = Bench(lone, await Probe.open_pty(server.path))
        reply = await bench.ask(request)
        assert reply.address == THREE and dlt645.address_from_bytes(reply.data) == THREE
        await bench.probe.close()
    shared = BusSimulator(
        [
            _meter("dlt645-2007-3phase", THREE),
            _meter("dlt645-2007-1phase", SINGLE, responds_to_wildcard=True),
            _meter("dlt645-2007-1phase", SMALL),
        ]
    )
    async with await start_pty(shared) as server:
        bench = Bench(shared, await Probe.open_pty(server.path))
        reply = await bench.ask(request)
        assert reply.address == SINGLE
        assert await bench.probe.quiet(0.05) == b""  # exactly one answer
        await bench.probe.close()
    assert shared.meter(THREE).stats.transactions == 0
    assert shared.meter(SINGLE).stats.transactions == 1


async def test_broadcast_time_sets_the_clock_without_reply(bench: Bench) -> None:
    when = datetime(2024, 2, 29, 23, 59, 30)
    bench.probe.clear()
    bench.probe.send(dlt645.broadcast_time_request(when))
    assert await bench.probe.quiet(0.05) == b""
    date = decode_item(DI_DATE, await bench.read(THREE, DI_DATE))
    clock = decode_item(DI_TIME, await bench.read(THREE, DI_TIME))
    assert (date[DI_DATE], clock[DI_TIME]) == ("2024-02-29", "23:59:30")
    old = decode_item(0xC011, await bench.read(OLD, 0xC011, Version.V1997), Version.V1997)
    assert old[0xC011] == "23:59:30"


async def test_write_and_freeze_are_acknowledged(bench: Bench) -> None:
    state = bench.sim.meter(THREE)
    value = encode_value(lookup(DI_DATE), "2025-01-02")
    ack = await bench.ask(
        dlt645.write_request(THREE, DI_DATE, value, password=PASSWORD, operator=OPERATOR)
    )
    assert not ack.is_abnormal and ack.code == dlt645.Code.WRITE
    assert decode_item(DI_DATE, await bench.read(THREE, DI_DATE))[DI_DATE] == "2025-01-02"
    refused = await bench.ask(
        dlt645.write_request(THREE, DI_DATE, value, password=bytes([2, 9, 9, 9]), operator=OPERATOR)
    )
    assert refused.is_abnormal and refused.data[0] & 0x04
    ack = await bench.ask(dlt645.freeze_request(THREE))
    assert not ack.is_abnormal and ack.code == dlt645.Code.FREEZE
    assert len(state.freezes) == 1
    assert (
        state.freezes[0].values["energy_import_total"] == state.values_at()["energy_import_total"]
    )


async def test_broadcast_and_foreign_addresses_get_no_reply(bench: Bench) -> None:
    before = bench.sim.stats.transactions
    bench.probe.clear()
    bench.probe.send(dlt645.read_request("999999999999", 0x02010100))
    bench.probe.send(dlt645.read_request("000000000099", 0x02010100))
    assert await bench.probe.quiet(0.05) == b""
    assert bench.sim.stats.transactions == before
    assert bench.sim.stats.requests >= 2
