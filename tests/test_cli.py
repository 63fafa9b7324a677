"""The edge-agent command against simulated meters on a real pty, as a field engineer runs it."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator

import pytest

from edge_agent.model import SerialSettings
from edge_agent.profiles import all_profiles
from edge_agent.profiles.model import ProfileProtocol
from edge_agent.protocols import dlt645
from edge_agent.simulator import BusSimulator, PtyServer, SimMeter, start_pty

SETTINGS = SerialSettings(baudrate=115200)
WIRES = {
    ProfileProtocol.MODBUS: "modbus-rtu",
    ProfileProtocol.DLT645_2007: "dlt645-2007",
    ProfileProtocol.DLT645_1997: "dlt645-1997",
}
PROFILES = sorted(all_profiles().values(), key=lambda p: p.id)
ADDRESSES = {
    p.id: str(i + 1) if p.protocol is ProfileProtocol.MODBUS else f"{i + 1:012d}"
    for i, p in enumerate(PROFILES)
}


async def edge_agent(*args: str) -> tuple[int, str, str]:
    """Run the console script's entry point in a child process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from edge_agent.cli import main; sys.exit(main())",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def served() -> AsyncIterator[tuple[BusSimulator, PtyServer]]:
    sim = BusSimulator([SimMeter(p.id, ADDRESSES[p.id]) for p in PROFILES], SETTINGS)
    server = await start_pty(sim)
    yield sim, server
    await server.close()


def _link(path: str) -> list[str]:
    return ["--serial", path, "--baud", "115200", "--parity", "N"]


async def test_read_every_profile_returns_what_the_simulator_serves(
    served: tuple[BusSimulator, PtyServer],
) -> None:
    sim, server = served
    for profile in PROFILES:
        code, out, err = await edge_agent(
            "read", "--protocol", WIRES[profile.protocol], *_link(server.path),
            "--address", ADDRESSES[profile.id], "--profile", profile.id, "--json",
        )  # fmt: skip
        assert code == 0, f"{profile.id}: {err}"
        data = json.loads(out)
        assert data["profile"] == profile.id
        assert set(data["values"]) == set(profile.keys) - set(data["missing"])
        assert data["missing"] == []
        served_values = sim.meter(ADDRESSES[profile.id]).values_at(data["timestamp"])
        for key in ("voltage_a", "energy_import_total"):
            if key in data["values"]:
                assert data["values"][key] == pytest.approx(served_values[key], rel=0.01), key
        assert data["units"]["voltage_a"] == "V"
        assert "voltage_deviation_a" in data["indicators"]
        if profile.phases == 3:
            assert "current_unbalance" in data["indicators"]


async def test_scan_finds_every_simulated_meter(served: tuple[BusSimulator, PtyServer]) -> None:
    _, server = served
    modbus_ids = [ADDRESSES[p.id] for p in PROFILES if p.protocol is ProfileProtocol.MODBUS]
    code, out, err = await edge_agent(
        "scan", "--protocol", "modbus-rtu", *_link(server.path), "--addresses", "1-12", "--json"
    )
    assert code == 0, err
    assert sorted(m["address"] for m in json.loads(out)["meters"]) == sorted(modbus_ids)
    dlt = [ADDRESSES[p.id] for p in PROFILES if p.protocol is ProfileProtocol.DLT645_2007]
    code, out, err = await edge_agent(
        "scan", "--protocol", "dlt645-2007", *_link(server.path),
        "--addresses", ",".join([*dlt, "000000000099"]), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(m["address"] for m in json.loads(out)["meters"]) == sorted(dlt)


async def test_decode_explains_a_voltage_reply() -> None:
    frame = dlt645.reply_frame(
        dlt645.Frame("000000000001", 0x11, bytes.fromhex("00010102")),
        bytes.fromhex("00010102") + bytes.fromhex("2123"),
    )
    code, out, _ = await edge_agent("decode", "--protocol", "dlt645-2007", "--json", frame.hex())
    assert code == 0
    data = json.loads(out)
    assert data["di"] == "02010100"
    assert data["values"] == {"02010100": "232.1 V"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decode", "--protocol", "dlt645-2007", "68 01 00"], "incomplete"),
        (["decode", "--protocol", "dlt645-2007", "zz"], "hexadecimal"),
        (["decode", "--protocol", "modbus-rtu", "01 04 00 00 00 02 71 CC"], "CRC"),
        (["decode", "--protocol", "dlt645-2007", "00 11 22"], "no DL/T 645 frame"),
        (
            ["read", "--protocol", "modbus-rtu", "--serial", "/dev/nope-gm", "--address", "1",
             "--profile", "eastron-sdm630"],
            "does not exist",
        ),
        (
            ["read", "--protocol", "modbus-rtu", "--tcp", "nohostport", "--address", "1",
             "--profile", "eastron-sdm630"],
            "HOST:PORT",
        ),
        (
            ["read", "--protocol", "modbus-rtu", "--serial", "/dev/null", "--address", "1",
             "--profile", "no-such-meter"],
            "no-such-meter",
        ),
    ],
)  # fmt: skip
async def test_bad_input_is_one_line_on_stderr(args: list[str], message: str) -> None:
    code, out, err = await edge_agent(*args)
    assert code != 0
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


async def test_silent_meter_read_fails_cleanly(served: tuple[BusSimulator, PtyServer]) -> None:
    sim, server = served
    sim.meter("1").faults.silent = True
    code, _, err = await edge_agent(
        "read", "--protocol", "modbus-rtu", *_link(server.path), "--address", "1",
        "--profile", PROFILES[0].id, "--timeout", "0.2",
    )  # fmt: skip
    assert code == 1
    assert "MeterTimeoutError" in err
