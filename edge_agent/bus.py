"""The bus scheduler: one transaction in flight per bus, meters polled in turn.

A :class:`Bus` owns one :class:`~edge_agent.link.Link`. Polls run meter by meter; a meter
that times out or answers garbage is retried a bounded number of times, then skipped with
growing backoff, so it never stalls the others. Commands wait behind the transaction on
the wire, ahead of the next poll transaction.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from .errors import (
    EdgeAgentError,
    FrameError,
    LinkError,
    MeterError,
    MeterTimeoutError,
)
from .link import Link, LinkConfig, open_link
from .meter import MeterDriver
from .model import Exchange, Reading, Value, Wire
from .profiles import load_profile
from .profiles.model import ModbusOptions, Profile
from .protocols import dlt645_exchange
from .protocols.dlt645_catalogue import Version
from .protocols.modbus import Framing, ReadExchange

_FRAMING = {Wire.MODBUS_RTU: Framing.RTU, Wire.MODBUS_TCP: Framing.TCP}


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """One meter on a bus: its address, profile id and the protocol it speaks there."""

    address: str
    #: A profile id, or a loaded :class:`Profile` (callers in an event loop load it in an
    #: executor first: finding a profile by id scans directories).
    profile: str | Profile
    wire: Wire

    @property
    def profile_id(self) -> str:
        """The profile's id."""
        return self.profile if isinstance(self.profile, str) else self.profile.id


@dataclass(slots=True)
class MeterState:
    """What the bus knows about a meter's health."""

    online: bool = False
    failures: int = 0
    last_error: str | None = None
    backoff_until: float = 0.0
    last_reading: Reading | None = None


@dataclass(slots=True)
class BusStats:
    """Counters of one bus since it was opened."""

    transactions: int = 0
    frames: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    errors: int = 0
    refusals: int = 0
    timeouts: int = 0
    busy_time: float = 0.0
    polls: int = 0
    last_cycle_time: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict for JSON and diagnostics."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A meter found by :meth:`Bus.scan`."""

    address: str
    wire: Wire


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class _PriorityLock:
    """A lock that hands the wire to commands (priority 0) before polls (priority 1)."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()

    @asynccontextmanager
    async def hold(self, priority: int) -> AsyncIterator[None]:
        if self._held or self._waiters:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter = _Waiter(priority, next(self._seq), fut)
            heapq.heappush(self._waiters, waiter)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    self._release()  # we were handed the lock while being cancelled
                else:
                    self._waiters.remove(waiter)
                    heapq.heapify(self._waiters)
                raise
        self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self._held = False
        while self._waiters:
            waiter = heapq.heappop(self._waiters)
            if not waiter.future.done():
                self._held = True
                waiter.future.set_result(None)
                return


class Bus:
    """One RS485 bus, TCP gateway or Modbus TCP endpoint and the meters on it."""

    def __init__(
        self,
        link_config: LinkConfig,
        meters: Sequence[MeterConfig] = (),
        *,
        name: str = "bus",
        timeout: float = 0.5,
        retries: int = 1,
        backoff_base: float = 5.0,
        backoff_max: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link_config = link_config
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stats = BusStats()
        self._clock = clock
        self._link: Link | None = None
        self._lock = _PriorityLock()
        self._meters: dict[str, MeterConfig] = {}
        self._drivers: dict[str, MeterDriver] = {}
        self._states: dict[str, MeterState] = {}
        self.set_meters(meters)

    # --- configuration --------------------------------------------------------------

    def set_meters(self, meters: Sequence[MeterConfig]) -> None:
        """Replace the meter list; drivers (and what they learned) of kept meters survive."""
        self._meters = {m.address: m for m in meters}
        self._drivers = {
            m.address: self._drivers.get(m.address) or self._driver(m) for m in meters
        }
        self._states = {a: self._states.get(a, MeterState()) for a in self._meters}

    @staticmethod
    def _driver(meter: MeterConfig) -> MeterDriver:
        profile = meter.profile
        if isinstance(profile, str):
            profile = load_profile(profile)
        return MeterDriver(profile, meter.address, _FRAMING.get(meter.wire))

    @property
    def meters(self) -> list[MeterConfig]:
        """The configured meters in poll order."""
        return list(self._meters.values())

    def meter_states(self) -> dict[str, MeterState]:
        """Health of every meter, by address."""
        return dict(self._states)

    # --- the link -------------------------------------------------------------------

    async def open(self) -> None:
        """Open the link (raises PortNotFoundError, PortBusyError, LinkError)."""
        if self._link is None or not self._link.is_open:
            self._link = await open_link(self.link_config)

    async def close(self) -> None:
        """Close the link; idempotent."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def __aenter__(self) -> Bus:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- transactions ---------------------------------------------------------------

    async def _transact(self, exchange: Exchange, priority: int) -> None:
        """Run one exchange with the wire held; count it."""
        async with self._lock.hold(priority):
            if self._link is None or not self._link.is_open:
                await self.open()
            assert self._link is not None
            started = self._clock()
            try:
                done = await self._link.transact(exchange, self.timeout)
            except MeterTimeoutError:
                self.stats.timeouts += 1
                raise
            except FrameError:
                self.stats.errors += 1
                raise
            except MeterError:
                self.stats.refusals += 1
                raise
            except LinkError:
                await self.close()
                raise
            finally:
                self.stats.transactions += 1
                self.stats.busy_time += self._clock() - started
            self.stats.frames += done.frames
            self.stats.bytes_sent += done.bytes_sent
            self.stats.bytes_received += done.bytes_received

    async def _with_retries(self, build: Callable[[], Exchange], priority: int) -> Exchange:
        """Run a freshly built exchange, retrying timeouts and garbage ``retries`` times."""
        for attempt in range(self.retries + 1):
            exchange = build()
            try:
                await self._transact(exchange, priority)
            except (MeterTimeoutError, FrameError):
                if attempt == self.retries:
                    raise
            else:
                return exchange
        raise AssertionError("unreachable")

    async def execute(self, exchange: Exchange) -> dict[str, Value]:
        """Run a command exchange ahead of queued poll transactions; return its values."""
        await self._transact(exchange, priority=0)
        return exchange.values()

    # --- polling --------------------------------------------------------------------

    async def read_meter(self, address: str) -> Reading:
        """Read every quantity of one meter now (raises on failure)."""
        driver = self._drivers[address]
        meter = self._meters[address]
        values: dict[str, Value] = {}
        pending = driver.reads()
        while pending:
            read = pending.pop(0)
            try:
                done = await self._with_retries(partial(driver.exchange, read), priority=1)
            except MeterError as err:
                # The driver remembers the refusal and replans with narrower reads.
                if driver.refused(read, err):
                    pending = driver.reads(skip=values.keys())
                continue
            values.update(done.values())
        return Reading(
            address=address,
            profile=meter.profile_id,
            timestamp=time.time(),
            values=values,
            missing=driver.unread_keys(),
        )

    async def poll(self) -> dict[str, Reading | EdgeAgentError]:
        """One cycle over every meter; a failing meter yields its error, never raises.

        Raises :class:`LinkError` only when the port itself cannot be used.
        """
        started = self._clock()
        results: dict[str, Reading | EdgeAgentError] = {}
        # A snapshot: set_meters() may replace the meter list while this poll runs.
        for address, state in list(self._states.items()):
            if address not in self._drivers:
                continue
            if state.backoff_until > self._clock():
                results[address] = MeterTimeoutError(state.last_error or "meter offline")
                continue
            try:
                reading = await self.read_meter(address)
            except LinkError:
                raise
            except EdgeAgentError as err:
                self._mark_failed(state, err)
                results[address] = err
            else:
                state.online, state.failures, state.last_error = True, 0, None
                state.backoff_until = 0.0
                state.last_reading = reading
                results[address] = reading
        self.stats.polls += 1
        self.stats.last_cycle_time = self._clock() - started
        return results

    def _mark_failed(self, state: MeterState, err: EdgeAgentError) -> None:
        state.online = False
        state.failures += 1
        state.last_error = str(err)
        if state.failures >= 2:
            delay = min(self.backoff_base * 2 ** (state.failures - 2), self.backoff_max)
            state.backoff_until = self._clock() + delay

    async def probe(self, meter: MeterConfig) -> Reading:
        """Read one meter that need not be configured on the bus (config flows, CLI)."""
        known = meter.address in self._meters
        if not known:
            self._meters[meter.address] = meter
            self._drivers[meter.address] = self._driver(meter)
        try:
            return await self.read_meter(meter.address)
        finally:
            if not known:
                del self._meters[meter.address]
                del self._drivers[meter.address]

    async def run(
        self, interval: float, on_poll: Callable[[dict[str, Reading | EdgeAgentError]], None]
    ) -> None:
        """Poll forever, one cycle every ``interval`` seconds (or back to back if slower)."""
        while True:
            started = self._clock()
            on_poll(await self.poll())
            await asyncio.sleep(max(0.0, interval - (self._clock() - started)))

    # --- discovery ------------------------------------------------------------------

    async def scan(
        self, wire: Wire, addresses: Iterable[str] | None = None, *, timeout: float = 0.2
    ) -> list[ScanResult]:
        """Find meters on the bus.

        Modbus: unit ids 1..247 (or those given). DL/T 645: wildcard read-address, then
        probing of the addresses given.
        """
        saved, self.timeout = self.timeout, timeout
        try:
            if wire in (Wire.DLT645_2007, Wire.DLT645_1997):
                return await self._scan_dlt645(wire, addresses)
            return await self._scan_modbus(wire, addresses or (str(u) for u in range(1, 248)))
        finally:
            self.timeout = saved

    async def _scan_modbus(self, wire: Wire, addresses: Iterable[str]) -> list[ScanResult]:
        found = []
        for address in addresses:
            if await self._answers(_modbus_probe(int(address), _FRAMING[wire])):
                found.append(ScanResult(address, wire))
        return found

    async def _scan_dlt645(self, wire: Wire, addresses: Iterable[str] | None) -> list[ScanResult]:
        version = _VERSIONS[wire]
        found: dict[str, ScanResult] = {}
        if wire is Wire.DLT645_2007:
            probe = dlt645_exchange.ReadAddressExchange()
            if await self._answers(probe) and probe.address:
                found[probe.address] = ScanResult(probe.address, wire)
        for address in addresses or ():
            if address not in found and await self._answers(_dlt645_probe(address, version)):
                found[address] = ScanResult(address, wire)
        return list(found.values())

    async def _answers(self, exchange: Exchange) -> bool:
        """Tell whether anything meaningful comes back, a refusal included."""
        try:
            await self._transact(exchange, priority=1)
        except MeterError:
            return True
        except (MeterTimeoutError, FrameError):
            return False
        return True


_VERSIONS = {Wire.DLT645_2007: Version.V2007, Wire.DLT645_1997: Version.V1997}


def _modbus_probe(unit: int, framing: Framing) -> Exchange:
    """Read holding register 0: any answer, an exception included, proves a unit is there."""
    return ReadExchange(unit, 3, 0, 1, (), ModbusOptions(), framing)


def _dlt645_probe(address: str, version: Version) -> Exchange:
    di = 0x00010000 if version is Version.V2007 else 0x9010
    return dlt645_exchange.ReadExchange(address, di, {di: "energy_import_total"}, version=version)
