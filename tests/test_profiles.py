"""Profile files: the shipped ones, the schema's error messages, and user directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.errors import ProfileError
from edge_agent.profiles import ENV_VAR, PACKAGE_DIR, all_profiles, load_profile, profile_dirs
from edge_agent.profiles.model import ProfileProtocol, RegisterType
from edge_agent.profiles.schema import parse_profile
from edge_agent.quantities import QUANTITIES

REQUIRED = {
    "eastron-sdm630": ProfileProtocol.MODBUS,
    "eastron-sdm120": ProfileProtocol.MODBUS,
    "chint-dtsu666": ProfileProtocol.MODBUS,
    "chint-ddsu666": ProfileProtocol.MODBUS,
    "acrel-adw300": ProfileProtocol.MODBUS,
    "im1253b": ProfileProtocol.MODBUS,
    "dlt645-2007-3phase": ProfileProtocol.DLT645_2007,
    "dlt645-2007-1phase": ProfileProtocol.DLT645_2007,
    "dlt645-1997-1phase": ProfileProtocol.DLT645_1997,
}

#: The SDM630 quantities volkszaehler/mbmd reads that have canonical keys (its total
#: system phase angle and reactive energies per phase have none).
MBMD_SDM630 = {
    *(f"voltage_{p}" for p in "abc"),
    *(f"voltage_{p}" for p in ("ab", "bc", "ca")),
    *(f"current_{p}" for p in "abc"),
    *(f"power_{kind}_{p}" for kind in ("active", "reactive", "apparent") for p in "abc"),
    "power_active_total",
    "power_reactive_total",
    "power_apparent_total",
    *(f"power_factor_{p}" for p in "abc"),
    "power_factor_total",
    *(f"thd_voltage_{p}" for p in "abc"),
    *(f"thd_current_{p}" for p in "abc"),
    "frequency",
    "energy_import_total",
    "energy_export_total",
    "energy_total",
    *(f"energy_{kind}_{p}" for kind in ("import", "export", "total") for p in "abc"),
}

MINIMAL_MODBUS: dict[str, Any] = {
    "id": "test-meter",
    "manufacturer": "Test",
    "model": "T1",
    "protocol": "modbus",
    "source": "test fixture",
    "phases": 1,
    "registers": [
        {"key": "voltage_a", "address": 0, "type": "float32"},
        {"key": "current_a", "address": 2, "type": "float32"},
    ],
}

MINIMAL_DLT: dict[str, Any] = {
    "id": "test-dlt",
    "manufacturer": "Test",
    "model": "D1",
    "protocol": "dlt645-2007",
    "source": "test fixture",
    "phases": 3,
    "items": [{"key": "voltage_a", "di": "02010100"}, {"key": "voltage_b", "di": "02010200"}],
    "blocks": ["0201FF00"],
}


def with_changes(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    document = {**base, **changes}
    return {k: v for k, v in document.items() if v is not None}


def error_of(document: object) -> str:
    with pytest.raises(ProfileError) as err:
        parse_profile(document, "meter.yaml")
    return str(err.value)


class TestShippedProfiles:
    def test_required_profiles_exist_with_their_protocol(self) -> None:
        profiles = all_profiles()
        for pid, protocol in REQUIRED.items():
            assert profiles[pid].protocol is protocol

    @pytest.mark.parametrize("pid", sorted(REQUIRED))
    def test_each_cites_a_source_and_uses_canonical_keys(self, pid: str) -> None:
        profile = load_profile(pid)
        assert profile.id == pid
        assert len(profile.source) > 30
        assert profile.keys and set(profile.keys) <= QUANTITIES.keys()
        assert len(set(profile.keys)) == len(profile.keys)
        assert {"voltage_a", "current_a", "power_active_total", "energy_import_total"} <= set(
            profile.keys
        )

    def test_sdm630_covers_what_mbmd_reads(self) -> None:
        keys = set(load_profile("eastron-sdm630").keys)
        assert len(MBMD_SDM630) >= 37
        assert keys >= MBMD_SDM630
        assert len(keys) == 51

    def test_sdm630_registers(self) -> None:
        profile = load_profile("eastron-sdm630")
        by_key = {r.key: r for r in profile.registers}
        assert by_key["voltage_a"].address == 0  # 30001
        assert by_key["power_active_total"].address == 0x34  # 30053, W
        assert by_key["power_active_total"].scale == 0.001  # -> kW
        assert by_key["energy_total"].address == 0x156  # 30343
        assert {r.function for r in profile.registers} == {4}
        assert {r.type for r in profile.registers} == {RegisterType.FLOAT32}

    def test_im1253b_has_four_byte_registers(self) -> None:
        profile = load_profile("im1253b")
        assert profile.modbus is not None and profile.modbus.register_bytes == 4
        assert [r.address for r in profile.registers][:2] == [0x48, 0x49]

    def test_dtsu666_scales_to_canonical_units(self) -> None:
        by_key = {r.key: r for r in load_profile("chint-dtsu666").registers}
        assert by_key["power_active_total"].scale == 0.0001  # 0.1 W -> kW
        assert by_key["voltage_a"].address == 0x2006
        assert by_key["voltage_ab"].address == 0x2000

    def test_dlt645_profiles_use_catalogued_blocks(self) -> None:
        three = load_profile("dlt645-2007-3phase")
        assert 0x0201FF00 in three.blocks
        assert {i.key: i.di for i in three.items}["frequency"] == 0x02800002
        old = load_profile("dlt645-1997-1phase")
        assert {i.key: i.di for i in old.items}["energy_import_total"] == 0x9010


class TestSchemaErrors:
    def test_minimal_documents_are_valid(self) -> None:
        assert parse_profile(MINIMAL_MODBUS, "m.yaml").registers[1].address == 2
        assert parse_profile(MINIMAL_DLT, "d.yaml").blocks == (0x0201FF00,)

    def test_missing_field(self) -> None:
        message = error_of(with_changes(MINIMAL_MODBUS, source=None))
        assert message == "meter.yaml: source: required field is missing"

    def test_bad_register_type(self) -> None:
        registers = [{"key": "voltage_a", "address": 0, "type": "float64"}]
        message = error_of(with_changes(MINIMAL_MODBUS, registers=registers))
        assert message.startswith("meter.yaml: registers[0].type: 'float64' is not one of u16")

    def test_address_must_be_a_number(self) -> None:
        registers = [{"key": "voltage_a", "address": "zero", "type": "u16"}]
        message = error_of(with_changes(MINIMAL_MODBUS, registers=registers))
        assert message == "meter.yaml: registers[0].address: expected a whole number, got 'zero'"

    def test_unknown_quantity_key(self) -> None:
        registers = [{"key": "voltage_x", "address": 0, "type": "u16"}]
        message = error_of(with_changes(MINIMAL_MODBUS, registers=registers))
        assert "registers[0].key: unknown quantity key 'voltage_x'" in message

    def test_unknown_field(self) -> None:
        registers = [{"key": "voltage_a", "adress": 0, "type": "u16"}]
        message = error_of(with_changes(MINIMAL_MODBUS, registers=registers))
        assert message.startswith("meter.yaml: registers[0].adress: unknown field")
        assert message.endswith("(+1 more)")

    def test_overlapping_registers(self) -> None:
        registers = [
            {"key": "voltage_a", "address": 0, "type": "float32"},
            {"key": "current_a", "address": 1, "type": "u16"},
        ]
        message = error_of(with_changes(MINIMAL_MODBUS, registers=registers))
        assert message.startswith("meter.yaml: registers[1].address: current_a at 1 overlaps")
        assert "voltage_a (registers[0], function 4, addresses 0..1)" in message

    def test_same_address_different_functions_is_fine(self) -> None:
        registers = [
            {"key": "voltage_a", "address": 0, "type": "float32", "function": 3},
            {"key": "current_a", "address": 0, "type": "float32", "function": 4},
        ]
        assert len(parse_profile(with_changes(MINIMAL_MODBUS, registers=registers), "m").registers)

    def test_duplicate_key(self) -> None:
        registers = [
            {"key": "voltage_a", "address": 0, "type": "u16"},
            {"key": "voltage_a", "address": 4, "type": "u16"},
        ]
        message = error_of(with_changes(MINIMAL_MODBUS, registers=registers))
        assert "registers[1].key: 'voltage_a' is already mapped by registers[0]" in message

    def test_sixteen_bit_type_on_four_byte_device(self) -> None:
        document = with_changes(
            MINIMAL_MODBUS,
            modbus={"register_bytes": 4, "max_registers": 8},
            registers=[{"key": "voltage_a", "address": 0, "type": "u16"}],
        )
        assert "registers[0].type: u16 values need 2-byte registers" in error_of(document)

    def test_read_too_long_for_four_byte_registers(self) -> None:
        document = with_changes(MINIMAL_MODBUS, modbus={"register_bytes": 4, "max_registers": 100})
        assert "modbus.max_registers: 100 registers of 4 bytes exceed" in error_of(document)

    def test_protocol_checked_first(self) -> None:
        message = error_of(with_changes(MINIMAL_MODBUS, protocol="profibus"))
        assert message.startswith("meter.yaml: protocol: 'profibus' is not one of modbus")

    def test_not_a_mapping(self) -> None:
        assert "expected a mapping" in error_of(["id", "x"])

    def test_dlt_di_must_be_a_quoted_hex_string(self) -> None:
        items = [{"key": "voltage_a", "di": 2010100}]  # YAML would read an unquoted DI as a number
        message = error_of(with_changes(MINIMAL_DLT, items=items))
        assert "items[0].di: expected a quoted hex data identifier" in message

    def test_dlt_di_must_be_catalogued(self) -> None:
        items = [{"key": "voltage_a", "di": "0201FE00"}]
        message = error_of(with_changes(MINIMAL_DLT, items=items))
        assert "items[0].di: data identifier 0201FE00 is not in the DL/T 645-2007" in message

    def test_dlt_block_and_item_not_mixed_up(self) -> None:
        message = error_of(with_changes(MINIMAL_DLT, blocks=["02010100"]))
        assert "blocks[0]: 02010100 is a single item" in message
        items = [{"key": "voltage_a", "di": "0201FF00"}]
        assert "is a block" in error_of(with_changes(MINIMAL_DLT, items=items))

    def test_dlt_di_width_follows_the_edition(self) -> None:
        message = error_of(with_changes(MINIMAL_DLT, protocol="dlt645-1997", blocks=None))
        assert "items[0].di: DL/T 645-1997 data identifiers have 4 hex digits" in message

    def test_modbus_fields_in_a_dlt_profile(self) -> None:
        registers = MINIMAL_MODBUS["registers"]
        assert "registers: unknown field" in error_of(
            with_changes(MINIMAL_DLT, registers=registers)
        )


class TestLoading:
    def write(self, directory: Path, document: dict[str, Any]) -> Path:
        path = directory / f"{document['id']}.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    def test_unknown_id_lists_the_known_ones(self) -> None:
        with pytest.raises(ProfileError, match=r"unknown profile 'sdm999'; known profiles: .*"):
            load_profile("sdm999")
        with pytest.raises(ProfileError, match="eastron-sdm630"):
            load_profile("sdm999")

    def test_user_profile_in_extra_dir(self, tmp_path: Path) -> None:
        self.write(tmp_path, MINIMAL_MODBUS)
        profile = load_profile("test-meter", extra_dirs=[tmp_path])
        assert profile.model == "T1"
        assert "test-meter" in all_profiles([tmp_path])
        assert "test-meter" not in all_profiles()

    def test_user_profile_from_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        other = tmp_path / "other"
        other.mkdir()
        self.write(tmp_path, MINIMAL_DLT)
        monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(other), str(tmp_path)]))
        assert profile_dirs() == [other, tmp_path, PACKAGE_DIR]
        assert load_profile("test-dlt").protocol is ProfileProtocol.DLT645_2007

    def test_user_dir_overrides_shipped_profile(self, tmp_path: Path) -> None:
        document = with_changes(MINIMAL_MODBUS, id="eastron-sdm120", model="patched")
        self.write(tmp_path, document)
        assert load_profile("eastron-sdm120", [tmp_path]).model == "patched"
        assert load_profile("eastron-sdm120").model == "SDM120"

    def test_load_by_path(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, MINIMAL_MODBUS)
        assert load_profile(str(path)).id == "test-meter"
        with pytest.raises(ProfileError, match="does not exist"):
            load_profile(str(tmp_path / "missing.yaml"))

    def test_id_must_match_file_name(self, tmp_path: Path) -> None:
        (tmp_path / "wrong-name.yaml").write_text(yaml.safe_dump(MINIMAL_MODBUS))
        with pytest.raises(ProfileError, match=r"id: 'test-meter' does not match .*wrong-name"):
            load_profile("wrong-name", [tmp_path])

    def test_invalid_file_names_the_file_and_field(self, tmp_path: Path) -> None:
        self.write(tmp_path, with_changes(MINIMAL_MODBUS, phases=2))
        with pytest.raises(ProfileError, match=r"test-meter\.yaml: phases: 2 is not one of 1, 3"):
            load_profile("test-meter", [tmp_path])

    def test_broken_yaml(self, tmp_path: Path) -> None:
        (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
        with pytest.raises(ProfileError, match=r"broken\.yaml: invalid YAML \(line \d+\)"):
            load_profile("broken", [tmp_path])

    def test_edited_file_is_reloaded(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, MINIMAL_MODBUS)
        assert load_profile("test-meter", [tmp_path]).model == "T1"
        path.write_text(yaml.safe_dump(with_changes(MINIMAL_MODBUS, model="T2 rev")))
        assert load_profile("test-meter", [tmp_path]).model == "T2 rev"

    def test_shipped_dir_holds_every_profile(self) -> None:
        assert {p.stem for p in PACKAGE_DIR.glob("*.yaml")} == set(all_profiles())
