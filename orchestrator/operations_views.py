"""What the operator service answers with: plain records the CLI prints and the HTTP API serialises.

None of them carries a personal fact or a message body: a registration shows ids, states, codes
and times; a history step its event type, source and outcome; a dead letter its queue and reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from orchestrator.errors import InvalidRequestError
from orchestrator.listing import Cursor, RegistrationSummary
from orchestrator.ports import DeadLetter, HistoryEntry

Channel = Literal["cli", "http"]
ReplayOutcome = Literal[
    "replayed",  # a parked verification asked again, or a dead letter back on its queue (a broker's)
    "handled",  # a dead letter the embedded bus has handled this time
    "queued",  # a dead letter sent back and not handled yet: it stays listed until it is
    "dead_lettered_again",  # … and given up on again (its reason is the new one)
    "would_replay",  # a dry run's answer for what would be replayed
    "skipped",  # nothing to replay (activated, not parked, replayed already): nothing changed
    "not_found",
    "failed",  # an error; the reason says which
]
CHANGED = frozenset({"replayed", "handled", "queued", "dead_lettered_again"})


@dataclass(frozen=True)
class Actor:
    """Who acts: the audit's `who`, and whether through the CLI or the HTTP API."""

    name: str
    channel: Channel = "cli"


@dataclass(frozen=True)
class RegistrationPage:
    items: list[RegistrationSummary]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class Step:
    """One history entry without its event body (which may hold personal facts)."""

    event_id: str
    event_type: str
    source: str
    occurred_at: datetime
    recorded_at: datetime
    outcome: str
    from_state: str
    to_state: str
    code: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, entry: HistoryEntry) -> Step:
        return cls(
            entry.event_id,
            entry.event_type,
            entry.source,
            entry.occurred_at,
            entry.recorded_at,
            entry.outcome,
            entry.from_state,
            entry.to_state,
            entry.code,
            entry.message,
        )


@dataclass(frozen=True)
class Decision:
    """A verifier's verdict as the history recorded it: pass, fail or retry_later, with code and reason."""

    event_id: str
    recorded_at: datetime
    attempt: int
    outcome: str
    code: str | None
    reason: str | None
    applied: bool  # False: refused (a stale attempt), so it decided nothing


@dataclass(frozen=True)
class CurrentVerification:
    attempt: int
    status: str
    retries: int
    code: str | None
    message: str | None
    retry_at: datetime | None
    decided_at: datetime | None
    certificate_fingerprint: str | None


@dataclass(frozen=True)
class RegistrationDetail:
    summary: RegistrationSummary
    expires_at: datetime
    activated_at: datetime | None
    ended_at: datetime | None
    card_read: bool
    challenge_attempt: int
    verification: CurrentVerification | None
    history: list[Step] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def decision_of(entry: HistoryEntry) -> Decision | None:
    """The verdict in a `verification.completed` history entry (its payload holds no personal fact)."""
    if entry.event_type != "verification.completed":
        return None
    try:
        payload = json.loads(entry.event).get("payload", {})
    except ValueError:
        return None
    return Decision(
        entry.event_id,
        entry.recorded_at,
        int(payload.get("attempt", 0)),
        str(payload.get("outcome", "")),
        payload.get("code"),
        payload.get("message"),
        entry.outcome == "applied",
    )


@dataclass(frozen=True)
class DeadLetterSummary:
    """A dead letter without its body."""

    id: int
    queue: str
    message_id: str
    routing_key: str
    reason: str
    attempts: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterSummary:
        m = letter.message
        return cls(
            letter.id,
            letter.queue,
            m.message_id,
            m.routing_key,
            letter.reason,
            letter.attempts,
            letter.first_seen_at,
            letter.last_seen_at,
        )


@dataclass(frozen=True)
class ReplaySelection:
    """What to replay: registrations by id, dead letters by id, and/or every parked registration
    with this result code and/or parked (last changed) in [since, until)."""

    registration_ids: tuple[str, ...] = ()
    dead_letter_ids: tuple[int, ...] = ()
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def by_query(self) -> bool:
        return self.code is not None or self.since is not None or self.until is not None

    def parameters(self) -> dict[str, object]:
        found: dict[str, object] = {}
        if self.registration_ids:
            found["registration_ids"] = list(self.registration_ids)
        if self.dead_letter_ids:
            found["dead_letter_ids"] = list(self.dead_letter_ids)
        if self.code is not None:
            found["code"] = self.code
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is not None:
                found[name] = moment.isoformat()
        return found


@dataclass(frozen=True)
class ReplayItem:
    kind: Literal["registration", "dead_letter"]
    target: str  # the registration id, or the dead letter's id as text
    outcome: ReplayOutcome
    detail: str


@dataclass(frozen=True)
class ReplayReport:
    dry_run: bool
    items: list[ReplayItem]
    audit_id: int = 0
    remaining: int = 0  # targets not reached within the caller's time budget (ask again)

    @property
    def affected(self) -> int:
        """What changed; in a dry run, what would have."""
        wanted = {"would_replay"} if self.dry_run else CHANGED
        return sum(1 for item in self.items if item.outcome in wanted)


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor[0].isoformat(), cursor[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor a page handed out; anything else is an InvalidRequestError (400)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        at, rid = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequestError("the cursor is not one a page handed out", code="invalid_cursor") from None
    if moment.tzinfo is None or not isinstance(rid, str):
        raise InvalidRequestError("the cursor is not one a page handed out", code="invalid_cursor")
    return (moment, rid)


_AGE = re.compile(r"^(\d{1,9})([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str, name: str = "age") -> timedelta:
    """`90`, `90s`, `30m`, `2h`, `7d`: how old (an operator's --older-than, ?older_than=)."""
    found = _AGE.match(text.strip())
    if found is None:
        raise InvalidRequestError(f"{name}: a whole number of s, m, h or d, e.g. 30m", code="invalid_query")
    return timedelta(seconds=int(found[1]) * _UNITS[found[2]])


def parse_instant(text: str, name: str = "time") -> datetime:
    """ISO 8601; without a zone, UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequestError(
            f"{name}: an ISO 8601 time, e.g. 2026-11-23T09:00:00+09:00", code="invalid_query"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
