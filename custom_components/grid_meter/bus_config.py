"""Turn config entry and subentry data into edge agent bus settings (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.bus import MeterConfig
from edge_agent.errors import ProfileError
from edge_agent.link import LinkConfig
from edge_agent.model import SerialSettings, Wire
from edge_agent.profiles import load_profile, profile_dirs
from edge_agent.profiles.model import Profile, ProfileProtocol

from .const import (
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_FRAMING,
    CONF_HOST,
    CONF_LINK,
    CONF_PARITY,
    CONF_PORT,
    CONF_STOPBITS,
    FRAMING_MODBUS_TCP,
    LINK_SERIAL,
)

#: Highest Modbus unit id a meter can have (248..255 are reserved).
MODBUS_MAX_UNIT = 247
#: Digits of a DL/T 645 meter address (six BCD bytes).
DLT645_ADDRESS_DIGITS = 12

#: Character formats meters of each protocol ship with.
DEFAULT_SERIAL: dict[ProfileProtocol, SerialSettings] = {
    ProfileProtocol.MODBUS: SerialSettings(9600, 8, "N", 1),
    ProfileProtocol.DLT645_2007: SerialSettings(2400, 8, "E", 1),
    ProfileProtocol.DLT645_1997: SerialSettings(1200, 8, "E", 1),
}


class InvalidAddressError(ValueError):
    """A meter address that its protocol cannot use."""


def link_config(data: Mapping[str, Any]) -> LinkConfig:
    """Build the link settings stored in a bus config entry."""
    serial = SerialSettings(
        baudrate=int(data.get(CONF_BAUDRATE, 9600)),
        parity=str(data.get(CONF_PARITY, "N")),
        stopbits=int(data.get(CONF_STOPBITS, 1)),
    )
    if data[CONF_LINK] == LINK_SERIAL:
        return LinkConfig(kind="serial", device=data[CONF_DEVICE], serial=serial)
    return LinkConfig(kind="tcp", host=data[CONF_HOST], port=int(data[CONF_PORT]), serial=serial)


def link_target(data: Mapping[str, Any]) -> str:
    """Return what identifies a bus, its serial device or host:port (the unique id)."""
    if data[CONF_LINK] == LINK_SERIAL:
        return str(data[CONF_DEVICE])
    return f"{data[CONF_HOST]}:{data[CONF_PORT]}"


def wire_for(protocol: ProfileProtocol, bus_data: Mapping[str, Any]) -> Wire:
    """Return the framing a meter of ``protocol`` speaks on this bus."""
    if protocol is ProfileProtocol.DLT645_2007:
        return Wire.DLT645_2007
    if protocol is ProfileProtocol.DLT645_1997:
        return Wire.DLT645_1997
    if bus_data.get(CONF_FRAMING) == FRAMING_MODBUS_TCP:
        return Wire.MODBUS_TCP
    return Wire.MODBUS_RTU


def find_profile(profile_id: str) -> Profile | None:
    """Return the profile with this id, or None when there is none (or its file is invalid).

    Only ids are accepted, not file paths: a meter must find its profile again by id.
    """
    if not profile_id or "/" in profile_id or profile_id.endswith((".yaml", ".yml")):
        return None
    try:
        return load_profile(profile_id)
    except ProfileError:
        return None


def known_profiles() -> list[Profile]:
    """Return every loadable profile on the search path (blocking); invalid files are skipped."""
    ids = {
        path.stem
        for directory in profile_dirs()
        if directory.is_dir()
        for path in directory.iterdir()
        if path.suffix in (".yaml", ".yml")
    }
    return [p for pid in sorted(ids) if (p := find_profile(pid)) is not None]


def normalize_address(protocol: ProfileProtocol, address: str) -> str:
    """Canonical form of a meter address; raise InvalidAddressError when it cannot be one.

    Modbus: a unit id 1..247 without leading zeros. DL/T 645: twelve decimal digits, left
    padded with zeros as printed on the nameplate.
    """
    text = address.strip().replace(" ", "")
    if not text.isdigit() or not text.isascii():
        raise InvalidAddressError(f"{address!r} is not a number")
    if protocol is ProfileProtocol.MODBUS:
        unit = int(text)
        if not 1 <= unit <= MODBUS_MAX_UNIT:
            raise InvalidAddressError(f"Modbus unit id {unit} is outside 1..{MODBUS_MAX_UNIT}")
        return str(unit)
    if len(text) > DLT645_ADDRESS_DIGITS:
        raise InvalidAddressError(f"{text} has more than {DLT645_ADDRESS_DIGITS} digits")
    return text.zfill(DLT645_ADDRESS_DIGITS)


def meter_config(address: str, profile: Profile, bus_data: Mapping[str, Any]) -> MeterConfig:
    """Return the edge agent settings of a meter with ``profile`` at ``address``."""
    return MeterConfig(
        address=address, profile=profile, wire=wire_for(profile.protocol, bus_data)
    )
