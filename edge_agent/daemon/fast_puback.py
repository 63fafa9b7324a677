"""A cheaper PUBACK handler for one paho client (MQTT 3.1.1, paho-mqtt 2.1).

For every PUBACK, paho 2.1 builds a ``ReasonCode`` and a ``Properties`` object (MQTT 5
concepts that a 3.1.1 PUBACK does not carry) and formats a debug log record: together
more than half of what a QoS 1 publish costs the daemon's event loop, which is the
ceiling of the terminal bridge's throughput. :func:`install` replaces that handler on
one client instance with one that decodes the packet id and hands shared, constant
reason and properties objects to the same bookkeeping (``_do_on_publish``).

It relies on paho internals, so it installs itself only on the paho version it was
written against and only for MQTT 3.1.1; anything else keeps paho's own handler.
"""

from __future__ import annotations

import struct
from typing import Literal

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

#: paho versions whose ``_handle_pubackcomp`` this module was checked against.
SUPPORTED_PAHO = frozenset({"2.1.0"})

_PACKET_ID = struct.Struct("!H")


def install(client: paho.Client) -> bool:
    """Use the cheaper PUBACK handler on ``client``; return False where it does not apply."""
    if paho_version not in SUPPORTED_PAHO or client.protocol != MQTTProtocolVersion.MQTTv311:
        return False
    original = client._handle_pubackcomp
    reason = ReasonCode(PacketTypes.PUBACK)
    properties = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]
    unpack = _PACKET_ID.unpack_from

    def handle(cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        packet = client._in_packet
        if cmd != "PUBACK" or packet["remaining_length"] != 2:
            return original(cmd)
        (mid,) = unpack(packet["packet"])
        with client._out_message_mutex:
            if mid in client._out_messages:
                return client._do_on_publish(mid, reason, properties)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    client._handle_pubackcomp = handle  # type: ignore[method-assign]
    return True
