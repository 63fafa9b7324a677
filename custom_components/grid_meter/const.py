"""Constants of the Grid Meter integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "grid_meter"
LOGGER = logging.getLogger(__package__)

#: How often a bus polls all of its meters.
UPDATE_INTERVAL: Final = timedelta(seconds=10)
#: Consecutive updates in which the bus or every meter on it failed before a repair issue.
BUS_DOWN_AFTER: Final = 5
#: Seconds to wait for the first byte of a reply.
REPLY_TIMEOUT: Final = 0.5
#: Retries of a timed out or garbled transaction before a meter counts as failed.
RETRIES: Final = 1

SUBENTRY_METER: Final = "meter"

# Bus entry data
CONF_LINK: Final = "link"
CONF_DEVICE: Final = "device"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_PROTOCOL: Final = "protocol"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_FRAMING: Final = "framing"

LINK_SERIAL: Final = "serial"
LINK_TCP: Final = "tcp"

#: TCP gateway framings: transparent bytes (RTU or DL/T 645 as on the RS485 side) or Modbus TCP.
FRAMING_RAW: Final = "raw"
FRAMING_MODBUS_TCP: Final = "modbus_tcp"

# Meter subentry data
CONF_ADDRESS: Final = "address"
CONF_PROFILE: Final = "profile"
CONF_FIRST: Final = "first_address"
CONF_LAST: Final = "last_address"

BAUDRATES: Final = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES: Final = ("N", "E", "O")
STOPBITS: Final = (1, 2)

DEFAULT_TCP_PORT: Final = 502

# Indicators and advice
SUBENTRY_GROUP: Final = "group"

#: Meter and group subentry data: phase-to-neutral nominal voltage (V), rated capacity (kVA),
#: power factor target and frequency limit (Hz); absent keys take the defaults below.
CONF_NOMINAL_VOLTAGE: Final = "nominal_voltage"
CONF_RATED_POWER: Final = "rated_power"
CONF_PF_TARGET: Final = "power_factor_target"
CONF_FREQUENCY_LIMIT: Final = "frequency_limit"
#: Group subentry data: addresses of the member meters.
CONF_MEMBERS: Final = "members"
CONF_NAME: Final = "name"

DEFAULT_NOMINAL_VOLTAGE: Final = 220.0
#: Power factor targets of the adjustment tariff by form option (docs/indicators.md section 6).
PF_TARGETS: Final = {"industrial": 0.90, "general": 0.85, "agricultural": 0.80}
#: Frequency limits of GB/T 15945 by form option, Hz.
FREQUENCY_LIMITS: Final = {"normal": 0.2, "small_system": 0.5}

#: Advice that has lasted this long (from the start of its excursion) raises a repair issue.
ADVICE_ISSUE_AFTER: Final = timedelta(hours=1)
#: Seconds between writes of the indicator and advice state (it is also written at shutdown).
STATE_SAVE_DELAY: Final = 60
STATE_STORAGE_VERSION: Final = 1

SERVICE_CREATE_DASHBOARD: Final = "create_dashboard"
