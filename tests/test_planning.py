"""Read planning: fewest transactions, limits respected, fallback after refusals."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.planning import (
    DltRead,
    ModbusBlock,
    merge_registers,
    plan_dlt645,
    plan_modbus,
)
from edge_agent.profiles import load_profile
from edge_agent.profiles.model import (
    ModbusOptions,
    Profile,
    ProfileProtocol,
    RegisterSpec,
    RegisterType,
)
from edge_agent.protocols.modbus import register_span

F32 = RegisterType.FLOAT32
U16 = RegisterType.U16
KEYS = ["voltage_a", "voltage_b", "voltage_c", "current_a", "current_b", "current_c", "frequency"]


def modbus_profile(specs: list[RegisterSpec], **options: int | str) -> Profile:
    return Profile(
        id="t",
        manufacturer="T",
        model="T",
        protocol=ProfileProtocol.MODBUS,
        source="test",
        phases=3,
        registers=tuple(specs),
        modbus=ModbusOptions(**options),  # type: ignore[arg-type]
    )


def fewest_reads(specs: list[RegisterSpec], max_registers: int, max_gap: int) -> int:
    """Brute force: the fewest contiguous groups that each fit one read."""

    def fits(group: list[RegisterSpec]) -> bool:
        ends = [s.address + register_span(s.type, 2) for s in group]
        gaps = [b.address - end for b, end in zip(group[1:], ends, strict=False)]
        return ends[-1] - group[0].address <= max_registers and all(g <= max_gap for g in gaps)

    best = [0] + [len(specs) + 1] * len(specs)
    for j in range(1, len(specs) + 1):
        best[j] = min(best[i] + 1 for i in range(j) if fits(specs[i:j]))
    return best[-1]


def layout(blocks: list[ModbusBlock]) -> list[tuple[int, int, int]]:
    return [(b.function, b.start, b.count) for b in blocks]


class TestModbusMerging:
    def test_sdm630_reads_51_values_in_4_transactions(self) -> None:
        profile = load_profile("eastron-sdm630")
        plan = plan_modbus(profile)
        assert len(profile.registers) == 51
        assert layout(plan) == [(4, 0x00, 80), (4, 0x54, 4), (4, 0xC8, 52), (4, 0x156, 22)]
        assert sorted(k for b in plan for k in b.keys) == sorted(profile.keys)

    def test_sdm630_basic_set_is_one_transaction(self) -> None:
        profile = load_profile("eastron-sdm630")
        basic = {"voltage_a", "voltage_b", "voltage_c", "current_a", "current_b", "current_c"}
        basic |= {"power_active_total", "frequency", "energy_import_total", "energy_export_total"}
        subset = replace(profile, registers=tuple(r for r in profile.registers if r.key in basic))
        assert layout(plan_modbus(subset)) == [(4, 0, 12), (4, 0x34, 24)]  # 10 values, 2 reads

    def test_other_shipped_profiles(self) -> None:
        assert layout(plan_modbus(load_profile("chint-dtsu666"))) == [
            (3, 0x101E, 12),
            (3, 0x2000, 50),
            (3, 0x2044, 2),
        ]
        assert layout(plan_modbus(load_profile("im1253b"))) == [(3, 0x48, 8)]
        assert len(plan_modbus(load_profile("eastron-sdm120"))) == 3
        assert len(plan_modbus(load_profile("chint-ddsu666"))) == 2
        assert len(plan_modbus(load_profile("acrel-adw300"))) == 2

    def test_max_registers_splits(self) -> None:
        specs = [RegisterSpec(k, 2 * i, F32) for i, k in enumerate(KEYS)]  # 0..13
        assert layout(plan_modbus(modbus_profile(specs, max_registers=6))) == [
            (4, 0, 6),
            (4, 6, 6),
            (4, 12, 2),
        ]

    def test_max_gap(self) -> None:
        specs = [RegisterSpec("voltage_a", 0, U16), RegisterSpec("voltage_b", 5, U16)]
        assert len(plan_modbus(modbus_profile(specs, max_gap=4))) == 1
        assert len(plan_modbus(modbus_profile(specs, max_gap=3))) == 2

    def test_functions_never_merge(self) -> None:
        specs = [RegisterSpec("voltage_a", 0, U16, function=3), RegisterSpec("voltage_b", 1, U16)]
        assert layout(plan_modbus(modbus_profile(specs))) == [(3, 0, 1), (4, 1, 1)]

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(st.tuples(st.integers(0, 3), st.sampled_from([U16, F32])), min_size=1, max_size=7),
        st.integers(2, 20),
        st.integers(0, 6),
        st.sampled_from([3, 4]),
    )
    def test_plan_invariants(
        self, gaps: list[tuple[int, RegisterType]], max_registers: int, max_gap: int, fn: int
    ) -> None:
        specs, address = [], 0
        for key, (gap, type_) in zip(KEYS, gaps, strict=False):
            address += gap
            specs.append(RegisterSpec(key, address, type_, function=fn))
            address += register_span(type_, 2)
        options = ModbusOptions(max_registers=max_registers, max_gap=max_gap)
        plan = merge_registers(specs, options, max_gap)
        assert [s for b in plan for s in b.specs] == specs  # each value exactly once, in order
        for block in plan:
            assert block.count <= max_registers
            assert block.start == block.specs[0].address
            last = block.specs[-1]
            assert block.end == last.address + register_span(last.type, 2)
        assert len(plan) == fewest_reads(specs, max_registers, max_gap)


class TestModbusFallback:
    PROFILE = modbus_profile(
        [
            RegisterSpec("voltage_a", 0, F32),
            RegisterSpec("voltage_b", 2, F32),
            RegisterSpec("voltage_c", 10, F32),  # gap 4..9
            RegisterSpec("current_a", 12, F32),
        ]
    )

    def test_refused_block_becomes_gap_free_runs(self) -> None:
        (whole,) = plan_modbus(self.PROFILE)
        assert layout([whole]) == [(4, 0, 14)]
        runs = plan_modbus(self.PROFILE, frozenset({whole}))
        assert layout(runs) == [(4, 0, 4), (4, 10, 4)]

    def test_refused_run_becomes_singles_and_refused_single_is_dropped(self) -> None:
        (whole,) = plan_modbus(self.PROFILE)
        first_run, second_run = plan_modbus(self.PROFILE, frozenset({whole}))
        singles = plan_modbus(self.PROFILE, frozenset({whole, second_run}))
        assert layout(singles) == [(4, 0, 4), (4, 10, 2), (4, 12, 2)]
        without = plan_modbus(self.PROFILE, frozenset({whole, second_run, singles[1]}))
        assert layout(without) == [(4, 0, 4), (4, 12, 2)]
        assert [k for b in without for k in b.keys] == ["voltage_a", "voltage_b", "current_a"]
        assert first_run in without

    def test_gap_free_block_goes_straight_to_singles(self) -> None:
        profile = modbus_profile(
            [RegisterSpec("voltage_a", 0, F32), RegisterSpec("voltage_b", 2, F32)]
        )
        (block,) = plan_modbus(profile)
        assert layout(plan_modbus(profile, frozenset({block}))) == [(4, 0, 2), (4, 2, 2)]


class TestDlt645:
    def test_three_phase_uses_blocks(self) -> None:
        profile = load_profile("dlt645-2007-3phase")
        plan = plan_dlt645(profile)
        assert len(profile.items) == 33
        assert len(plan) == 13  # 7 block reads + 6 single items instead of 33 reads
        first = plan[0]
        assert first == DltRead(
            0x0201FF00,
            ((0x02010100, "voltage_a"), (0x02010200, "voltage_b"), (0x02010300, "voltage_c")),
        )
        assert first.is_block and first.keys[0x02010200] == "voltage_b"
        assert sorted(k for r in plan for k in r.keys.values()) == sorted(profile.keys)

    def test_refused_block_falls_back_to_single_items(self) -> None:
        profile = load_profile("dlt645-2007-3phase")
        plan = plan_dlt645(profile, frozenset({0x0201FF00}))
        assert len(plan) == 15
        singles = [r for r in plan if r.di in (0x02010100, 0x02010200, 0x02010300)]
        assert [r.keys for r in singles] == [
            {0x02010100: "voltage_a"},
            {0x02010200: "voltage_b"},
            {0x02010300: "voltage_c"},
        ]
        assert not any(r.is_block for r in singles)

    def test_refused_single_is_dropped(self) -> None:
        profile = load_profile("dlt645-2007-3phase")
        plan = plan_dlt645(profile, frozenset({0x02800007}))
        assert "temperature" not in {k for r in plan for k in r.keys.values()}
        assert len(plan) == 12

    def test_block_covering_one_item_is_not_used(self) -> None:
        profile = load_profile("dlt645-2007-1phase")
        plan = plan_dlt645(profile)
        assert [r.di for r in plan if r.is_block] == [0x0001FF00]  # 5 energies in one read
        assert len(plan) == 8
        assert len(plan_dlt645(load_profile("dlt645-1997-1phase"))) == 6
