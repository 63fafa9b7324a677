"""The shape of a meter profile once its data file has been validated."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProfileProtocol(StrEnum):
    """Protocol family a profile describes."""

    MODBUS = "modbus"
    DLT645_2007 = "dlt645-2007"
    DLT645_1997 = "dlt645-1997"


class RegisterType(StrEnum):
    """How a Modbus value is laid out in registers."""

    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    FLOAT32 = "float32"


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One Modbus value: where it is and how to turn registers into the canonical unit."""

    key: str
    address: int
    type: RegisterType
    #: Multiplier from the raw number to the canonical unit (e.g. 0.001 for W to kW).
    scale: float = 1.0
    #: 3 = holding registers, 4 = input registers.
    function: int = 4


@dataclass(frozen=True, slots=True)
class ModbusOptions:
    """Device-wide Modbus behaviour."""

    #: Most registers one read may ask for.
    max_registers: int = 120
    #: "big": high word first; "little": low word first.
    word_order: str = "big"
    #: Bytes per register address: 2 per the standard, 4 on devices such as the IM1253B.
    register_bytes: int = 2
    #: Largest gap of unused registers worth reading through to merge two blocks.
    max_gap: int = 16


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One DL/T 645 data identifier mapped to a quantity key."""

    key: str
    di: int


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated meter profile."""

    id: str
    manufacturer: str
    model: str
    protocol: ProfileProtocol
    #: Where the register or DI map comes from (manual title, version, URL).
    source: str
    phases: int
    registers: tuple[RegisterSpec, ...] = ()
    modbus: ModbusOptions | None = None
    items: tuple[ItemSpec, ...] = ()
    #: DL/T 645 block DIs (e.g. 0x0201FF00) the meter is expected to answer.
    blocks: tuple[int, ...] = ()
    #: Nominal phase voltage in V, used by indicators.
    nominal_voltage: float = 220.0

    @property
    def keys(self) -> tuple[str, ...]:
        """Every quantity key the profile reads, in file order."""
        return tuple(r.key for r in self.registers) + tuple(i.key for i in self.items)
