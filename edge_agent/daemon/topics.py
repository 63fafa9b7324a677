"""The daemon's topic scheme: the terminal scheme ``<base>/<device>/<channel>`` extended.

=====================================  =============================================  ======
topic                                  payload                                        retain
=====================================  =============================================  ======
``<base>/<terminal>/up|ack``           terminal readings and acks (see the protocol)  no
``<base>/<terminal>/down``             commands to the terminal                       no
``<base>/<device>/status``             ``online`` / ``offline``                       yes
``<base>/<device>/state``              decoded reading, flat JSON                     yes
``<base>/bridge/status``               the daemon's ``online`` / ``offline`` (will)   yes
``<base>/bridge/command[/<user>]``     command requests                               no
``<base>/bridge/result``               command results                                no
``<base>/bridge/stats``                counters, JSON                                 yes
=====================================  =============================================  ======

``<device>`` is a terminal id, or ``<bus>_<address>`` (see :func:`meter_device`) for a
meter on one of the daemon's buses, so Home Assistant's ACL needs only
``<base>/+/state`` and ``<base>/+/status``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocols.terminal import Channel, TerminalTopics
from ..protocols.terminal.topics import BRIDGE_ID
from .discovery import node_id

COMMAND = "command"
RESULT = "result"
STATS = "stats"


@dataclass(frozen=True, slots=True)
class DaemonTopics:
    """Builds every topic the daemon publishes or subscribes to under one base topic."""

    base: str = "gridmeter"

    @property
    def terminals(self) -> TerminalTopics:
        """The terminal part of the scheme."""
        return TerminalTopics(self.base)

    def meter(self, bus: str, address: str, channel: Channel) -> str:
        """Return a bus meter's ``state`` or ``status`` topic."""
        return f"{self.base}/{meter_device(bus, address)}/{channel}"

    def bridge(self, leaf: str) -> str:
        """Return a topic of the daemon itself: ``status``, ``command``, ``result``, ``stats``."""
        return f"{self.base}/{BRIDGE_ID}/{leaf}"

    @property
    def bridge_status(self) -> str:
        """Retained availability of the daemon (its last will says ``offline``)."""
        return self.bridge(str(Channel.STATUS))

    @property
    def command_filters(self) -> tuple[str, str]:
        """Subscriptions for command requests: signed, and per MQTT username."""
        return self.bridge(COMMAND), self.bridge(f"{COMMAND}/+")

    def command_route(self, topic: str) -> CommandRoute | None:
        """Classify a command request topic; None for any other topic."""
        signed = self.bridge(COMMAND)
        if topic == signed:
            return CommandRoute(None)
        client = topic.removeprefix(signed + "/")
        if client != topic and client and "/" not in client:
            return CommandRoute(client)
        return None


@dataclass(frozen=True, slots=True)
class CommandRoute:
    """Where a command request came in: the signed topic, or a client's own topic."""

    #: ``<user>`` of ``command/<user>``: the broker's ACL line
    #: ``pattern write <base>/bridge/command/%u`` makes it the sender's MQTT username.
    client: str | None


def meter_device(bus: str, address: str) -> str:
    """Device id (topic level and discovery node id) of a meter on a bus."""
    return node_id(bus, address)
