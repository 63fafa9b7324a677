r"""Command requests, sans-I/O: parsing, authorisation, results, meter exchanges.

A request is a JSON object ``{"id": "r1", "target": "nb-0001", "cmd": "relay_trip",
"ts": 1700000000}`` where ``target`` is a terminal id or ``<bus>/<address>`` and ``cmd`` a
:class:`~edge_agent.protocols.terminal.CommandKind`. It is accepted when a rule of the
:class:`~.config.CommandPolicy` allows the kind on the target and the sender is proven:

* on ``<base>/bridge/command``: the request is signed with the policy's secret, the
  terminal protocol's JSON way (``,"mac":"<hex>"}`` appended as the last member, the
  HMAC-SHA256 of ``"command\n"`` + the object written without it), its ``ts`` is within
  :data:`FRESHNESS` seconds of the daemon's clock, and its ``id`` was not used before;
* on ``<base>/bridge/command/<user>`` with ``<user>`` in ``allowed_clients``: the
  broker's ACL (``pattern write <base>/bridge/command/%u``) guarantees that only the MQTT
  user ``<user>`` can publish there, so no signature is needed. (An ACL on ``%c`` would
  not do: a client chooses its own client id.) Other users must sign.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import EdgeAgentError
from ..model import Wire
from ..protocols.dlt645 import (
    BROADCAST_ADDRESS,
    Code,
    RelayAction,
    broadcast_time_request,
    relay_request,
)
from ..protocols.dlt645_exchange import CommandExchange
from ..protocols.terminal import AckStatus, CommandKind
from ..protocols.terminal.message import U32_MAX
from .config import DEFAULT_OPERATOR, DEFAULT_PASSWORD, CommandPolicy
from .topics import CommandRoute

#: Seconds a signed request's ``ts`` may differ from the daemon's clock.
FRESHNESS = 300.0
#: How long a relay command stays valid on the meter (its N3..N8 field).
RELAY_VALIDITY = timedelta(minutes=10)

_CONTEXT = b"command\n"
_MAC_OPEN = b',"mac":"'
_MAC_CLOSE = b'"}'
_MAC_BYTES = 32
_RELAY_ACTIONS = {
    CommandKind.RELAY_TRIP: RelayAction.TRIP,
    CommandKind.RELAY_CLOSE: RelayAction.CLOSE_ALLOWED,
}


class CommandRejected(EdgeAgentError):
    """A request that is not carried out; ``status`` is REJECTED or INVALID."""

    def __init__(self, message: str, status: AckStatus, request: Mapping[str, Any]) -> None:
        """Keep the status and what could be read of the request, for the result."""
        super().__init__(message)
        self.status = status
        self.request = dict(request)


class CommandUnsupported(EdgeAgentError):
    """The target cannot carry out this kind of command."""


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """An authorised command request."""

    #: The requester's id, echoed in the result.
    id: str
    target: str
    kind: CommandKind
    #: Who proved the request: ``"signed"``, the MQTT user, or ``"edge-agent"`` itself.
    sender: str


class ReplayGuard:
    """Remembers the ids of signed requests for as long as their ``ts`` is fresh."""

    def __init__(self, limit: int = 10_000) -> None:
        """Remember at most ``limit`` ids (the oldest are forgotten first)."""
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._limit = limit

    def check(self, request_id: str, now: float) -> bool:
        """Return True the first time an id is seen within the window, then False."""
        while self._seen and next(iter(self._seen.values())) < now - 2 * FRESHNESS:
            self._seen.popitem(last=False)
        if request_id in self._seen:
            return False
        self._seen[request_id] = now
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return True


def sign_request(fields: Mapping[str, Any], secret: str) -> bytes:
    """Return a request signed with ``secret`` (for clients, tests and the CLI)."""
    body = json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=False).encode()
    tag = hmac.new(secret.encode(), _CONTEXT + body, hashlib.sha256).hexdigest().encode()
    return body[:-1] + _MAC_OPEN + tag + _MAC_CLOSE


def parse_request(
    route: CommandRoute,
    payload: bytes,
    policy: CommandPolicy,
    now: float,
    guard: ReplayGuard,
) -> CommandRequest:
    """Authorise a request or raise CommandRejected saying why."""
    obj = _object(payload)
    request_id = obj.get("id", "")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise CommandRejected("field 'id' must be a string or an integer", AckStatus.INVALID, obj)
    target = obj.get("target")
    if not isinstance(target, str) or not target:
        raise CommandRejected("field 'target' must be a non-empty string", AckStatus.INVALID, obj)
    try:
        kind = CommandKind(str(obj.get("cmd")))
    except ValueError:
        choices = ", ".join(CommandKind)
        raise CommandRejected(
            f"field 'cmd' must be one of {choices}", AckStatus.INVALID, obj
        ) from None
    if route.client is not None and route.client in policy.allowed_clients:
        sender = route.client
    else:
        _verify_signature(payload, obj, policy, now=now, guard=guard, request_id=str(request_id))
        sender = "signed"
    if not policy.allows(target, kind):
        raise CommandRejected(f"{kind} on {target} is not allowed", AckStatus.REJECTED, obj)
    return CommandRequest(str(request_id), target, kind, sender)


def _object(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        raise CommandRejected("request is not JSON", AckStatus.INVALID, {}) from None
    if not isinstance(obj, dict):
        raise CommandRejected("request must be a JSON object", AckStatus.INVALID, {})
    return obj


def _verify_signature(
    payload: bytes,
    obj: Mapping[str, Any],
    policy: CommandPolicy,
    *,
    now: float,
    guard: ReplayGuard,
    request_id: str,
) -> None:
    """Check the MAC, the time stamp and that the id is new."""
    if policy.secret is None:
        raise CommandRejected("unsigned request from an unlisted client", AckStatus.REJECTED, obj)
    tag_hex = obj.get("mac")
    if not isinstance(tag_hex, str):
        raise CommandRejected("request is not signed", AckStatus.REJECTED, obj)
    text = payload.rstrip()
    suffix = _MAC_OPEN + tag_hex.encode() + _MAC_CLOSE
    if not text.endswith(suffix) or len(tag_hex) != 2 * _MAC_BYTES:
        raise CommandRejected(
            'the MAC must end the object as ,"mac":"<64 hex>"}', AckStatus.REJECTED, obj
        )
    body = text[: -len(suffix)] + b"}"
    expected = hmac.new(policy.secret.encode(), _CONTEXT + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, tag_hex.lower()):
        raise CommandRejected("MAC mismatch", AckStatus.REJECTED, obj)
    ts = obj.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or abs(now - ts) > FRESHNESS:
        raise CommandRejected(
            f"'ts' must be within {FRESHNESS:.0f} s of now", AckStatus.REJECTED, obj
        )
    if not request_id:
        raise CommandRejected("a signed request needs an 'id'", AckStatus.REJECTED, obj)
    if not guard.check(request_id, now):
        raise CommandRejected(
            f"request id {request_id!r} was already used", AckStatus.REJECTED, obj
        )


def result_payload(
    request: Mapping[str, Any] | CommandRequest, status: AckStatus, detail: str, now: float
) -> bytes:
    """JSON result for ``<base>/bridge/result``."""
    if isinstance(request, CommandRequest):
        fields: dict[str, Any] = {
            "id": request.id,
            "target": request.target,
            "cmd": str(request.kind),
        }
    else:
        fields = {k: request[k] for k in ("id", "target", "cmd") if k in request}
    fields.update(status=str(status), detail=detail, ts=round(now, 3))
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def meter_exchange(
    kind: CommandKind,
    address: str,
    wire: Wire,
    local_now: datetime,
    *,
    password: bytes = DEFAULT_PASSWORD,
    operator: bytes = DEFAULT_OPERATOR,
) -> CommandExchange:
    """Build the DL/T 645-2007 exchange carrying out ``kind`` on a bus meter.

    ``local_now`` is the meters' local time (relay validity, time sync). Time sync is a
    broadcast: every meter on the bus takes it and none answers.
    """
    if wire is not Wire.DLT645_2007:
        raise CommandUnsupported(f"{kind} is implemented for DL/T 645-2007 meters, not {wire}")
    if kind is CommandKind.TIME_SYNC:
        return CommandExchange(
            broadcast_time_request(local_now), BROADCAST_ADDRESS, Code.BROADCAST_TIME
        )
    request = relay_request(
        address,
        _RELAY_ACTIONS[kind],
        password=password,
        operator=operator,
        valid_until=local_now + RELAY_VALIDITY,
    )
    return CommandExchange(request, address, Code.RELAY)


class CommandIds:
    """Increasing command ids per terminal: the Unix second, or one more than the last."""

    def __init__(self) -> None:
        """Start with no ids issued."""
        self._last: dict[str, int] = {}

    def next(self, terminal_id: str, now: float) -> int:
        """Return an id above every id issued to ``terminal_id`` so far.

        After a restart, ids stay above those issued before as long as fewer than one
        per second were issued.
        """
        issued = max(self._last.get(terminal_id, 0) + 1, int(now)) & U32_MAX
        self._last[terminal_id] = issued
        return issued
