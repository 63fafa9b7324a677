"""MQTT topic scheme: ``<base>/<terminal_id>/<channel>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

#: Retained payloads on the ``status`` channel; ``offline`` is also the terminal's last will.
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"

#: Terminal ids are one topic level and the terminal's MQTT username (the ACL's ``%u``).
TERMINAL_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Id under which the daemon publishes its own status; no terminal may use it.
BRIDGE_ID = "bridge"


class Channel(StrEnum):
    """Last topic level: what the messages on a topic are."""

    #: Readings, terminal -> daemon.
    UP = "up"
    #: Commands, daemon -> terminal.
    DOWN = "down"
    #: Retained "online" / "offline", written by the terminal and its last will.
    STATUS = "status"
    #: Command acknowledgements, terminal -> daemon.
    ACK = "ack"
    #: Decoded values as flat JSON, daemon -> Home Assistant.
    STATE = "state"


def is_valid_terminal_id(terminal_id: str) -> bool:
    """Return True for an id that is one safe topic level and not reserved."""
    return TERMINAL_ID_PATTERN.fullmatch(terminal_id) is not None and terminal_id != BRIDGE_ID


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """A topic split into terminal id and channel."""

    terminal_id: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class TerminalTopics:
    """Builds and parses the topics under one base topic."""

    base: str = "gridmeter"

    def topic(self, terminal_id: str, channel: Channel) -> str:
        """Return the topic of one terminal's channel."""
        return f"{self.base}/{terminal_id}/{channel}"

    def subscription(self, channel: Channel) -> str:
        """Wildcard matching a channel of every terminal."""
        return f"{self.base}/+/{channel}"

    @property
    def bridge_status(self) -> str:
        """Retained availability topic of the daemon itself."""
        return f"{self.base}/{BRIDGE_ID}/{Channel.STATUS}"

    def parse(self, topic: str) -> TopicMatch | None:
        """Split a topic of this scheme; None for any other topic."""
        prefix = f"{self.base}/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 2 or not is_valid_terminal_id(parts[0]):
            return None
        try:
            return TopicMatch(parts[0], Channel(parts[1]))
        except ValueError:
            return None
