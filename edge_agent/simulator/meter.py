"""One simulated meter: its configuration and its state while the bus runs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError
from ..model import Value
from ..profiles import Profile, load_profile
from ..profiles.model import ProfileProtocol
from ..protocols.dlt645 import normalize_address
from . import noise
from .clock import SimClock
from .faults import Faults
from .stats import SimStats
from .values import MILD_UNBALANCE, ModelOptions, ValueModel

MODBUS_UNITS = range(1, 248)


@dataclass(frozen=True, slots=True)
class SimMeter:
    """How to simulate one meter.

    ``address`` is a Modbus unit id ("1".."247") or a 12-digit DL/T 645 address.
    ``seed`` is combined with the address, so meters with the default seed still differ.
    """

    profile: str | Profile
    address: str
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    #: Voltage unbalance V2/V1 (:data:`~.values.STRONG_UNBALANCE` for a bad feeder).
    unbalance: float = MILD_UNBALANCE
    voltage_noise: float = 0.003
    #: Probability per phase and minute of a voltage sag or swell.
    excursion_probability: float = 0.002
    #: Total active power at the evening peak in kW; None picks 4..12 kW from the seed.
    peak_kw: float | None = None
    nominal_frequency: float = 50.0
    #: Hours east of UTC of the meter's clock and load curve; None = this machine's zone.
    utc_offset: float | None = None
    #: Modbus: refuse (exception 2) a read whose range includes an unmapped register.
    reject_blocks: bool = False
    #: DL/T 645: refuse block DIs (abnormal reply, "no requested data").
    reject_block_dis: bool = False
    #: DL/T 645: answer the wildcard address although other DL/T 645 meters share the bus.
    responds_to_wildcard: bool = False
    #: DL/T 645 password P0 P1 P2 (wire order) checked by relay control and writes.
    password: bytes = bytes(3)
    #: DL/T 645 FE wake-up bytes before each reply (0..4).
    preamble: int = 0
    #: DL/T 645 DATA bytes per reply frame before follow-up frames are used.
    max_frame_data: int = 200
    #: DL/T 645 load-profile record interval in minutes.
    record_minutes: int = 15


@dataclass(frozen=True, slots=True)
class FreezeRecord:
    """A freeze (0x16) the meter stored: when (simulated seconds) and the values then."""

    time: float
    values: dict[str, Value]


class SimMeterState:
    """A meter on a running simulated bus: values, relay, clock, faults and counters."""

    def __init__(self, config: SimMeter, clock: SimClock) -> None:
        self.config = config
        self.profile = (
            config.profile if isinstance(config.profile, Profile) else load_profile(config.profile)
        )
        self.is_modbus = self.profile.protocol is ProfileProtocol.MODBUS
        self.address, self.unit = _address(config.address, self.is_modbus)
        self.clock = clock
        #: A private copy: changing it changes this meter only, while the bus runs.
        self.faults = replace(config.faults)
        self.stats = SimStats()
        #: Seconds the meter's own clock is ahead of simulated time (set by broadcast time).
        self.clock_offset = 0.0
        self.freezes: list[FreezeRecord] = []
        seed = noise.key(config.seed, self.address)
        self.rng = random.Random(seed)
        self.model = ValueModel(
            ModelOptions(
                seed=seed,
                phases=self.profile.phases,
                nominal_voltage=self.profile.nominal_voltage,
                nominal_frequency=config.nominal_frequency,
                peak_kw=config.peak_kw,
                unbalance=config.unbalance,
                voltage_noise=config.voltage_noise,
                excursion_probability=config.excursion_probability,
                utc_offset=config.utc_offset,
            ),
            clock.start,
        )

    def __repr__(self) -> str:
        """Name the meter for logs."""
        return f"SimMeterState({self.profile.id}@{self.address})"

    def now(self) -> float:
        """Return the simulated time now."""
        return self.clock.now()

    def values_at(self, t: float | None = None) -> dict[str, Value]:
        """Every canonical quantity at simulated instant ``t`` (default: now)."""
        return self.model.values_at(self.now() if t is None else t)

    @property
    def relay(self) -> bool:
        """True while the load relay is closed."""
        return self.model.relay_closed(self.now())

    def set_relay(self, closed: bool) -> None:
        """Close or open the load relay now."""
        self.model.set_relay(closed, self.now())

    def freeze(self, t: float) -> None:
        """Store a freeze record of the values at ``t``."""
        self.freezes.append(FreezeRecord(t, self.values_at(t)))

    # --- the meter's own clock (local time, with its offset) ---------------------------

    def meter_time(self, t: float) -> datetime:
        """Return what the meter's clock shows at simulated instant ``t`` (naive local time)."""
        local = t + self.clock_offset + self.model.utc_offset_seconds
        return datetime.fromtimestamp(local, UTC).replace(tzinfo=None)

    def sim_time(self, shown: datetime) -> float:
        """Return the simulated instant at which the meter's clock shows ``shown``."""
        local = shown.replace(tzinfo=UTC).timestamp()
        return local - self.model.utc_offset_seconds - self.clock_offset

    def set_meter_time(self, shown: datetime, t: float) -> None:
        """Set the meter clock so that it shows ``shown`` at simulated instant ``t``."""
        self.clock_offset += (shown - self.meter_time(t)) / timedelta(seconds=1)


def _address(address: str, is_modbus: bool) -> tuple[str, int | None]:
    """Return the normalized address and Modbus unit id; ConfigError when invalid."""
    if is_modbus:
        try:
            unit = int(address)
        except ValueError:
            unit = 0
        if unit not in MODBUS_UNITS:
            raise ConfigError(f"Modbus unit id must be 1..247, got {address!r}")
        return str(unit), unit
    normalized = normalize_address(address)
    if "A" in normalized:
        raise ConfigError(f"a simulated meter needs a full address, not wildcard {address!r}")
    return normalized, None
