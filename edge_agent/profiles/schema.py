"""The voluptuous schema of a profile file and its conversion to a :class:`Profile`.

Pure: takes the parsed YAML document and a name for error messages, returns a
:class:`Profile` or raises :class:`ProfileError` naming the file and the field path
(``eastron-sdm630.yaml: registers[3].type: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import voluptuous as vol

from ..errors import ProfileError, UnknownDataIdError
from ..protocols.dlt645_catalogue import Version, lookup
from ..protocols.modbus import MAX_WORDS, READ_FUNCTIONS, register_span
from ..quantities import QUANTITIES
from .model import (
    ItemSpec,
    ModbusOptions,
    Profile,
    ProfileProtocol,
    RegisterSpec,
    RegisterType,
)

_VERSIONS = {
    ProfileProtocol.DLT645_2007: Version.V2007,
    ProfileProtocol.DLT645_1997: Version.V1997,
}
_DI_DIGITS = {Version.V2007: 8, Version.V1997: 4}


def _choice(values: Sequence[object]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in values:
            raise vol.Invalid(f"{value!r} is not one of {', '.join(map(str, values))}")
        return value

    return check


def _integer(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"expected a whole number, got {value!r}")
        if not low <= value <= high:
            raise vol.Invalid(f"{value} is out of range {low}..{high}")
        return value

    return check


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise vol.Invalid(f"expected a number, got {value!r}")
    return float(value)


def _nonzero(value: float) -> float:
    if value == 0:
        raise vol.Invalid("must not be 0")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid(f"expected non-empty text, got {value!r}")
    return value.strip()


def _quantity_key(value: object) -> str:
    if not isinstance(value, str) or value not in QUANTITIES:
        raise vol.Invalid(f"unknown quantity key {value!r} (see edge_agent/quantities.py)")
    return value


def _hex_di(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f]{4}|[0-9A-Fa-f]{8}", value):
        raise vol.Invalid(
            f"expected a quoted hex data identifier such as '02010100' or 'B611', got {value!r}"
        )
    return value.upper()


_PROFILE_ID = vol.All(_text, vol.Match(r"^[a-z0-9][a-z0-9._-]*$", msg="use a-z, 0-9, . _ -"))

_COMMON: dict[Any, Any] = {
    vol.Required("id"): _PROFILE_ID,
    vol.Required("manufacturer"): _text,
    vol.Required("model"): _text,
    vol.Required("protocol"): _choice([p.value for p in ProfileProtocol]),
    vol.Required("source"): _text,
    vol.Required("phases"): _choice([1, 3]),
    vol.Optional("nominal_voltage"): vol.All(_number, vol.Range(min=50, max=1000)),
    vol.Optional("notes"): _text,
}

_REGISTER = vol.Schema(
    {
        vol.Required("key"): _quantity_key,
        vol.Required("address"): _integer(0, 0xFFFF),
        vol.Required("type"): _choice([t.value for t in RegisterType]),
        vol.Optional("scale"): vol.All(_number, _nonzero),
        vol.Optional("function"): _choice(sorted(READ_FUNCTIONS)),
    }
)

_MODBUS_OPTIONS = vol.Schema(
    {
        vol.Optional("max_registers"): _integer(1, MAX_WORDS),
        vol.Optional("word_order"): _choice(["big", "little"]),
        vol.Optional("register_bytes"): _choice([2, 4]),
        vol.Optional("max_gap"): _integer(0, MAX_WORDS),
        vol.Optional("function"): _choice(sorted(READ_FUNCTIONS)),
    }
)

_MODBUS = vol.Schema(
    {
        **_COMMON,
        vol.Optional("modbus"): _MODBUS_OPTIONS,
        vol.Required("registers"): vol.All([_REGISTER], vol.Length(min=1)),
    }
)

_ITEM = vol.Schema({vol.Required("key"): _quantity_key, vol.Required("di"): _hex_di})

_DLT645 = vol.Schema(
    {
        **_COMMON,
        vol.Required("items"): vol.All([_ITEM], vol.Length(min=1)),
        vol.Optional("blocks"): [_hex_di],
    }
)


def _path(path: Sequence[object]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _fail(origin: str, path: Sequence[object], message: str) -> ProfileError:
    return ProfileError(f"{origin}: {_path(path)}: {message}")


def parse_profile(document: object, origin: str) -> Profile:
    """Validate a parsed profile document; ``origin`` names it in error messages."""
    if not isinstance(document, Mapping):
        raise ProfileError(f"{origin}: expected a mapping of profile fields at the top level")
    protocol = document.get("protocol")
    if protocol not in {p.value for p in ProfileProtocol}:
        choices = ", ".join(p.value for p in ProfileProtocol)
        problem = "required field is missing;" if protocol is None else f"{protocol!r} is not"
        raise _fail(origin, ["protocol"], f"{problem} one of {choices}")
    schema = _MODBUS if protocol == ProfileProtocol.MODBUS.value else _DLT645
    try:
        data = schema(dict(document))
    except vol.MultipleInvalid as err:
        # A misspelt field shows up twice (unknown + required missing): name the typo first.
        errors = sorted(err.errors, key=lambda e: (not _is_extra(e), [str(p) for p in e.path]))
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _fail(origin, errors[0].path, _message(errors[0]) + more) from None
    _unique_keys(data, origin)
    if data["protocol"] == ProfileProtocol.MODBUS.value:
        return _modbus_profile(data, origin)
    return _dlt645_profile(data, origin)


def _is_extra(error: vol.Invalid) -> bool:
    return (error.error_message or error.msg) == "extra keys not allowed"


def _message(error: vol.Invalid) -> str:
    message = error.error_message or error.msg
    if message == "extra keys not allowed":
        return "unknown field (check the spelling; see docs/profiles.md)"
    if message == "required key not provided":
        return "required field is missing"
    if message.startswith("expected a list"):
        return "expected a list"
    return message


def _common(data: Mapping[str, Any]) -> dict[str, Any]:
    fields = {
        "id": data["id"],
        "manufacturer": data["manufacturer"],
        "model": data["model"],
        "protocol": ProfileProtocol(data["protocol"]),
        "source": data["source"],
        "phases": data["phases"],
    }
    if "nominal_voltage" in data:
        fields["nominal_voltage"] = data["nominal_voltage"]
    return fields


def _unique_keys(data: Mapping[str, Any], origin: str) -> None:
    field = "registers" if "registers" in data else "items"
    seen: dict[str, int] = {}
    for index, entry in enumerate(data[field]):
        if entry["key"] in seen:
            raise _fail(
                origin,
                [field, index, "key"],
                f"{entry['key']!r} is already mapped by {field}[{seen[entry['key']]}]",
            )
        seen[entry["key"]] = index


def _modbus_profile(data: Mapping[str, Any], origin: str) -> Profile:
    raw = dict(data.get("modbus", {}))
    default_function = raw.pop("function", 4)
    options = ModbusOptions(**raw)
    registers = tuple(
        RegisterSpec(
            key=entry["key"],
            address=entry["address"],
            type=RegisterType(entry["type"]),
            scale=entry.get("scale", 1.0),
            function=entry.get("function", default_function),
        )
        for entry in data["registers"]
    )
    if options.max_registers * options.register_bytes // 2 > MAX_WORDS:
        raise _fail(
            origin,
            ["modbus", "max_registers"],
            f"{options.max_registers} registers of {options.register_bytes} bytes exceed "
            f"the {MAX_WORDS} words a reply can carry",
        )
    _check_spans(registers, options, origin)
    return Profile(**_common(data), registers=registers, modbus=options)


def _check_spans(registers: Sequence[RegisterSpec], options: ModbusOptions, origin: str) -> None:
    spans: list[tuple[int, int, int, int]] = []  # function, start, end, index
    for index, spec in enumerate(registers):
        try:
            span = register_span(spec.type, options.register_bytes)
        except ValueError as err:
            raise _fail(origin, ["registers", index, "type"], str(err)) from None
        if spec.address + span > 0x10000:
            raise _fail(origin, ["registers", index, "address"], "runs past address 65535")
        spans.append((spec.function, spec.address, spec.address + span, index))
    spans.sort()
    for (function, _start, end, first), (other_function, start, _end, second) in pairwise(spans):
        if function == other_function and start < end:
            raise _fail(
                origin,
                ["registers", max(first, second), "address"],
                f"{registers[second].key} at {start} overlaps {registers[first].key} "
                f"(registers[{first}], function {function}, addresses "
                f"{registers[first].address}..{end - 1})",
            )


def _dlt645_profile(data: Mapping[str, Any], origin: str) -> Profile:
    version = _VERSIONS[ProfileProtocol(data["protocol"])]
    items = []
    for index, entry in enumerate(data["items"]):
        di = _catalogued(entry["di"], version, origin, ["items", index, "di"], block=False)
        items.append(ItemSpec(key=entry["key"], di=di))
    blocks = tuple(
        _catalogued(text, version, origin, ["blocks", index], block=True)
        for index, text in enumerate(data.get("blocks", []))
    )
    return Profile(**_common(data), items=tuple(items), blocks=blocks)


def _catalogued(
    text: str, version: Version, origin: str, path: Sequence[object], *, block: bool
) -> int:
    if len(text) != _DI_DIGITS[version]:
        raise _fail(
            origin,
            path,
            f"DL/T 645-{int(version)} data identifiers have {_DI_DIGITS[version]} hex digits",
        )
    di = int(text, 16)
    try:
        entry = lookup(di, version)
    except UnknownDataIdError as err:
        raise _fail(origin, path, str(err)) from None
    if entry.is_block != block:
        what = "a block" if entry.is_block else "a single item"
        raise _fail(origin, path, f"{text} is {what} ({entry.name})")
    return di
