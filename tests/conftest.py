"""Shared test set-up.

pytest-homeassistant-custom-component mounts its own ``custom_components`` package for Home
Assistant's loader. Importing the repository's integration here, before Home Assistant
imports anything, makes ``custom_components`` resolve to this repository's package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import custom_components.grid_meter  # noqa: E402, F401


def pytest_configure(config: pytest.Config) -> None:
    """Register the project's markers."""
    config.addinivalue_line(
        "markers", "e2e: starts the demo (Home Assistant, simulator, Chromium); about a minute"
    )
