"""Home Assistant compatibility: the release checker, the compat module, deprecation reports."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import logging
import re
import runpy
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import NotRequired, get_origin, get_type_hints

import pytest
from homeassistant.components.recorder.models import StatisticData, StatisticMetaData
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.grid_meter import compat
from tests.ha_deprecations import assert_no_deprecations, deprecations

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO / "scripts" / "check-ha-compat"
INTEGRATION = REPO / "custom_components" / "grid_meter"

#: Code using APIs that Home Assistant removed after 2025.4: hass.helpers (2025.5) and
#: ConfigEntries.async_forward_entry_setup (2025.6). The mypy-style ignore must not hide it.
REMOVED_API = '''"""Integration code written against an old Home Assistant."""

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant


def use_removed_helpers(hass: HomeAssistant) -> None:
    """Reach a helper through hass.helpers."""
    hass.helpers.event.async_call_later  # noqa: B018


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Forward the set-up one platform at a time."""
    await hass.config_entries.async_forward_entry_setup(entry, "sensor")  # type: ignore
    return True
'''


def _load_checker() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("check_ha_compat", str(CHECKER))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


checker = _load_checker()


def _removed_api_package(root: Path) -> Path:
    """Write a package with compat.py and the removed-API module under ``root``."""
    package = root / "custom_components" / "grid_meter"
    package.mkdir(parents=True)
    shutil.copy(INTEGRATION / "compat.py", package / "compat.py")
    (package / "__init__.py").write_text(REMOVED_API)
    return package


# --- the checker ---------------------------------------------------------------------


def test_checker_fails_on_removed_api_naming_the_release(tmp_path: Path) -> None:
    """Removed APIs pass against the oldest release and fail against the newest, by name."""
    package = _removed_api_package(tmp_path)
    # Reuse the release the main check cached; resolve it on PyPI only on a fresh machine.
    cached = checker.cached_versions()
    oldest = checker.oldest_supported()
    newer = [v for v in cached if checker.version_key(v) > checker.version_key(oldest)]
    newest = newer[-1] if newer else "newest"
    proc = subprocess.run(
        [sys.executable, str(CHECKER), "--path", str(package), "--ha", "oldest", "--ha", newest],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert re.search(rf"^HA {re.escape(oldest)} \(oldest supported, Python 3\.\d+\): OK", out, re.M)
    verdict = re.search(r"^HA (\S+) \(\w+, Python 3\.(\d+)\): FAIL — 2 errors", out, re.M)
    assert verdict, out
    version = verdict.group(1)
    assert checker.version_key(version) > checker.version_key(oldest)
    assert int(verdict.group(2)) >= 13
    helpers = re.search(
        rf"^HA {re.escape(version)}: custom_components/grid_meter/__init__.py:9:\d+: error: "
        r'Cannot access attribute "helpers" for class "HomeAssistant"',
        out,
        re.M,
    )
    forward = re.search(
        rf"^HA {re.escape(version)}: custom_components/grid_meter/__init__.py:14:\d+: error: "
        r'Cannot access attribute "async_forward_entry_setup" for class "ConfigEntries"',
        out,
        re.M,
    )
    assert helpers, out
    assert forward, out
    assert f"HA compat: FAIL against Home Assistant {version}" in out


def test_checker_passes_compat_gates_to_pyright() -> None:
    """The checker reads the same gates as the integration uses at run time."""
    assert checker.version_gates(INTEGRATION) == compat.VERSION_GATES
    release = checker.Release("2025.10.3", "3.13", Path("/nowhere"), "requested")
    config = checker.pyright_config(release, INTEGRATION, Path("/venv"), compat.VERSION_GATES)
    assert config["defineConstant"] == {
        "STATISTICS_UNIT_CLASS": False,
        "DEVICE_REGISTRY_SINGLE_ENTRY": False,
    }
    assert config["pythonVersion"] == "3.13"
    assert config["enableTypeIgnoreComments"] is False
    assert config["reportAttributeAccessIssue"] == "error"


def test_checker_reads_python_version_and_missing_import_kind() -> None:
    """Requires-Python picks pyright's Python; only homeassistant imports must resolve."""
    assert checker.python_of("Name: homeassistant\nRequires-Python: >=3.14.2\n") == "3.14"
    assert checker.python_of("Requires-Python: >=3.13.0\n") == "3.13"
    assert checker.is_ha_module('Import "homeassistant.backports.enum" could not be resolved')
    assert not checker.is_ha_module('Import "aiohttp_fast_zlib" could not be resolved')


def test_oldest_release_is_the_hacs_minimum_and_the_tested_one() -> None:
    """hacs.json's minimum is what the check types against and what the tests run on."""
    minimum = json.loads((REPO / "hacs.json").read_text())["homeassistant"]
    assert checker.oldest_supported() == minimum
    assert minimum == HA_VERSION, f"hacs.json claims {minimum}; the tests run on {HA_VERSION}"


# --- compat.py on the running release ------------------------------------------------


def test_version_gates_match_the_running_release() -> None:
    """Each gate is True exactly when the running release has the newer API."""
    has_unit_class = "unit_class" in StatisticMetaData.__annotations__
    has_via_device_id = "via_device_id" in DeviceInfo.__annotations__
    assert has_unit_class == compat.STATISTICS_UNIT_CLASS
    assert has_via_device_id == compat.DEVICE_REGISTRY_SINGLE_ENTRY


@pytest.mark.parametrize(
    ("statistic_id", "source"),
    [("grid_meter:bus1_energy_import_total", "grid_meter"), ("sensor.meter_energy", "recorder")],
)
def test_statistic_metadata_has_the_running_release_keys(statistic_id: str, source: str) -> None:
    """The metadata has every required key of the running release and no unknown key."""
    metadata = compat.statistic_metadata(statistic_id, name="Import", unit="kWh", has_sum=True)
    # __required_keys__ is wrong under ``from __future__ import annotations``: read the hints.
    hints = get_type_hints(StatisticMetaData, include_extras=True)
    required = {key for key, hint in hints.items() if get_origin(hint) is not NotRequired}
    assert required <= set(metadata) <= set(hints)
    assert metadata["source"] == source
    assert metadata["has_sum"] is True
    assert metadata["unit_of_measurement"] == "kWh"
    assert ("unit_class" in metadata) is compat.STATISTICS_UNIT_CLASS


def test_statistic_unit_class() -> None:
    """Units the recorder converts have the recorder's class; others have none."""
    assert compat.statistic_unit_class("kWh") == "energy"
    assert compat.statistic_unit_class("V") == "voltage"
    assert compat.statistic_unit_class("no such unit") is None


async def test_recorder_accepts_external_statistics(
    recorder_mock: object, hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """The running recorder stores statistics imported with compat's metadata."""
    statistic_id = "grid_meter:bus1_energy_import_total"
    metadata = compat.statistic_metadata(
        statistic_id, name="Bus 1 import", unit="kWh", has_sum=True
    )
    start = datetime(2025, 6, 1, 10, tzinfo=UTC)
    rows = [
        StatisticData(start=start, state=100.0, sum=0.0),
        StatisticData(start=start + timedelta(hours=1), state=101.5, sum=1.5),
    ]
    async_add_external_statistics(hass, metadata, rows)
    await async_wait_recording_done(hass)

    instance = get_instance(hass)
    stored = await instance.async_add_executor_job(
        lambda: get_metadata(hass, statistic_ids={statistic_id})
    )
    assert stored[statistic_id][1]["unit_of_measurement"] == "kWh"
    assert stored[statistic_id][1]["has_sum"] is True
    stats = await instance.async_add_executor_job(
        lambda: statistics_during_period(
            hass, start, None, {statistic_id}, "hour", None, {"state", "sum"}
        )
    )
    rows_back = [(row["state"], row["sum"]) for row in stats[statistic_id]]
    assert rows_back == [(100.0, 0.0), (101.5, 1.5)]
    assert_no_deprecations(caplog)


async def test_link_to_parent_links_the_registered_parent(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A meter device registered with link_to_parent sits behind its bus device."""
    entry = MockConfigEntry(domain="grid_meter", title="Bus 1")
    entry.add_to_hass(hass)
    registry = dr.async_get(hass)
    bus = registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={("grid_meter", "bus1")}, name="Bus 1"
    )
    child = DeviceInfo(identifiers={("grid_meter", "bus1_7")}, name="Meter 7")
    info = compat.link_to_parent(hass, child, ("grid_meter", "bus1"), entry.entry_id)
    meter = registry.async_get_or_create(config_entry_id=entry.entry_id, **info)
    assert meter.via_device_id == bus.id
    assert meter.id != bus.id
    assert compat.find_device(hass, ("grid_meter", "bus1_7"), entry.entry_id) == meter
    assert_no_deprecations(caplog)


async def test_link_to_parent_leaves_out_an_unknown_parent(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """No link (and no deprecation) when the parent is missing or belongs to another entry."""
    entry = MockConfigEntry(domain="grid_meter", title="Bus 1")
    other = MockConfigEntry(domain="grid_meter", title="Bus 2")
    entry.add_to_hass(hass)
    other.add_to_hass(hass)
    registry = dr.async_get(hass)
    registry.async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("grid_meter", "bus2")}, name="Bus 2"
    )
    assert compat.find_device(hass, ("grid_meter", "bus2"), entry.entry_id) is None
    assert compat.find_device(hass, ("grid_meter", "nothing"), entry.entry_id) is None
    child = DeviceInfo(identifiers={("grid_meter", "bus1_7")}, name="Meter 7")
    info = compat.link_to_parent(hass, child, ("grid_meter", "bus2"), entry.entry_id)
    meter = registry.async_get_or_create(config_entry_id=entry.entry_id, **info)
    assert meter.via_device_id is None
    assert_no_deprecations(caplog)


# --- deprecation reports -------------------------------------------------------------


async def test_deprecation_of_our_code_is_reported(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Home Assistant's own report of a removed API used by our code fails the test."""
    package = _removed_api_package(tmp_path)
    module = runpy.run_path(str(package / "__init__.py"))
    module["use_removed_helpers"](hass)
    found = deprecations(caplog.records)
    assert len(found) == 1, caplog.text
    assert "Detected that custom integration 'grid_meter' accesses hass.helpers.event" in found[0]
    assert "This will stop working in Home Assistant 2025.5" in found[0]
    with pytest.raises(pytest.fail.Exception, match=r"logged 1 deprecation\(s\) for grid_meter"):
        assert_no_deprecations(caplog)


def test_deprecated_constant_used_by_our_code_is_reported(tmp_path: Path) -> None:
    """A deprecated constant read from the integration's folder is ours; elsewhere it is not."""
    probe = tmp_path / "custom_components" / "grid_meter" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from homeassistant import const\n\nconst.POWER_VOLT_AMPERE_REACTIVE\n")
    handler = _Collect()
    logging.getLogger("homeassistant.const").addHandler(handler)
    try:
        runpy.run_path(str(probe))
    finally:
        logging.getLogger("homeassistant.const").removeHandler(handler)
    found = deprecations(handler.records)
    assert len(found) == 1
    assert "POWER_VOLT_AMPERE_REACTIVE was used from grid_meter" in found[0]


def test_reports_about_others_are_not_ours() -> None:
    """Other integrations' reports and records below WARNING are ignored."""
    other = logging.LogRecord(
        "homeassistant.helpers.frame",
        logging.WARNING,
        __file__,
        1,
        "Detected that custom integration 'other' uses X. This will stop working in 2026.1",
        None,
        None,
    )
    quiet = logging.LogRecord(
        "homeassistant.helpers.frame",
        logging.INFO,
        __file__,
        1,
        "Detected that custom integration 'grid_meter' uses X, which is deprecated",
        None,
        None,
    )
    unrelated = logging.LogRecord(
        "custom_components.grid_meter",
        logging.WARNING,
        __file__,
        1,
        "Meter 7 on Bus 1 is not answering",
        None,
        None,
    )
    assert deprecations([other, quiet, unrelated]) == []


class _Collect(logging.Handler):
    """Keep every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep ``record``."""
        self.records.append(record)
