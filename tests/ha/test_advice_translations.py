"""The advice texts of the repair issues and event types mirror edge_agent.advice_texts.

``python -m tests.ha.test_advice_translations`` rewrites the issue texts from ADVICE_TEXTS
after the edge agent's texts change; the test fails until then.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.advice import ADVICE_RULES
from edge_agent.advice_texts import ADVICE_TEXTS

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "grid_meter"
#: Translation files of each advice language (strings.json is the English source).
FILES = {"en": ("strings.json", "translations/en.json"), "zh-Hans": ("translations/zh-Hans.json",)}
#: Between the meter's name and the advice title in an issue title.
SEPARATOR = {"en": ": ", "zh-Hans": "："}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INTEGRATION / name).read_text(encoding="utf-8"))
    return data


def _event_titles(translations: dict[str, Any]) -> dict[str, str]:
    event = translations["entity"]["event"]["grid_excursion"]
    titles: dict[str, str] = event["state_attributes"]["event_type"]["state"]
    return titles


def expected_issues(language: str, translations: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Return the advice issues of a language: titled like the event type, text of the advice."""
    titles = _event_titles(translations)
    return {
        f"advice_{rule}": {
            "title": f"{{meter}}{SEPARATOR[language]}{titles[rule]}",
            "description": ADVICE_TEXTS[language][rule],
        }
        for rule in ADVICE_RULES
    }


def test_every_advice_language_has_translations() -> None:
    assert set(ADVICE_TEXTS) == set(FILES)


@pytest.mark.parametrize("language", list(FILES))
def test_event_types_are_the_advice_rules(language: str) -> None:
    titles = _event_titles(_load(FILES[language][-1]))
    assert list(titles) == list(ADVICE_RULES)
    assert all(t.strip() for t in titles.values())


@pytest.mark.parametrize("language", list(FILES))
def test_issues_mirror_the_advice_texts(language: str) -> None:
    for name in FILES[language]:
        translations = _load(name)
        issues = translations["issues"]
        for key, expected in expected_issues(language, translations).items():
            assert issues.get(key) == expected, f"{name}: {key} (run {__name__} to regenerate)"


def write() -> None:
    """Rewrite the advice issues of every translation file from ADVICE_TEXTS."""
    for language, names in FILES.items():
        for name in names:
            translations = _load(name)
            issues = translations.setdefault("issues", {})
            issues.update(expected_issues(language, translations))
            text = json.dumps(translations, indent=2, ensure_ascii=False) + "\n"
            (INTEGRATION / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
    sys.exit(0)
