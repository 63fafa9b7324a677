"""Write Home Assistant configuration directories for the benchmark runs."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from edge_agent.model import SerialSettings

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = Path(__file__).resolve().parent / "components"
GRID_METER = ROOT / "custom_components" / "grid_meter"

_CORE = {
    "name": "Grid Meter bench",
    "latitude": 52.5,
    "longitude": 13.4,
    "elevation": 30,
    "unit_system": "metric",
    "time_zone": "UTC",
    "currency": "EUR",
    "country": "DE",
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def frontend_installed() -> bool:
    """Tell whether Home Assistant's frontend package (and so default_config) can load."""
    if os.environ.get("BENCH_WITHOUT_FRONTEND"):  # to try the fallback where it is installed
        return False
    return importlib.util.find_spec("hass_frontend") is not None


def recorder_config() -> tuple[dict[str, Any], str]:
    """Return the YAML that makes the recorder run, and how to describe it.

    ``default_config`` when its requirements (the frontend first) are installed, as by
    ``scripts/setup --demo``; otherwise ``recorder`` and ``history`` alone, which is what
    ``default_config`` adds to the cost of writing a state.
    """
    if frontend_installed():
        return {"default_config": {}}, "default_config (recorder on SQLite)"
    return (
        {"recorder": {}, "history": {}},
        "recorder + history on SQLite (default_config's requirements are not installed: "
        "run scripts/setup --demo for the full default_config)",
    )


@dataclass(frozen=True, slots=True)
class GridMeterBus:
    """One Grid Meter bus config entry: its pty, character format and meters."""

    title: str
    device: str
    settings: SerialSettings
    protocol: str
    #: (profile id, address) per meter.
    meters: Sequence[tuple[str, str]]


def _stamp() -> str:
    return datetime.now(UTC).isoformat()


def _entry(bus: GridMeterBus) -> dict[str, Any]:
    s = bus.settings
    return {
        "created_at": _stamp(),
        "data": {
            "link": "serial",
            "device": bus.device,
            "protocol": bus.protocol,
            "baudrate": s.baudrate,
            "parity": s.parity,
            "stopbits": s.stopbits,
        },
        "discovery_keys": {},
        "disabled_by": None,
        "domain": "grid_meter",
        "entry_id": uuid.uuid4().hex,
        "minor_version": 1,
        "modified_at": _stamp(),
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "subentries": [
            {
                "data": {"address": address, "profile": profile},
                "subentry_id": uuid.uuid4().hex,
                "subentry_type": "meter",
                "title": f"{profile} {address}",
                "unique_id": address,
            }
            for profile, address in bus.meters
        ],
        "title": bus.title,
        "unique_id": bus.device,
        "version": 1,
    }


def write_config_dir(
    directory: Path,
    config: dict[str, Any],
    *,
    components: Sequence[str] = (),
    grid_meter: Sequence[GridMeterBus] = (),
) -> None:
    """Create a fresh config directory: YAML, custom components, Grid Meter entries."""
    if directory.exists():
        shutil.rmtree(directory)
    custom = directory / "custom_components"
    custom.mkdir(parents=True)
    # A regular package here wins over the repository's custom_components on sys.path.
    (custom / "__init__.py").write_text("")
    for name in components:
        (custom / name).symlink_to(COMPONENTS / name)
    if grid_meter:
        (custom / "grid_meter").symlink_to(GRID_METER)
        storage = directory / ".storage"
        storage.mkdir()
        entries = {
            "version": 1,
            "minor_version": 5,
            "key": "core.config_entries",
            "data": {"entries": [_entry(bus) for bus in grid_meter]},
        }
        (storage / "core.config_entries").write_text(json.dumps(entries, indent=1))
    document = {
        "homeassistant": _CORE,
        "logger": {"default": "warning"},
        # Several instances run at once: each on its own loopback port.
        "http": {"server_host": "127.0.0.1", "server_port": free_port()},
    } | config
    (directory / "configuration.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
