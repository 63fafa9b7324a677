"""The per-meter driver: a profile plus an address becomes the exchanges of one poll.

The driver remembers what this particular meter refused (a merged Modbus block with an
address it lacks, a DL/T 645 block DI it does not answer) and replans around it, so the
cost of learning is paid once per meter, not once per poll.
"""

from __future__ import annotations

from collections.abc import Collection

from .errors import AbnormalReplyError, ConfigError, MeterError, ModbusExceptionError
from .model import Exchange
from .planning import DltRead, ModbusBlock, plan_dlt645, plan_modbus
from .profiles.model import ModbusOptions, Profile, ProfileProtocol
from .protocols import dlt645_exchange, modbus
from .protocols.dlt645 import normalize_address
from .protocols.dlt645_catalogue import Version
from .protocols.modbus import Framing

#: Modbus exception codes that mean "this read will never work on this meter":
#: illegal function, illegal data address, illegal data value (a count it will not serve).
REFUSAL_CODES = frozenset({1, 2, 3})

#: One planned read: a Modbus block or a DL/T 645 data identifier.
type Read = ModbusBlock | DltRead

_VERSIONS = {
    ProfileProtocol.DLT645_2007: Version.V2007,
    ProfileProtocol.DLT645_1997: Version.V1997,
}


class MeterDriver:
    """Plans and builds the transactions that read one meter."""

    def __init__(self, profile: Profile, address: str, framing: Framing | None = None) -> None:
        """Check the address fits the profile's protocol (ConfigError otherwise)."""
        self.profile = profile
        self._modbus = profile.protocol is ProfileProtocol.MODBUS
        self.framing: Framing | None = None
        if self._modbus:
            self.framing = framing or Framing.RTU
            self.unit = _unit_id(address, self.framing)
            self.address = str(self.unit)
        else:
            if framing is not None:
                raise ConfigError(f"profile {profile.id} speaks DL/T 645, not Modbus {framing}")
            self.address = normalize_address(address)
        self._refused_blocks: set[ModbusBlock] = set()
        self._refused_dis: set[int] = set()
        self._tid = 0
        self._plan: list[ModbusBlock] | list[DltRead] = []
        self._replan()

    def __repr__(self) -> str:
        """Name the meter for logs."""
        return f"MeterDriver({self.profile.id!r}, {self.address!r})"

    # --- the plan ---------------------------------------------------------------------

    @property
    def plan(self) -> list[ModbusBlock] | list[DltRead]:
        """The reads of one full poll, as planned now."""
        return self._plan.copy()

    def _replan(self) -> None:
        if self._modbus:
            self._plan = plan_modbus(self.profile, frozenset(self._refused_blocks))
        else:
            self._plan = plan_dlt645(self.profile, frozenset(self._refused_dis))

    def reads(self, skip: Collection[str] = ()) -> list[Read]:
        """Return the reads of one poll in plan order, without those whose keys are in ``skip``."""
        return [r for r in self._plan if not set(_keys(r)) <= set(skip)]

    def exchange(self, read: Read) -> Exchange:
        """Build a fresh exchange that performs one planned read (call again to retry it)."""
        if isinstance(read, ModbusBlock):
            return self._modbus_exchange(read)
        return self._dlt645_exchange(read)

    def exchanges(self, skip: Collection[str] = ()) -> list[Exchange]:
        """Build fresh exchanges for one poll, in plan order (see :meth:`reads`)."""
        return [self.exchange(r) for r in self.reads(skip)]

    def _modbus_exchange(self, block: ModbusBlock) -> modbus.ReadExchange:
        if self.framing is Framing.TCP:
            self._tid = (self._tid + 1) & 0xFFFF
        return modbus.ReadExchange(
            self.unit,
            block.function,
            block.start,
            block.count,
            block.specs,
            self.profile.modbus or ModbusOptions(),
            self.framing or Framing.RTU,
            self._tid,
        )

    def _dlt645_exchange(self, read: DltRead) -> dlt645_exchange.ReadExchange:
        version = _VERSIONS[self.profile.protocol]
        return dlt645_exchange.ReadExchange(self.address, read.di, read.keys, version=version)

    # --- refusals ---------------------------------------------------------------------

    def refused(self, exchange: Exchange | Read, error: MeterError) -> bool:
        """Remember a refusal and replan; True when replacement reads should run now.

        A refused block is replaced by smaller reads (True). A refused single value is
        dropped from the plan and its key reported by :meth:`unread_keys` (False). Errors
        that are not refusals (a busy meter, a device failure) change nothing (False).
        """
        if self._modbus:
            return self._refused_modbus(exchange, error)
        return self._refused_dlt645(exchange, error)

    def _refused_modbus(self, exchange: Exchange | Read, error: MeterError) -> bool:
        if not isinstance(error, ModbusExceptionError) or error.code not in REFUSAL_CODES:
            return False
        where = (
            getattr(exchange, "function", None),
            getattr(exchange, "start", None),
            getattr(exchange, "count", None),
        )
        block = next(
            (b for b in self._plan if isinstance(b, ModbusBlock) and where == _where(b)), None
        )
        if block is None:
            return False
        self._refused_blocks.add(block)
        self._replan()
        return len(block.specs) > 1

    def _refused_dlt645(self, exchange: Exchange | Read, error: MeterError) -> bool:
        if not isinstance(error, AbnormalReplyError):
            return False
        di = getattr(exchange, "di", None)
        read = next((r for r in self._plan if isinstance(r, DltRead) and r.di == di), None)
        if read is None:
            return False
        self._refused_dis.add(read.di)
        self._replan()
        return read.is_block

    def unread_keys(self) -> frozenset[str]:
        """Keys of the profile that the current plan cannot read (refused single values)."""
        planned = {key for read in self._plan for key in _keys(read)}
        return frozenset(self.profile.keys) - planned

    def reset(self) -> None:
        """Forget every refusal (after the meter was replaced or reconfigured)."""
        self._refused_blocks.clear()
        self._refused_dis.clear()
        self._replan()


def _where(block: ModbusBlock) -> tuple[int, int, int]:
    return block.function, block.start, block.count


def _keys(read: ModbusBlock | DltRead) -> tuple[str, ...]:
    return read.keys if isinstance(read, ModbusBlock) else tuple(read.keys.values())


def _unit_id(address: str, framing: Framing) -> int:
    """Parse a unit id: 1..247 on RTU (0 is broadcast, never answered), 0..255 on TCP."""
    low, high = (1, 247) if framing is Framing.RTU else (0, 255)
    text = str(address).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"invalid Modbus unit id {address!r}: need a number {low}..{high}")
    return int(text)
