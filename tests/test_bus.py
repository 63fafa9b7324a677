"""The bus scheduler against simulated meters over a real pty and real TCP sockets."""

from __future__ import annotations

import asyncio
import os
import time
import tty
from collections.abc import AsyncIterator, Sequence

import pytest

from edge_agent.bus import Bus, MeterConfig
from edge_agent.errors import (
    ChecksumError,
    FrameError,
    LinkError,
    MeterTimeoutError,
    PortBusyError,
    PortNotFoundError,
)
from edge_agent.link import LinkConfig
from edge_agent.model import Reading, SerialSettings, Wire
from edge_agent.protocols.dlt645_exchange import ReadExchange
from edge_agent.simulator import BusSimulator, SimMeter, start_pty, start_tcp

FAST = SerialSettings(baudrate=115200)
DLT_ADDRESS = "000000000003"
MIXED = [
    MeterConfig("1", "eastron-sdm630", Wire.MODBUS_RTU),
    MeterConfig("2", "chint-dtsu666", Wire.MODBUS_RTU),
    MeterConfig(DLT_ADDRESS, "dlt645-2007-3phase", Wire.DLT645_2007),
]


def _sim(meters: Sequence[MeterConfig], settings: SerialSettings | None = FAST) -> BusSimulator:
    return BusSimulator([SimMeter(profile=m.profile, address=m.address) for m in meters], settings)


@pytest.fixture
async def pty_bus() -> AsyncIterator[tuple[BusSimulator, Bus]]:
    sim = _sim(MIXED)
    server = await start_pty(sim)
    bus = Bus(LinkConfig(kind="serial", device=server.path, serial=FAST), MIXED, timeout=0.3)
    try:
        await bus.open()
        yield sim, bus
    finally:
        await bus.close()
        await server.close()


def _close(reading: Reading, sim: BusSimulator, key: str, tolerance: float) -> None:
    served = sim.meter(reading.address).values_at(reading.timestamp)[key]
    assert isinstance(served, float | int)
    assert reading.values[key] == pytest.approx(served, rel=tolerance, abs=tolerance)


async def test_mixed_bus_reads_every_meter(pty_bus: tuple[BusSimulator, Bus]) -> None:
    sim, bus = pty_bus
    results = await bus.poll()
    assert set(results) == {"1", "2", DLT_ADDRESS}
    for address, result in results.items():
        assert isinstance(result, Reading), f"{address}: {result}"
        assert {"voltage_a", "current_a", "energy_import_total"} <= result.values.keys()
        _close(result, sim, "voltage_a", 0.02)
        assert 180 < float(result.values["voltage_a"]) < 260
    assert bus.stats.transactions >= 3
    assert bus.stats.errors == bus.stats.timeouts == 0
    assert bus.stats.bytes_received > bus.stats.bytes_sent > 0


async def test_silent_meter_does_not_stall_the_others(pty_bus: tuple[BusSimulator, Bus]) -> None:
    sim, bus = pty_bus
    await bus.poll()
    baseline = bus.stats.last_cycle_time
    sim.meter("2").faults.silent = True
    cycles = []
    for _ in range(4):
        results = await bus.poll()
        cycles.append(bus.stats.last_cycle_time)
        assert isinstance(results["1"], Reading)
        assert isinstance(results[DLT_ADDRESS], Reading)
        assert isinstance(results["2"], MeterTimeoutError)
    # The first two failures cost timeouts; then backoff skips the meter and the others keep pace.
    assert cycles[-1] < baseline + 0.05
    assert not bus.meter_states()["2"].online
    sim.meter("2").faults.silent = False
    bus.meter_states()["2"].backoff_until = 0.0  # recovery without waiting out the backoff
    state_before = bus.meter_states()["2"]
    results = await bus.poll()
    assert isinstance(results["2"], Reading)
    assert state_before.online and state_before.failures == 0


async def test_corrupted_frames_are_typed_and_retried(pty_bus: tuple[BusSimulator, Bus]) -> None:
    sim, bus = pty_bus
    sim.meter("1").faults.corrupt_rate = 0.1
    bus.retries = 2
    good = 0
    for _ in range(15):
        result = (await bus.poll())["1"]
        if isinstance(result, Reading):
            good += 1
        else:
            assert isinstance(result, FrameError)
    assert good >= 12
    assert bus.stats.errors > 0


async def test_every_reply_corrupted_gives_checksum_error(
    pty_bus: tuple[BusSimulator, Bus],
) -> None:
    sim, bus = pty_bus
    sim.meter(DLT_ADDRESS).faults.corrupt_rate = 1.0
    results = await bus.poll()
    assert isinstance(results[DLT_ADDRESS], FrameError)
    assert isinstance(results["1"], Reading)


async def test_slow_meter_within_timeout_is_read(pty_bus: tuple[BusSimulator, Bus]) -> None:
    sim, bus = pty_bus
    sim.meter("1").faults.delay = 0.1
    results = await bus.poll()
    assert isinstance(results["1"], Reading)
    sim.meter("1").faults.delay = 0.6
    bus.retries = 0
    for _ in range(2):
        results = await bus.poll()
        assert isinstance(results["1"], MeterTimeoutError)
    # A reply that comes after the timeout collides with the next meter's exchange, as on a
    # real line, and may get that meter backed off too; the slow meter is backed off longer
    # and longer, so the others are read again most cycles.
    assert bus.meter_states()["1"].backoff_until > 0
    bus.backoff_base = 0.3
    good = 0
    for _ in range(12):
        await asyncio.sleep(0.2)
        results = await bus.poll()
        good += all(isinstance(results[a], Reading) for a in ("2", DLT_ADDRESS))
    assert good >= 6, results


async def test_command_goes_ahead_of_queued_poll_transactions(
    pty_bus: tuple[BusSimulator, Bus],
) -> None:
    _, bus = pty_bus
    order: list[str] = []

    async def poll() -> None:
        await bus.poll()
        order.append("poll")

    async def command() -> None:
        await asyncio.sleep(0.005)
        frequency = ReadExchange(DLT_ADDRESS, 0x02800002, {0x02800002: "frequency"})
        values = await bus.execute(frequency)
        assert 49 < float(values["frequency"]) < 51
        order.append("command")

    await asyncio.gather(poll(), command())
    assert order == ["command", "poll"]


async def test_scan_finds_every_simulated_meter(pty_bus: tuple[BusSimulator, Bus]) -> None:
    _, bus = pty_bus
    found = await bus.scan(Wire.MODBUS_RTU, [str(u) for u in range(1, 6)], timeout=0.05)
    assert [f.address for f in found] == ["1", "2"]
    found = await bus.scan(Wire.DLT645_2007, [DLT_ADDRESS, "000000000009"], timeout=0.05)
    assert [f.address for f in found] == [DLT_ADDRESS]


async def test_buses_poll_concurrently() -> None:
    slow = SerialSettings(baudrate=9600)
    meters = [MeterConfig("1", "eastron-sdm630", Wire.MODBUS_RTU)]
    sims = [_sim(meters, slow) for _ in range(3)]
    servers = [await start_pty(s) for s in sims]
    buses = [
        Bus(LinkConfig(kind="serial", device=s.path, serial=slow), meters) for s in servers
    ]
    try:
        for bus in buses:
            await bus.open()
        await buses[0].poll()
        single = buses[0].stats.last_cycle_time
        started = time.monotonic()
        await asyncio.gather(*(b.poll() for b in buses))
        together = time.monotonic() - started
        assert together < 1.6 * single
    finally:
        for bus in buses:
            await bus.close()
        for server in servers:
            await server.close()


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("mbap", [False, True])
async def test_tcp_gateway_and_modbus_tcp(mbap: bool) -> None:
    wire = Wire.MODBUS_TCP if mbap else Wire.MODBUS_RTU
    meters = [MeterConfig("7", "chint-dtsu666", wire)]
    if not mbap:
        meters.append(MeterConfig(DLT_ADDRESS, "dlt645-2007-3phase", Wire.DLT645_2007))
    sim = _sim(meters, None)
    server = await start_tcp(sim, mbap=mbap)
    try:
        async with Bus(LinkConfig(kind="tcp", host="127.0.0.1", port=server.port), meters) as bus:
            results = await bus.poll()
        assert all(isinstance(r, Reading) for r in results.values()), results
    finally:
        await server.close()


async def test_missing_port_is_port_not_found() -> None:
    bus = Bus(LinkConfig(kind="serial", device="/dev/does-not-exist-gm"))
    with pytest.raises(PortNotFoundError, match="does not exist"):
        await bus.open()


async def test_busy_port_is_port_busy() -> None:
    sim = _sim(MIXED[:1])
    server = await start_pty(sim)
    config = LinkConfig(kind="serial", device=server.path, serial=FAST)
    try:
        async with Bus(config):
            with pytest.raises(PortBusyError, match="in use"):
                await Bus(config).open()
        # Closed properly: the port can be taken again.
        async with Bus(config):
            pass
    finally:
        await server.close()


async def test_garbage_line_never_raises_from_poll() -> None:
    """A line that only ever carries noise gives typed errors per meter."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    loop = asyncio.get_running_loop()
    loop.add_reader(master, lambda: os.write(master, os.read(master, 256)[:3] + b"\x68\x00\x01"))
    meters = MIXED
    try:
        async with Bus(
            LinkConfig(kind="serial", device=os.ttyname(slave), serial=FAST), meters, timeout=0.1
        ) as bus:
            results = await bus.poll()
        for result in results.values():
            assert isinstance(result, FrameError | MeterTimeoutError | ChecksumError)
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


async def test_meter_list_changed_during_a_poll(pty_bus: tuple[BusSimulator, Bus]) -> None:
    _, bus = pty_bus
    poll = asyncio.create_task(bus.poll())
    await asyncio.sleep(0.005)
    bus.set_meters([MIXED[0]])
    results = await poll
    assert isinstance(results["1"], Reading)
    assert "2" not in results or isinstance(results["2"], Reading)
    assert set(await bus.poll()) == {"1"}


async def test_line_settings_a_device_refuses_are_a_link_error() -> None:
    # A pty cannot take parity: the OS refuses the termios settings.
    master, slave = os.openpty()
    try:
        bad = SerialSettings(parity="E")
        with pytest.raises(LinkError, match="cannot configure"):
            await Bus(LinkConfig(kind="serial", device=os.ttyname(slave), serial=bad)).open()
    finally:
        os.close(master)
        os.close(slave)
