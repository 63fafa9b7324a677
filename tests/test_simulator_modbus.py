"""Simulated Modbus meters over a real pty and Modbus TCP: every profile's registers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from edge_agent.errors import ModbusExceptionError
from edge_agent.profiles import Profile, all_profiles
from edge_agent.profiles.model import ModbusOptions, ProfileProtocol, RegisterSpec
from edge_agent.protocols.modbus import (
    Framing,
    decode_reply,
    decode_value,
    encode_read,
    register_span,
    value_words,
)
from edge_agent.simulator import BusSimulator, SimMeter, start_pty, start_tcp
from edge_agent.simulator.probe import Probe

START = 1_700_000_000.0
MODBUS_PROFILES = sorted(
    p.id for p in all_profiles().values() if p.protocol is ProfileProtocol.MODBUS
)


def rtu_size(buffer: bytes) -> int:
    """Bytes of the RTU reply at the start of ``buffer`` (0 while incomplete)."""
    if len(buffer) < 3:
        return 0
    size = 5 if buffer[1] & 0x80 else 5 + buffer[2]
    return size if len(buffer) >= size else 0


def mbap_size(buffer: bytes) -> int:
    """Bytes of the MBAP frame at the start of ``buffer`` (0 while incomplete)."""
    if len(buffer) < 6:
        return 0
    size = 6 + int.from_bytes(buffer[4:6], "big")
    return size if len(buffer) >= size else 0


@dataclass
class Bench:
    sim: BusSimulator
    probe: Probe

    async def read(
        self, unit: int, function: int, address: int, count: int, framing: Framing = Framing.RTU
    ) -> list[int]:
        tid = 0x1234 if framing is Framing.TCP else 0
        request = encode_read(unit, function, address, count, framing, tid)
        size = mbap_size if framing is Framing.TCP else rtu_size
        reply = await self.probe.exchange(request, size)
        used, words = decode_reply(reply, framing, unit=unit, function=function, tid=tid)
        assert used == len(reply) and words is not None
        return words


def _meters() -> list[SimMeter]:
    return [SimMeter(profile, str(unit)) for unit, profile in enumerate(MODBUS_PROFILES, start=1)]


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    sim = BusSimulator(_meters(), None, time_scale=0.0, start=START)
    server = await start_pty(sim)
    probe = await Probe.open_pty(server.path)
    try:
        yield Bench(sim, probe)
    finally:
        await probe.close()
        await server.close()


def _options(profile: Profile) -> ModbusOptions:
    return profile.modbus or ModbusOptions()


def _expected(spec: RegisterSpec, value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def _close(got: float | int, spec: RegisterSpec, expected: float) -> None:
    tolerance = abs(spec.scale) * 0.51 + abs(expected) * 1e-6
    assert got == pytest.approx(expected, abs=tolerance), spec.key


def _blocks(profile: Profile, function: int) -> Iterator[tuple[int, int, list[RegisterSpec]]]:
    """Consecutive reads of at most max_registers that never cut a value."""
    options = _options(profile)
    specs = sorted(
        (s for s in profile.registers if s.function == function), key=lambda s: s.address
    )
    block: list[RegisterSpec] = []
    for spec in specs:
        span = register_span(spec.type, options.register_bytes)
        if block and spec.address + span - block[0].address > options.max_registers:
            last = block[-1]
            end = last.address + register_span(last.type, options.register_bytes)
            yield block[0].address, end - block[0].address, block
            block = []
        block.append(spec)
    if block:
        last = block[-1]
        end = last.address + register_span(last.type, options.register_bytes)
        yield block[0].address, end - block[0].address, block


def test_every_modbus_profile_is_simulated() -> None:
    assert {"eastron-sdm630", "chint-dtsu666", "im1253b"} <= set(MODBUS_PROFILES)


async def test_every_register_of_every_profile_reads_the_model(bench: Bench) -> None:
    for state in bench.sim.meters:
        profile, unit = state.profile, state.unit
        assert unit is not None
        options = _options(profile)
        values = state.values_at()
        for spec in profile.registers:
            count = register_span(spec.type, options.register_bytes)
            words = await bench.read(unit, spec.function, spec.address, count)
            assert len(words) == value_words(spec.type)
            got = decode_value(words, spec, options)
            _close(got, spec, _expected(spec, values[spec.key]))


async def test_block_reads_carry_every_value_in_place(bench: Bench) -> None:
    for state in bench.sim.meters:
        profile, unit = state.profile, state.unit
        assert unit is not None
        options = _options(profile)
        per_address = options.register_bytes // 2
        values = state.values_at()
        for function in {s.function for s in profile.registers}:
            for start, count, specs in _blocks(profile, function):
                words = await bench.read(unit, function, start, count)
                assert len(words) == count * per_address
                for spec in specs:
                    offset = (spec.address - start) * per_address
                    own = words[offset : offset + value_words(spec.type)]
                    _close(
                        decode_value(own, spec, options), spec, _expected(spec, values[spec.key])
                    )


def _gap(profile: Profile) -> tuple[int, int, int] | None:
    """Find (function, start, count) of a read across unmapped registers between two values."""
    options = _options(profile)
    specs = sorted(profile.registers, key=lambda s: (s.function, s.address))
    for first, second in itertools.pairwise(specs):
        end = first.address + register_span(first.type, options.register_bytes)
        if first.function == second.function and second.address > end:
            count = second.address + register_span(second.type, options.register_bytes)
            count -= first.address
            if count <= options.max_registers:
                return first.function, first.address, count
    return None


async def test_unmapped_registers_read_zero_and_bad_ranges_are_refused(bench: Bench) -> None:
    state = bench.sim.meter("1")
    unit = state.unit
    assert unit is not None
    options = _options(state.profile)
    gap = _gap(state.profile)
    assert gap is not None, f"{state.profile.id} has no gap to test with"
    function, start, count = gap
    mapped = {
        spec.address + k
        for spec in state.profile.registers
        if spec.function == function
        for k in range(register_span(spec.type, options.register_bytes))
    }
    words = await bench.read(unit, function, start, count)
    per_address = options.register_bytes // 2
    for index, address in enumerate(range(start, start + count)):
        if address not in mapped:
            assert words[index * per_address : (index + 1) * per_address] == [0] * per_address
    first = min(s.address for s in state.profile.registers if s.function == function)
    for bad_start, bad_count in ((0xFF00, 2), (first, options.max_registers + 1)):
        with pytest.raises(ModbusExceptionError) as refused:
            await bench.read(unit, function, bad_start, min(bad_count, 125))
        assert refused.value.code == 2


async def test_reject_blocks_refuses_reads_across_gaps() -> None:
    profile = MODBUS_PROFILES[0]
    sim = BusSimulator([SimMeter(profile, "5", reject_blocks=True)], time_scale=0.0)
    gap = _gap(sim.meter("5").profile)
    assert gap is not None
    function, start, count = gap
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        bench = Bench(sim, probe)
        with pytest.raises(ModbusExceptionError) as refused:
            await bench.read(5, function, start, count)
        assert refused.value.code == 2
        spec = min(sim.meter("5").profile.registers, key=lambda s: s.address)
        await bench.read(5, spec.function, spec.address, 1)  # no gap: answered
        await probe.close()


@pytest.mark.usefixtures("socket_enabled")
async def test_modbus_tcp_echoes_transaction_id_and_serves_every_unit() -> None:
    sim = BusSimulator(_meters(), time_scale=0.0)
    async with await start_tcp(sim, mbap=True) as server:
        probe = await Probe.open_tcp("127.0.0.1", server.port)
        bench = Bench(sim, probe)
        for state in sim.meters:
            assert state.unit is not None
            spec = state.profile.registers[0]
            count = register_span(spec.type, _options(state.profile).register_bytes)
            words = await bench.read(state.unit, spec.function, spec.address, count, Framing.TCP)
            got = decode_value(words, spec, _options(state.profile))
            _close(got, spec, _expected(spec, state.values_at()[spec.key]))
        await probe.close()
    assert sim.stats.transactions == len(sim.meters)
