"""Read planning: the fewest transactions that read every quantity of a profile.

Pure functions. Modbus registers of the same function merge into block reads no longer
than the device's ``max_registers``, reading through gaps of at most ``max_gap`` unused
addresses. Greedy left-to-right merging is optimal here: any contiguous run inside a
feasible block is itself feasible, so closing a block as late as possible never costs an
extra transaction.

A meter may refuse a read (Modbus exception 2 for an address inside a merged block, a
DL/T 645 abnormal reply to a block DI). The planners take the set of refused reads and fall
back step by step: a refused Modbus block is read as gap-free runs, a refused run as single
values, and a refused single value is dropped (its key is reported missing). A refused
DL/T 645 block is read item by item; a refused item is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .profiles.model import ModbusOptions, Profile, ProfileProtocol, RegisterSpec
from .protocols.dlt645_catalogue import Version, lookup
from .protocols.modbus import register_span

_VERSIONS = {
    ProfileProtocol.DLT645_2007: Version.V2007,
    ProfileProtocol.DLT645_1997: Version.V1997,
}


@dataclass(frozen=True, slots=True)
class ModbusBlock:
    """One Modbus read: ``count`` register addresses from ``start``, decoded into ``specs``."""

    function: int
    start: int
    count: int
    specs: tuple[RegisterSpec, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """Quantity keys this read yields."""
        return tuple(spec.key for spec in self.specs)

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.start + self.count


@dataclass(frozen=True, slots=True)
class DltRead:
    """One DL/T 645 read of ``di`` (a block or a single item) and the keys of its members."""

    di: int
    #: (member DI, quantity key) pairs, in wire order.
    members: tuple[tuple[int, str], ...]

    @property
    def keys(self) -> dict[int, str]:
        """Member DI -> quantity key."""
        return dict(self.members)

    @property
    def is_block(self) -> bool:
        """True when the read asks for a block DI."""
        return len(self.members) != 1 or self.members[0][0] != self.di


# --- Modbus -----------------------------------------------------------------------------


def plan_modbus(
    profile: Profile, refused: frozenset[ModbusBlock] = frozenset()
) -> list[ModbusBlock]:
    """Plan the reads of a Modbus profile, avoiding the ``refused`` ones."""
    options = profile.modbus or ModbusOptions()
    blocks: list[ModbusBlock] = []
    for function in sorted({spec.function for spec in profile.registers}):
        specs = sorted(
            (s for s in profile.registers if s.function == function), key=lambda s: s.address
        )
        blocks.extend(_plan_run(specs, options, options.max_gap, refused))
    return blocks


def _plan_run(
    specs: Sequence[RegisterSpec],
    options: ModbusOptions,
    max_gap: int,
    refused: frozenset[ModbusBlock],
) -> list[ModbusBlock]:
    planned: list[ModbusBlock] = []
    for block in merge_registers(specs, options, max_gap):
        if block not in refused:
            planned.append(block)
        elif len(block.specs) == 1:
            continue  # a refused single value: the meter does not have it
        elif _has_gap(block, options):
            planned.extend(_plan_run(block.specs, options, 0, refused))
        else:
            singles = (merge_registers([spec], options, 0)[0] for spec in block.specs)
            planned.extend(single for single in singles if single not in refused)
    return planned


def merge_registers(
    specs: Iterable[RegisterSpec], options: ModbusOptions, max_gap: int
) -> list[ModbusBlock]:
    """Merge register values (of one function, sorted by address) into block reads."""
    blocks: list[ModbusBlock] = []
    current: list[RegisterSpec] = []
    start = end = 0
    for spec in specs:
        span_end = spec.address + register_span(spec.type, options.register_bytes)
        fits = span_end - start <= options.max_registers and spec.address - end <= max_gap
        if current and fits:
            current.append(spec)
            end = max(end, span_end)
            continue
        if current:
            blocks.append(ModbusBlock(current[0].function, start, end - start, tuple(current)))
        current, start, end = [spec], spec.address, span_end
    if current:
        blocks.append(ModbusBlock(current[0].function, start, end - start, tuple(current)))
    return blocks


def _has_gap(block: ModbusBlock, options: ModbusOptions) -> bool:
    used = sum(register_span(s.type, options.register_bytes) for s in block.specs)
    return used < block.count


# --- DL/T 645 -----------------------------------------------------------------------------


def plan_dlt645(profile: Profile, refused: frozenset[int] = frozenset()) -> list[DltRead]:
    """Plan the reads of a DL/T 645 profile; ``refused`` holds DIs the meter refused.

    A block DI of the profile is used when it covers at least two of the profile's items
    and has not been refused; every other item is read on its own unless refused.
    """
    version = _VERSIONS[profile.protocol]
    keys = {item.di: item.key for item in profile.items}
    covered: set[int] = set()
    reads: list[DltRead] = []
    for block in profile.blocks:
        if block in refused:
            continue
        members = tuple(
            (di, keys[di])
            for di in lookup(block, version).members
            if di in keys and di not in covered
        )
        if len(members) >= 2:
            reads.append(DltRead(block, members))
            covered.update(di for di, _key in members)
    reads.extend(
        DltRead(item.di, ((item.di, item.key),))
        for item in profile.items
        if item.di not in covered and item.di not in refused
    )
    return reads
