"""Fail a test when Home Assistant logs a deprecation caused by Grid Meter's code.

Home Assistant reports an integration's use of a deprecated API at run time only, by logging
(``homeassistant.helpers.frame.report_usage`` and the deprecated-constant helpers); typing
cannot see it. Proposed use, as an autouse fixture in the Home Assistant tests' conftest::

    @pytest.fixture(autouse=True)
    def no_deprecations(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
        yield
        assert_no_deprecations(caplog)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

DOMAIN = "grid_meter"

#: Texts of Home Assistant's deprecation reports (helpers/frame.py, helpers/deprecation.py).
DEPRECATION_TEXTS = (
    "is deprecated",
    "is a deprecated",
    "will stop working",
    "will be removed",
    "Detected that custom integration",
    "Detected that integration",
    "Detected code that",
)


def _is_ours(record: logging.LogRecord, domain: str) -> bool:
    """Whether a report names the integration or comes from a call in its code."""
    message = record.getMessage()
    if f"'{domain}'" in message or f"from {domain}," in message:
        return True
    folder = f"custom_components/{domain}/"
    return folder in message or folder in (record.stack_info or "")


def deprecations(records: Iterable[logging.LogRecord], domain: str = DOMAIN) -> list[str]:
    """Return the deprecation reports among ``records`` that concern ``domain``."""
    return [
        f"{record.name}: {record.getMessage()}"
        for record in records
        if record.levelno >= logging.WARNING
        and any(text in record.getMessage() for text in DEPRECATION_TEXTS)
        and _is_ours(record, domain)
    ]


def assert_no_deprecations(caplog: pytest.LogCaptureFixture, domain: str = DOMAIN) -> None:
    """Fail listing every deprecation Home Assistant logged for ``domain`` during the test.

    Works in the test body and in a fixture's teardown: it reads the set-up and call phases
    as well as the current one.
    """
    records: dict[int, logging.LogRecord] = {}
    for record in (*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records):
        records.setdefault(id(record), record)
    found = deprecations(records.values(), domain)
    if found:
        pytest.fail(
            f"Home Assistant logged {len(found)} deprecation(s) for {domain}:\n"
            + "\n".join(f"  {line}" for line in found),
            pytrace=False,
        )
