"""Smoke tests of the benchmark's pure parts (no timing assertions)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench.hass_process import culprit
from bench.p3_campus import campus_rounds
from bench.quantity_sets import BASIC, MBMD_37, subset_profile, write_profile
from bench.recording import RecordingSimulator, Transaction, request_key
from bench.report import Figure
from bench.rounds import poll_cycle, round_cycle, split_polls
from bench.timeline import breakdown
from bench.wire import Traffic, efficiency, wire_time_limit
from edge_agent.bus import Bus, MeterConfig
from edge_agent.link import LinkConfig
from edge_agent.model import SerialSettings, Wire
from edge_agent.profiles import load_profile
from edge_agent.protocols.modbus import Framing, encode_read
from edge_agent.simulator import SimMeter, start_pty

BENCH_MODULES = (
    "bench.main",
    "bench.p1_efficiency",
    "bench.p2_peer",
    "bench.p3_campus",
    "bench.hass_config",
    "bench.hass_process",
    "bench.simhost",
    "bench.quantity_sets",
)
N81 = SerialSettings(9600, 8, "N", 1)


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_bench_modules_import(name: str) -> None:
    importlib.import_module(name)


class TestWireTimeLimit:
    def test_block_read_of_20_floats_takes_104_ms(self) -> None:
        # The example: 8-byte request, 5 + 80-byte reply, 3.5 chars before each frame.
        limit = wire_time_limit(Traffic(8, 85, 2), N81, Wire.MODBUS_RTU)
        assert limit == pytest.approx(100 * 10 / 9600)
        assert round(limit * 1e3) == 104

    def test_20_single_reads_take_500_ms(self) -> None:
        limit = wire_time_limit(Traffic(20 * 8, 20 * 9, 40), N81, Wire.MODBUS_RTU)
        assert limit == pytest.approx(0.5)

    def test_dlt645_needs_no_silence_and_8e1_has_11_bits(self) -> None:
        limit = wire_time_limit(
            Traffic(20, 30, 2), SerialSettings(2400, 8, "E", 1), Wire.DLT645_2007
        )
        assert limit == pytest.approx(50 * 11 / 2400)

    def test_efficiency_is_limit_over_measured(self) -> None:
        assert efficiency(0.9, 1.0) == pytest.approx(0.9)
        with pytest.raises(ValueError, match="positive"):
            efficiency(1.0, 0.0)


def _t(meter: str, key: str, start: float, end: float) -> Transaction:
    return Transaction(meter, key, start, start + 0.008, start + 0.012, 9, end)


class TestRounds:
    def test_polls_split_at_idle_gaps(self) -> None:
        log = [_t("1", "a", 0.0, 0.1), _t("2", "a", 0.1, 0.2), _t("1", "a", 5.0, 5.1)]
        assert [len(p) for p in split_polls(log, idle=1.0)] == [2, 1]

    def test_poll_cycle_is_first_request_to_last_reply(self) -> None:
        log = [_t("1", "a", 0.0, 0.1), _t("2", "a", 0.1, 0.3), _t("1", "a", 10.0, 10.1)]
        cycle = poll_cycle(log, idle=1.0, expected=2)
        assert cycle is not None
        assert cycle.seconds == pytest.approx(0.3)
        assert (cycle.transactions, cycle.meters) == (2, 2)

    def test_round_cycle_counts_each_sensor_once(self) -> None:
        log = [_t(str(m), "k", 0.05 * i, 0.05 * i + 0.02) for i, m in enumerate([1, 2, 3, 1, 2])]
        cycle = round_cycle(log, sensors=3, after=0.0)
        assert cycle is not None
        assert cycle.seconds == pytest.approx(0.15)
        assert cycle.coverage == 1.0
        assert round_cycle(log, sensors=5, after=0.0) is None


def test_breakdown_splits_lost_time() -> None:
    char = N81.char_time
    first = Transaction("1", "k", 0.0, 8 * char, 11.5 * char, 9, 20.5 * char + 0.001)
    # The next request starts 2 ms after the required 3.5 characters of silence.
    start = first.reply_end + 3.5 * char + 0.002
    ready = start + 11.5 * char
    second = Transaction("1", "k", start, start + 8 * char, ready, 9, ready + 9 * char)
    lost = breakdown([first, second], char, 3.5)
    assert lost.poller_total == pytest.approx(0.002)
    assert lost.simulator_total == pytest.approx(0.001)  # only the first reply was late


def test_request_key_names_modbus_reads() -> None:
    assert request_key(encode_read(1, 4, 0x34, 2, Framing.RTU)) == "4:52:2"
    assert request_key(b"\x00") == "?"


def test_figure_goal_verdicts() -> None:
    assert Figure("P1-x", 0.95, ">= 0.90").met() is True
    assert Figure("P3-y", 30.0, "<= 20").met() is False
    assert Figure("P2-z", "not measured", ">= 5.0").met() is None
    assert Figure("P1-x", 0.95, ">= 0.90").lines()[0] == "P1-x: 0.95  (goal >= 0.90: met)"


def test_quantity_sets_make_loadable_profiles(tmp_path: Path) -> None:
    assert (len(MBMD_37), len(set(MBMD_37)), len(BASIC)) == (37, 37, 11)
    profile = subset_profile("mbmd37")
    write_profile(tmp_path, profile)
    loaded = load_profile(profile.id, [tmp_path])
    assert set(loaded.keys) == set(MBMD_37)


async def test_recording_simulator_logs_every_transaction() -> None:
    fast = SerialSettings(115200, 8, "N", 1)
    sim = RecordingSimulator([SimMeter("eastron-sdm630", "1")], fast)
    server = await start_pty(sim)
    bus = Bus(
        LinkConfig(kind="serial", device=server.path, serial=fast),
        [MeterConfig("1", "eastron-sdm630", Wire.MODBUS_RTU)],
        timeout=1.0,
    )
    try:
        await bus.open()
        await bus.poll()
    finally:
        await bus.close()
        await server.close()
    assert len(sim.log) == bus.stats.transactions > 1
    assert {t.meter for t in sim.log} == {"1"}
    assert all(t.key.startswith("4:") for t in sim.log)
    assert all(t.request_start < t.request_end <= t.reply_end for t in sim.log)
    registers = sum(int(t.key.split(":")[2]) for t in sim.log)
    assert registers >= 2 * len(load_profile("eastron-sdm630").registers)


def test_campus_rounds_pair_the_kth_polls_of_every_bus() -> None:
    bus_a = [_t("1", "k", 0.0, 1.0), _t("1", "k", 60.0, 61.0)]
    bus_b = [_t("2", "k", 2.0, 4.0), _t("2", "k", 70.0, 72.0), _t("2", "k", 140.0, 140.5)]
    spans, bus_spans, incomplete = campus_rounds([bus_a, bus_b], expected=1)
    assert spans == [pytest.approx(4.0), pytest.approx(12.0)]
    assert len(bus_spans) == 5
    assert incomplete == 0
    assert campus_rounds([bus_a, bus_b], expected=1, before=50.0)[0] == [pytest.approx(4.0)]


def test_culprit_names_the_blocking_frame() -> None:
    epoll = ['  File "/usr/lib/python3.13/selectors.py", line 452, in select\n    x\n']
    ours = [
        '  File "/x/asyncio/events.py", line 89, in _run\n    x\n',
        '  File "/c/custom_components/grid_meter/sensor.py", line 238, in native_value\n    x\n',
        '  File "/x/asyncio/base_events.py", line 1, in helper\n    x\n',
    ]
    assert culprit([epoll], [["Recorder", 0.1]]) == "epoll wait (CPU meanwhile: Recorder 0.10 s)"
    assert culprit([ours, ours, epoll], []) == "grid_meter/sensor.py:238 native_value"


def test_a_reply_lost_to_a_collision_does_not_shift_the_log() -> None:
    sim = RecordingSimulator([SimMeter("eastron-sdm630", "1")], N81)
    session = sim.session()
    char = session.char_time or 0.0
    request = encode_read(1, 4, 0, 2, Framing.RTU)
    # The first request's reply is never sent (it collided); the retry's is.
    first = session.feed(request, now=10.0)
    retry = session.feed(request, now=11.0)
    assert first and retry
    size = len(retry[0].data)
    session.reply_sent(retry[0].not_before + size * char)
    later = session.feed(request, now=12.0)
    session.reply_sent(later[0].not_before + size * char)
    assert [round(t.request_start) for t in sim.log] == [11, 12]
    assert all(t.reply_end - t.reply_ready == pytest.approx(size * char) for t in sim.log)
