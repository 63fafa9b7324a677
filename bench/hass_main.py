"""Start Home Assistant for a benchmark: ``python bench/hass_main.py -c CONFIG --skip-pip``.

Run as a script, so the repository root (whose ``custom_components`` package would hide
the config directory's) is on ``sys.path`` only while the shims are imported. Shims:

* :mod:`bench.ptyparity`, for kernels that refuse even parity on a pseudo-terminal;
* ``BENCH_GRID_METER_INTERVAL=SECONDS`` sets Grid Meter's update interval;
* ``BENCH_CPROFILE=FILE`` profiles the event-loop thread into FILE (pstats format);
* without the frontend package (``scripts/setup --demo`` installs it), Home Assistant
  would start in recovery mode; the frontend is then dropped from the integrations it
  insists on. Nothing the benchmark measures depends on the frontend.
  ``BENCH_WITHOUT_FRONTEND=1`` does the same where it is installed.
"""

from __future__ import annotations

import cProfile
import importlib.util
import os
import sys
from datetime import timedelta
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)


def _set_grid_meter_interval(seconds: float) -> None:
    """Give Grid Meter's coordinators another update interval (it has no option for one).

    Imports the integration from the config directory, as Home Assistant will, before any
    coordinator exists, and replaces ``UPDATE_INTERVAL`` in every module that has it.
    """
    config_dir = sys.argv[sys.argv.index("-c") + 1]
    sys.path.insert(0, config_dir)
    importlib.import_module("custom_components.grid_meter.coordinator")
    for name, module in list(sys.modules.items()):
        if name.startswith("custom_components.grid_meter") and hasattr(module, "UPDATE_INTERVAL"):
            setattr(module, "UPDATE_INTERVAL", timedelta(seconds=seconds))  # noqa: B010


def main() -> int:
    """Install the shims, then run Home Assistant's own entry point."""
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # the bench directory: its module names are not for Home Assistant
    sys.path.insert(0, ROOT)
    try:
        from bench import ptyparity  # noqa: PLC0415
    finally:
        sys.path.remove(ROOT)
    ptyparity.install()
    if (
        os.environ.get("BENCH_WITHOUT_FRONTEND")
        or importlib.util.find_spec("hass_frontend") is None
    ):
        from homeassistant import bootstrap  # noqa: PLC0415

        for group in (
            bootstrap.CRITICAL_INTEGRATIONS,
            bootstrap.FRONTEND_INTEGRATIONS,
            bootstrap.DEFAULT_INTEGRATIONS,
            bootstrap.DEFAULT_INTEGRATIONS_RECOVERY_MODE,
        ):
            group.discard("frontend")
    if interval := os.environ.get("BENCH_GRID_METER_INTERVAL"):
        _set_grid_meter_interval(float(interval))
    from homeassistant.__main__ import main as hass_main  # noqa: PLC0415

    sys.argv[0] = "hass"
    if target := os.environ.get("BENCH_CPROFILE"):
        # Event-loop thread only: where Home Assistant's own time goes, for a bench report.
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(hass_main)
        finally:
            profiler.dump_stats(target)
    return hass_main()


if __name__ == "__main__":
    sys.exit(main())
