#!/usr/bin/env python3
"""The Grid Meter demo: simulated meters and a ready-to-use Home Assistant.

``scripts/demo`` runs :func:`main`; the end-to-end test runs the same steps on free ports:

1. :func:`start_simulator` serves the simulated buses (``scripts/demo_sim.py``) in the
   background: an RS485 line on a pty and a transparent TCP gateway.
2. :func:`write_config` creates the Home Assistant configuration directory: default_config,
   China location and time zone, metric units, the integration symlinked into
   ``custom_components``, both buses with their meters as config entries and subentries, and
   the Energy dashboard fed by the main meter.
3. :func:`start_home_assistant` starts ``hass`` on it; :func:`wait_until_up` waits for HTTP.
4. :func:`onboard` finishes onboarding through Home Assistant's onboarding API (owner user
   ``demo``) on the first run; later runs skip it. :func:`login` gets an access token.
5. :func:`create_dashboard` calls the ``grid_meter.create_dashboard`` action once Home
   Assistant runs: the big-screen dashboard at ``/grid-meter``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import homeassistant
from homeassistant.config_entries import STORAGE_VERSION, STORAGE_VERSION_MINOR, ConfigEntry

from edge_agent.profiles import load_profile

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SIM_SCRIPT = REPO / "scripts" / "demo_sim.py"

USER = "demo"
PASSWORD = "grid-meter-demo"
NAME = "Demo"

#: URL path of the dashboard the create_dashboard action builds.
DASHBOARD = "grid-meter"

SERIAL_ENTRY_ID = "01JGMDEMOSERIALBUS00000000"
GATEWAY_ENTRY_ID = "01JGMDEMOTCPGATEWAY0000000"

# Imported from the simulator script so both sides list the same meters.
sys.path.insert(0, str(SIM_SCRIPT.parent))
from demo_sim import GATEWAY_METERS, LINE, SERIAL_METERS  # noqa: E402

#: First line of a configuration.yaml the demo may rewrite (delete it to keep your edits).
GENERATED = "# Grid Meter demo, written by scripts/demo_setup.py at each start."
CONFIGURATION_YAML = """\
{generated}
# Delete the line above and the demo leaves this file alone.
homeassistant:
  name: Grid Meter demo
  latitude: 31.2304
  longitude: 121.4737
  elevation: 10
  unit_system: metric
  currency: CNY
  country: CN
  time_zone: Asia/Shanghai
  language: en

# default_config without go2rtc, which needs a go2rtc binary that a Python install lacks
# (default_config itself would fail on it and raise a notification).
{default_config}
http:
  server_port: {port}
{host_line}
logger:
  default: warning
  logs:
    custom_components.grid_meter: info
    edge_agent: info
"""


@dataclass(frozen=True, slots=True)
class SimInfo:
    """Where the running simulator serves its buses."""

    serial: str
    gateway_port: int


def meter_title(address: str, profile_id: str) -> str:
    """Return the title the meter subentry flow gives a meter (and so its device name)."""
    return f"{load_profile(profile_id).model} {address}"


# --- 1. simulator -----------------------------------------------------------------------


def start_simulator(
    run_dir: Path, gateway_port: int, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], SimInfo]:
    """Start the simulator process; return it and where it serves once both buses are up."""
    ready = run_dir / "sim.json"
    ready.unlink(missing_ok=True)
    log = (run_dir / "simulator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(SIM_SCRIPT), str(run_dir), "--gateway-port", str(gateway_port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the simulator did not start; see {run_dir / 'simulator.log'}")
        time.sleep(0.1)
    info = json.loads(ready.read_text())
    return process, SimInfo(serial=info["serial"], gateway_port=int(info["gateway_port"]))


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a process started here: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- 2. configuration -------------------------------------------------------------------


def _meter_subentries(meters: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "data": {"address": address, "profile": profile},
            "subentry_type": "meter",
            "title": meter_title(address, profile),
            "unique_id": address,
        }
        for address, profile in meters
    ]


def config_entries(sim: SimInfo) -> list[dict[str, Any]]:
    """Return the two bus config entries in Home Assistant's storage format."""
    line = {"baudrate": LINE.baudrate, "parity": LINE.parity, "stopbits": LINE.stopbits}
    serial = ConfigEntry(
        entry_id=SERIAL_ENTRY_ID,
        domain="grid_meter",
        title="RS485 bus (simulated)",
        unique_id=sim.serial,
        data={"link": "serial", "device": sim.serial, "protocol": "modbus", **line},
        subentries_data=_meter_subentries(SERIAL_METERS),  # type: ignore[arg-type]
        discovery_keys={},  # type: ignore[arg-type]
        minor_version=1,
        options={},
        source="user",
        version=1,
    )
    target = f"127.0.0.1:{sim.gateway_port}"
    gateway = ConfigEntry(
        entry_id=GATEWAY_ENTRY_ID,
        domain="grid_meter",
        title=f"TCP gateway {target} (simulated)",
        unique_id=target,
        data={
            "link": "tcp",
            "host": "127.0.0.1",
            "port": sim.gateway_port,
            "framing": "raw",
            "protocol": "modbus",
        },
        subentries_data=_meter_subentries(GATEWAY_METERS),  # type: ignore[arg-type]
        discovery_keys={},  # type: ignore[arg-type]
        minor_version=1,
        options={},
        source="user",
        version=1,
    )
    return [json.loads(json.dumps(e.as_dict(), default=str)) for e in (serial, gateway)]


def _entity(address: str, profile: str, quantity: str) -> str:
    """Return the entity id Home Assistant derives from device and entity names."""
    device = meter_title(address, profile).lower().replace(" ", "_").replace("/", "_")
    return f"sensor.{device}_{quantity}"


def energy_preferences() -> dict[str, Any]:
    """Return Energy dashboard preferences: the main meter is the grid, the others devices."""
    main_address, main_profile = SERIAL_METERS[0]
    return {
        "energy_sources": [
            {
                "type": "grid",
                "flow_from": [
                    {
                        "stat_energy_from": _entity(main_address, main_profile, "energy_import"),
                        "stat_cost": None,
                        "entity_energy_price": None,
                        "number_energy_price": 0.6,
                    }
                ],
                "flow_to": [
                    {
                        "stat_energy_to": _entity(main_address, main_profile, "energy_export"),
                        "stat_compensation": None,
                        "entity_energy_price": None,
                        "number_energy_price": 0.4,
                    }
                ],
                "cost_adjustment_day": 0.0,
            }
        ],
        "device_consumption": [
            {"stat_consumption": _entity(a, p, "energy_import"), "name": None}
            for a, p in GATEWAY_METERS
        ],
    }


def _default_config_yaml() -> str:
    """Return the integrations of default_config except go2rtc, one YAML key a line."""
    manifest = Path(homeassistant.__file__).parent / "components/default_config/manifest.json"
    domains = json.loads(manifest.read_text())["dependencies"]
    return "".join(f"{domain}:\n" for domain in sorted(domains) if domain != "go2rtc")


def _store(path: Path, key: str, data: Mapping[str, Any], version: int, minor: int = 1) -> None:
    path.write_text(
        json.dumps({"version": version, "minor_version": minor, "key": key, "data": data}, indent=2)
    )


def write_config(config_dir: Path, port: int, sim: SimInfo, host: str | None = None) -> None:
    """Create or update the configuration directory.

    configuration.yaml is rewritten while it starts with :data:`GENERATED` (so ``--port``
    takes effect). The bus entries follow the simulator's addresses (the gateway port is
    chosen at start), keeping everything else Home Assistant stored.
    """
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    yaml_file = config_dir / "configuration.yaml"
    if not yaml_file.exists() or yaml_file.read_text().startswith(GENERATED):
        host_line = f"  server_host: {host}\n" if host else ""
        yaml_file.write_text(
            CONFIGURATION_YAML.format(
                generated=GENERATED,
                port=port,
                host_line=host_line,
                default_config=_default_config_yaml(),
            )
        )
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "grid_meter"
    if not link.is_symlink():
        link.symlink_to(REPO / "custom_components" / "grid_meter", target_is_directory=True)

    entries_file = storage / "core.config_entries"
    wanted = config_entries(sim)
    if entries_file.exists():
        stored = json.loads(entries_file.read_text())
        kept = [
            e
            for e in stored["data"]["entries"]
            if e["entry_id"] not in {SERIAL_ENTRY_ID, GATEWAY_ENTRY_ID}
        ]
        ours = {e["entry_id"]: e for e in stored["data"]["entries"] if e not in kept}
        for entry in wanted:
            old = ours.get(entry["entry_id"])
            if old is not None:  # keep what the user changed, follow the simulator
                old["data"], old["unique_id"] = entry["data"], entry["unique_id"]
            kept.append(old or entry)
        stored["data"]["entries"] = kept
        entries_file.write_text(json.dumps(stored, indent=2))
    else:
        _store(
            entries_file,
            "core.config_entries",
            {"entries": wanted},
            STORAGE_VERSION,
            STORAGE_VERSION_MINOR,
        )
    energy_file = storage / "energy"
    if not energy_file.exists():
        _store(energy_file, "energy", energy_preferences(), 1)


# --- 3. Home Assistant ------------------------------------------------------------------


def start_home_assistant(config_dir: Path) -> subprocess.Popen[bytes]:
    """Start Home Assistant on ``config_dir`` (its log goes to ``home-assistant.log`` there)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [str(VENV_BIN / "hass"), "--config", str(config_dir)],
        stdout=subprocess.DEVNULL,
        stderr=(config_dir / "hass.stderr.log").open("wb"),
        env=env,
        start_new_session=True,
    )


def _request(
    url: str,
    data: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    form: bool = False,
    timeout: float = 10.0,
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None
    if data is not None:
        if form:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, body, headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def wait_until_up(base: str, process: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    """Wait until Home Assistant answers HTTP (its onboarding status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Home Assistant exited with status {process.returncode}")
        try:
            _request(f"{base}/api/onboarding", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise TimeoutError(f"Home Assistant did not answer at {base} within {timeout:.0f} s")


def _client_id(base: str) -> str:
    return f"{base}/"


def _exchange(base: str, code: str) -> str:
    tokens = _request(
        f"{base}/auth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": _client_id(base)},
        form=True,
    )
    return str(tokens["access_token"])


def onboard(base: str) -> bool:
    """Finish onboarding (owner ``demo``); return False when it was done already."""
    steps = {s["step"]: s["done"] for s in _request(f"{base}/api/onboarding")}
    if all(steps.values()):
        return False
    client_id = _client_id(base)
    token: str | None = None
    if not steps.get("user"):
        created = _request(
            f"{base}/api/onboarding/users",
            {
                "client_id": client_id,
                "name": NAME,
                "username": USER,
                "password": PASSWORD,
                "language": "en",
            },
        )
        token = _exchange(base, created["auth_code"])
    token = token or login(base)
    if not steps.get("core_config"):
        _request(f"{base}/api/onboarding/core_config", {}, token=token)
    if not steps.get("analytics"):
        _request(f"{base}/api/onboarding/analytics", {}, token=token)
    if not steps.get("integration"):
        _request(
            f"{base}/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": f"{base}/?auth_callback=1"},
            token=token,
        )
    return True


def auth_code(base: str, user: str = USER, password: str = PASSWORD) -> str:
    """Log in through Home Assistant's login flow; return the authorization code."""
    client_id = _client_id(base)
    flow = _request(
        f"{base}/auth/login_flow",
        {
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{base}/?auth_callback=1",
        },
    )
    result = _request(
        f"{base}/auth/login_flow/{flow['flow_id']}",
        {"client_id": client_id, "username": user, "password": password},
    )
    return str(result["result"])


def login(base: str, user: str = USER, password: str = PASSWORD) -> str:
    """Return an access token for ``user``."""
    return _exchange(base, auth_code(base, user, password))


def create_dashboard(base: str, token: str, timeout: float = 120.0) -> str:
    """Build the big-screen dashboard once Home Assistant runs; return its URL path."""
    deadline = time.monotonic() + timeout
    while _request(f"{base}/api/config", token=token).get("state") != "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError("Home Assistant did not finish starting")
        time.sleep(1)
    response = _request(
        f"{base}/api/services/grid_meter/create_dashboard?return_response", {}, token=token
    )
    return str(response["service_response"]["url_path"])


def browser_url(base: str, path: str = "/lovelace/0") -> str:
    """Return a URL that logs a fresh browser in: the frontend redeems the code itself."""
    state = base64.urlsafe_b64encode(
        json.dumps({"hassUrl": base, "clientId": _client_id(base)}).encode()
    ).decode()
    query = urllib.parse.urlencode({"auth_callback": "1", "code": auth_code(base), "state": state})
    return f"{base}{path}?{query}"


@contextmanager
def running_demo(
    root: Path, port: int, gateway_port: int, host: str | None = None
) -> Iterator[str]:
    """Run simulator and Home Assistant, onboarded; yield the base URL; stop both on exit."""
    run_dir = root / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    simulator, sim = start_simulator(run_dir, gateway_port)
    hass: subprocess.Popen[bytes] | None = None
    try:
        config_dir = root / "config"
        write_config(config_dir, port, sim, host)
        hass = start_home_assistant(config_dir)
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, hass)
        onboard(base)
        create_dashboard(base, login(base))
        yield base
    finally:
        if hass is not None:
            stop(hass, timeout=60)
        stop(simulator)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Run the demo until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run the Grid Meter demo.")
    parser.add_argument("--dir", type=Path, default=REPO / "demo", help="demo directory")
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant HTTP port")
    parser.add_argument("--gateway-port", type=int, default=8899, help="simulated gateway port")
    args = parser.parse_args(argv)
    print(f"Starting the simulated meters and Home Assistant in {args.dir} ...", flush=True)
    try:
        with running_demo(args.dir.resolve(), args.port, args.gateway_port):
            url = f"http://localhost:{args.port}"
            print(
                f"\nGrid Meter demo is running at {url}\n"
                f"  user:     {USER}\n  password: {PASSWORD}\n"
                f"Two buses with {len(SERIAL_METERS) + len(GATEWAY_METERS)} simulated meters; "
                f"Settings > Devices & services > Grid Meter.\n"
                f"Big-screen dashboard: {url}/{DASHBOARD}\n"
                f"Logs: {args.dir / 'config' / 'home-assistant.log'}\nCtrl-C stops everything.",
                flush=True,
            )
            signal.signal(signal.SIGTERM, _interrupt)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
