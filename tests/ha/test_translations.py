"""Translations: complete, identical in shape across languages, and covering every key used."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from custom_components.grid_meter.sensor import BUS_SENSORS, METER_SENSORS
from edge_agent.quantities import QUANTITIES

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "grid_meter"
LANGUAGES = ("en", "zh-Hans")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INTEGRATION / name).read_text(encoding="utf-8"))
    return data


def _paths(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_paths(value, path + "::"))
        else:
            flat[path] = value
    return flat


def test_strings_json_is_the_english_translation() -> None:
    assert _load("strings.json") == _load("translations/en.json")


def test_languages_have_the_same_keys_and_placeholders() -> None:
    en = _paths(_load("translations/en.json"))
    zh = _paths(_load("translations/zh-Hans.json"))
    assert en.keys() == zh.keys()
    for path, text in en.items():
        assert zh[path].strip(), path
        assert set(re.findall(r"{\w+}", text)) == set(re.findall(r"{\w+}", zh[path])), path


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_quantity_and_bus_sensor_has_a_name(language: str) -> None:
    names = _load(f"translations/{language}.json")["entity"]["sensor"]
    keys = {d.translation_key for d in METER_SENSORS.values()} | {
        d.translation_key for d in BUS_SENSORS
    }
    assert keys == set(QUANTITIES) | {d.key for d in BUS_SENSORS}
    assert keys <= set(names)
    # Names differ within a language, so two entities of one meter never share a name.
    assert len({names[k]["name"] for k in keys}) == len(keys)


def test_icons_refer_to_known_translation_keys() -> None:
    icons = _load("icons.json")["entity"]["sensor"]
    names = _load("translations/en.json")["entity"]["sensor"]
    assert set(icons) <= set(names)
    assert all(icon["default"].startswith("mdi:") for icon in icons.values())


def test_flow_errors_and_aborts_are_translated() -> None:
    """Every error and abort key the flow code can return has an English text."""
    en = _load("translations/en.json")
    source = "\n".join(
        (INTEGRATION / f).read_text(encoding="utf-8")
        for f in ("config_flow.py", "meter_flow.py", "flow_common.py")
    )
    used = set(re.findall(r'"base": "(\w+)"', source))
    used |= set(re.findall(r'errors\[[A-Z_]+\] = "(\w+)"', source))
    used |= set(re.findall(r'= \{CONF_\w+: "(\w+)"\}', source))
    assert used, "the patterns found no error keys"
    bus_errors = set(en["config"]["error"])
    meter_errors = set(en["config_subentries"]["meter"]["error"])
    assert used <= bus_errors | meter_errors
    assert bus_errors <= meter_errors  # a meter flow can hit every link error too
    for reason in re.findall(r'async_abort\(reason="(\w+)"\)', source):
        assert reason in en["config_subentries"]["meter"]["abort"]
