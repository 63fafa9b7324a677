"""The simulated bus: mixed protocols on one pty, wire pacing, faults, counters, transports."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import statistics
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import ChecksumError, ConfigError, MeterTimeoutError
from edge_agent.model import SerialSettings
from edge_agent.protocols import dlt645, dlt645_1997
from edge_agent.protocols.dlt645_catalogue import Version, decode_item
from edge_agent.protocols.modbus import Framing, decode_reply, encode_read
from edge_agent.simulator import (
    BusSimulator,
    Faults,
    PtyServer,
    SimMeter,
    serve_from_cli,
    simulate,
    start_pty,
    start_tcp,
)
from edge_agent.simulator.probe import Probe

SLOW = SerialSettings(baudrate=9600)
FAST = SerialSettings(baudrate=115200)
DLT, OLD = "000000000003", "000000000005"
MIXED = [
    SimMeter("eastron-sdm630", "1"),
    SimMeter("chint-dtsu666", "2"),
    SimMeter("dlt645-2007-3phase", DLT),
    SimMeter("dlt645-1997-1phase", OLD),
]
#: SDM630 input registers 0..N: voltage L1 is register 0 (float32).
SDM_VOLTAGE = encode_read(1, 4, 0, 2, Framing.RTU)


def rtu_size(buffer: bytes) -> int:
    if len(buffer) < 3:
        return 0
    size = 5 if buffer[1] & 0x80 else 5 + buffer[2]
    return size if len(buffer) >= size else 0


def dlt_size(buffer: bytes) -> int:
    """Length of the first DL/T 645 frame by its length byte, checksum unchecked."""
    start = buffer.find(0x68)
    if start < 0 or len(buffer) < start + 10:
        return 0
    size = start + 12 + buffer[start + 9]
    return size if len(buffer) >= size else 0


async def _read_float(probe: Probe, unit: int, function: int, address: int) -> float:
    reply = await probe.exchange(encode_read(unit, function, address, 2, Framing.RTU), rtu_size)
    _used, words = decode_reply(reply, Framing.RTU, unit=unit, function=function)
    assert words is not None
    return float(struct.unpack(">f", struct.pack(">HH", *words))[0])


async def _read_voltage(probe: Probe) -> float:
    """Voltage L1 of the SDM630 at unit 1 (input register 0)."""
    return await _read_float(probe, 1, 4, 0)


async def test_mixed_protocols_share_one_pty() -> None:
    sim = BusSimulator(MIXED, FAST, time_scale=0.0)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        assert await _read_voltage(probe) == pytest.approx(
            sim.meter("1").values_at()["voltage_a"], rel=1e-6
        )
        dtsu = await _read_float(probe, 2, 3, 0x2006)  # DTSU666: 0.1 V per unit
        assert dtsu / 10 == pytest.approx(sim.meter("2").values_at()["voltage_a"], rel=1e-6)
        reply = await probe.exchange(dlt645.read_request(DLT, 0x02010100), dlt_size)
        frame = dlt645.parse_frame(reply)
        assert frame.address == DLT
        voltage = decode_item(0x02010100, frame.data[4:])[0x02010100]
        assert voltage == pytest.approx(sim.meter(DLT).values_at()["voltage_a"], abs=0.051)
        reply = await probe.exchange(dlt645_1997.read_request(OLD, 0xB611), dlt_size)
        old = decode_item(0xB611, dlt645.parse_frame(reply).data[2:], Version.V1997)
        assert old[0xB611] == pytest.approx(sim.meter(OLD).values_at()["voltage_a"], abs=0.51)
        # A DL/T 645 and a Modbus request in one write: both answered in order.
        probe.clear()
        probe.send(dlt645.read_request(DLT, 0x02800002) + SDM_VOLTAGE)
        first = await probe.receive(dlt_size)
        second = await probe.receive(rtu_size)
        assert dlt645.parse_frame(first).address == DLT and second[0] == 1
        await probe.close()
    assert sim.stats.requests == sim.stats.transactions == 6
    # The Modbus request followed the DL/T 645 one without the 3.5-character silence.
    assert sim.stats.gap_violations == 1


async def test_reply_bytes_are_paced_at_the_baud_rate() -> None:
    """A 101-byte reply at 9600 8N1 completes within 2 ms of its ideal wire time.

    The median of nine replies is checked: on a shared machine single replies can be late
    by a scheduling hiccup, which no pacing can prevent.
    """
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    # Home Assistant's test plugin runs the loop in debug mode, which records a stack trace
    # for every callback and so adds milliseconds per wake-up; production loops do not.
    loop.set_debug(False)
    try:
        await _measure_pacing()
    finally:
        loop.set_debug(debug)


async def _measure_pacing() -> None:
    sim = BusSimulator([SimMeter("eastron-sdm630", "1")], SLOW, time_scale=0.0)
    char = SLOW.char_time
    request = encode_read(1, 4, 0, 48, Framing.RTU)
    lateness, earliness = [], []
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        for _ in range(9):
            probe.clear()
            sent = probe.send(request)
            reply = await probe.receive(rtu_size)
            assert len(reply) == 101
            ideal_end = sent + (len(request) + 3.5 + len(reply)) * char
            lateness.append(probe.arrivals[-1][0] - ideal_end)
            # No byte may arrive before its stop bit would have.
            received = 0
            for when, count in probe.arrivals:
                received += count
                due = sent + (len(request) + 3.5 + received) * char
                earliness.append(due - when)
            assert len(probe.arrivals) > 10  # spread over time, not one burst
            await asyncio.sleep(4 * char)
        await probe.close()
    assert statistics.median(lateness) < 0.002, lateness
    assert max(earliness) < 0.0005, "a byte arrived before it was due"
    assert 0 < sim.stats.max_lateness < 0.02  # outliers come from a busy machine
    assert sim.stats.gap_violations == 0


async def test_without_settings_replies_are_immediate() -> None:
    sim = BusSimulator([SimMeter("eastron-sdm630", "1")], None)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        sent = probe.send(encode_read(1, 4, 0, 48, Framing.RTU))
        await probe.receive(rtu_size)
        assert probe.arrivals[-1][0] - sent < 0.05
        await probe.close()


async def test_silent_meter_vanishes_and_comes_back() -> None:
    sim = BusSimulator(MIXED, FAST)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        await _read_voltage(probe)
        sim.meter("1").faults.silent = True
        with pytest.raises(MeterTimeoutError):
            await probe.exchange(SDM_VOLTAGE, rtu_size, wait=0.1)
        sim.meter("1").faults.silent = False
        await _read_voltage(probe)
        await probe.close()
    stats = sim.meter("1").stats
    assert (stats.requests, stats.transactions) == (3, 2)
    assert sim.stats.requests == 3


async def test_full_corruption_gives_checksum_errors() -> None:
    meters = [
        SimMeter("eastron-sdm630", "1", faults=Faults(corrupt_rate=1.0)),
        SimMeter("dlt645-2007-3phase", DLT, faults=Faults(corrupt_rate=1.0)),
    ]
    sim = BusSimulator(meters, FAST)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        for _ in range(5):
            reply = await probe.exchange(SDM_VOLTAGE, rtu_size)
            with pytest.raises(ChecksumError):
                decode_reply(reply, Framing.RTU, unit=1, function=4)
            reply = await probe.exchange(dlt645.read_request(DLT, 0x0201FF00), dlt_size)
            with pytest.raises(ChecksumError):
                dlt645.decode_frame(reply)
        # A refusal (exception reply) is corrupted too.
        reply = await probe.exchange(encode_read(1, 4, 0xFF00, 2, Framing.RTU), rtu_size)
        with pytest.raises(ChecksumError):
            decode_reply(reply, Framing.RTU, unit=1, function=4)
        await probe.close()
    assert sim.stats.corrupted == sim.stats.transactions == 11


async def test_noise_before_replies_and_slow_meters() -> None:
    faults = Faults(noise_rate=1.0, noise_bytes=6)
    sim = BusSimulator([SimMeter("dlt645-2007-3phase", DLT, faults=faults)], FAST)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        reply = await probe.exchange(dlt645.read_request(DLT, 0x02010100), dlt_size)
        assert reply[0] != 0x68  # noise first; the frame decoder skips it
        frame, used = dlt645.decode_frame(reply)
        assert frame is not None and used == len(reply)
        sim.meter(DLT).faults.noise_rate = 0.0
        sim.meter(DLT).faults.delay = 0.15
        sent = probe.send(dlt645.read_request(DLT, 0x02010100))
        await probe.receive(dlt_size)
        assert probe.arrivals[-1][0] - sent >= 0.15
        await probe.close()
    assert sim.stats.noise_bursts == 1


async def test_counters_add_up() -> None:
    sim = BusSimulator(MIXED, FAST)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        sent = received = 0
        for request, size in (
            (SDM_VOLTAGE, rtu_size),
            (encode_read(2, 3, 0x2000, 2, Framing.RTU), rtu_size),
            (dlt645.read_request(DLT, 0x02010100), dlt_size),
            (encode_read(9, 4, 0, 2, Framing.RTU), None),  # nobody has unit 9
        ):
            sent += len(request)
            if size is None:
                probe.send(request)
                await probe.quiet(0.02)
                continue
            received += len(await probe.exchange(request, size))
            await asyncio.sleep(4 * FAST.char_time)
        await probe.close()
    total = sim.stats
    assert (total.requests, total.transactions) == (4, 3)
    assert (total.bytes_in, total.bytes_out) == (sent, received)
    per_meter = [sim.meter(a).stats for a in ("1", "2", DLT)]
    assert sum(s.bytes_out for s in per_meter) == received
    assert sum(s.bytes_in for s in per_meter) == sent - 8
    assert total.gap_violations == 0 and total.discarded_bytes == 0


async def test_back_to_back_modbus_requests_are_gap_violations() -> None:
    sim = BusSimulator(MIXED[:2], FAST)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        probe.send(SDM_VOLTAGE + encode_read(2, 3, 0x2000, 2, Framing.RTU))
        await probe.receive(rtu_size)
        await probe.receive(rtu_size)
        await asyncio.sleep(0.01)
        await _read_voltage(probe)  # properly spaced
        await probe.close()
    assert sim.stats.gap_violations == 1
    assert sim.meter("2").stats.gap_violations == 1


async def test_garbage_is_discarded_and_requests_after_it_are_answered() -> None:
    sim = BusSimulator(MIXED, FAST)
    async with await start_pty(sim) as server:
        probe = await Probe.open_pty(server.path)
        probe.send(b"\x00\x13\x37\xff\x68\x01")  # noise, then a cut frame start
        await asyncio.sleep(0.08)  # the simulator gives up the cut frame
        await _read_voltage(probe)
        await probe.close()
    assert sim.stats.discarded_bytes == 6
    assert sim.stats.transactions == 1


@pytest.mark.usefixtures("socket_enabled")
async def test_tcp_gateway_carries_raw_frames_paced() -> None:
    sim = BusSimulator(MIXED, SLOW, time_scale=0.0)
    async with await start_tcp(sim) as server:
        probe = await Probe.open_tcp("127.0.0.1", server.port)
        request = dlt645.read_request(DLT, 0x0201FF00)
        sent = probe.send(request)
        reply = await probe.receive(dlt_size)
        wire = (len(request) + len(reply)) * SLOW.char_time
        assert probe.arrivals[-1][0] - sent >= wire - 0.001
        values = decode_item(0x0201FF00, dlt645.parse_frame(reply).data[4:])
        assert len(values) == 3
        assert await _read_voltage(probe) == pytest.approx(
            sim.meter("1").values_at()["voltage_a"], rel=1e-6
        )
        await probe.close()


async def test_simulate_context_manager_serves_and_closes() -> None:
    async with simulate(MIXED[:1], FAST) as server:
        assert isinstance(server, PtyServer)
        probe = await Probe.open_pty(server.path)
        assert 150 < await _read_voltage(probe) < 300
        await probe.close()
        assert server.sim.stats.transactions == 1
    with pytest.raises(ConfigError):
        BusSimulator([SimMeter("eastron-sdm630", "1"), SimMeter("chint-dtsu666", "1")])
    with pytest.raises(ConfigError):
        BusSimulator([SimMeter("eastron-sdm630", "300")])
    with pytest.raises(ConfigError):
        BusSimulator([SimMeter("dlt645-2007-3phase", "AAAAAAAAAAAA")])


async def test_serve_from_cli_prints_where_and_serves_until_cancelled() -> None:
    args = argparse.Namespace(
        meter=["eastron-sdm630:1", f"dlt645-2007-3phase:{DLT}"],
        pty=True,
        tcp=None,
        mbap=False,
        baud=115200,
        parity="N",
        stopbits=1,
        time_scale=1.0,
        unbalance=None,
        silent=[DLT],
        corrupt_rate=0.0,
        delay=0.0,
        json=True,
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        task = asyncio.create_task(serve_from_cli(args))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if out.getvalue():
                break
        where = json.loads(out.getvalue())
        probe = await Probe.open_pty(where["path"])
        assert 150 < await _read_voltage(probe) < 300
        with pytest.raises(MeterTimeoutError):  # --silent
            await probe.exchange(dlt645.read_request(DLT, 0x02010100), dlt_size, wait=0.05)
        await probe.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert where["meters"] == ["eastron-sdm630:1", f"dlt645-2007-3phase:{DLT}"]


@functools.cache
def _session_sim() -> BusSimulator:
    return BusSimulator(MIXED, FAST, time_scale=0.0)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=8))
def test_any_bytes_never_break_a_session(chunks: list[bytes]) -> None:
    """Whatever arrives, the session neither raises nor stalls: a request after it is answered."""
    session = _session_sim().session()
    now = 0.0
    for chunk in chunks:
        now += 0.001
        session.feed(chunk, now)
    for _ in range(sum(len(c) for c in chunks) + 1):
        if not session.pending:
            break
        now += session.stale_after
        session.expire(now)
    assert not session.pending
    replies = session.feed(SDM_VOLTAGE, now + 1.0)
    assert len(replies) == 1
    assert replies[0].not_before >= now + 1.0 + (8 + 3.5) * FAST.char_time - 1e-9
    _used, words = decode_reply(replies[0].data, Framing.RTU, unit=1, function=4)
    assert words is not None and len(words) == 2
