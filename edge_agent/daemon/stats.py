"""Counters of a running daemon, published on ``<base>/bridge/stats`` and logged."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class DaemonStats:
    """What the daemon did since it started."""

    # --- terminal messages on <base>/+/up ---------------------------------------------
    #: Payloads received on a terminal ``up`` topic.
    received: int = 0
    #: Readings decoded, verified, fresh and handed to the spool.
    accepted: int = 0
    #: Payloads that do not decode (bad JSON, wrong length, unknown code...).
    malformed: int = 0
    #: Payloads with a missing or wrong HMAC.
    auth_failed: int = 0
    #: Payloads from a terminal id that is not configured.
    unknown_terminal: int = 0
    #: Sequence numbers seen again (QoS 1 redelivery, replays): dropped.
    duplicates: int = 0
    #: Sequence numbers older than the tracking window with an older timestamp: dropped.
    stale: int = 0
    #: Readings that filled a gap (accepted).
    out_of_order: int = 0
    #: Sequence numbers skipped by jumps forward.
    missing: int = 0
    #: Terminal reboots detected from the sequence numbers.
    restarts: int = 0
    # --- buses ------------------------------------------------------------------------
    polls: int = 0
    meter_readings: int = 0
    meter_errors: int = 0
    link_errors: int = 0
    # --- spool and broker -------------------------------------------------------------
    #: Messages written to the spool.
    spooled: int = 0
    #: Spooled messages the broker acknowledged (PUBACK) and the spool forgot.
    published: int = 0
    #: Messages the spool deleted to respect its cap (since the file was created).
    spool_dropped: int = 0
    connects: int = 0
    connect_failures: int = 0
    # --- commands ---------------------------------------------------------------------
    commands_received: int = 0
    commands_rejected: int = 0
    commands_invalid: int = 0
    commands_ok: int = 0
    commands_failed: int = 0
    terminal_acks: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict for JSON."""
        return asdict(self)

    def summary(self) -> str:
        """One log line with the non-zero counters."""
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items() if v)
