"""A simulated Modbus meter: answers register reads from its profile's register map."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Value
from ..profiles.model import ModbusOptions, RegisterSpec
from ..protocols.modbus import (
    MAX_WORDS,
    Framing,
    ModbusRequest,
    encode_exception,
    encode_response,
    encode_value,
    register_span,
    value_words,
)
from .meter import SimMeterState

ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where one value lives: its spec and the register addresses it spans."""

    spec: RegisterSpec
    first: int
    span: int


class ModbusMeter:
    """Builds the reply of one meter to a read request.

    Registers the profile does not map read as 0 inside a range that holds at least one
    mapped register; a range with none, or longer than ``max_registers``, is refused with
    exception 2 (illegal data address), as is any gap when ``reject_blocks`` is set.
    """

    def __init__(self, state: SimMeterState) -> None:
        self.state = state
        self.options = state.profile.modbus or ModbusOptions()
        self._per_address = self.options.register_bytes // 2
        self._slots: dict[int, dict[int, _Slot]] = {}
        for spec in state.profile.registers:
            span = register_span(spec.type, self.options.register_bytes)
            slot = _Slot(spec, spec.address, span)
            for offset in range(span):
                self._slots.setdefault(spec.function, {})[spec.address + offset] = slot

    def reply(self, request: ModbusRequest, framing: Framing, t: float) -> bytes:
        """Return the reply frame to ``request`` at simulated instant ``t``."""
        slots = self._slots.get(request.function)
        if slots is None:
            return encode_exception(request, ILLEGAL_FUNCTION, framing)
        addresses = range(request.address, request.address + request.count)
        mapped = [a for a in addresses if a in slots]
        too_long = (
            request.count > self.options.max_registers
            or request.count * self._per_address > MAX_WORDS
        )
        gaps = len(mapped) < len(addresses)
        if too_long or not mapped or (gaps and self.state.config.reject_blocks):
            return encode_exception(request, ILLEGAL_DATA_ADDRESS, framing)
        values = self.state.values_at(t)
        words: list[int] = []
        cache: dict[int, list[int]] = {}
        for address in addresses:
            slot = slots.get(address)
            if slot is None:
                words.extend([0] * self._per_address)
                continue
            if slot.first not in cache:
                cache[slot.first] = self._encode(slot.spec, values.get(slot.spec.key, 0.0))
            offset = (address - slot.first) * self._per_address
            words.extend(cache[slot.first][offset : offset + self._per_address])
        return encode_response(request, words, framing)

    def _encode(self, spec: RegisterSpec, value: Value) -> list[int]:
        """Encode one value; zeros for a value that is not a number or does not fit."""
        number = value if isinstance(value, int | float) else 0.0
        try:
            return encode_value(number, spec, self.options)
        except ValueError:
            return [0] * value_words(spec.type)
