"""The ports the orchestrator owns; adapters satisfy them without inheriting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from orchestrator.listing import AuditRecord as AuditRecord  # the listing's records are the port's
from orchestrator.listing import Cursor as Cursor
from orchestrator.listing import RegistrationCounts as RegistrationCounts
from orchestrator.listing import RegistrationQuery as RegistrationQuery
from orchestrator.listing import RegistrationSummary as RegistrationSummary
from orchestrator.model import Registration


@dataclass(frozen=True)
class StoredRegistration:
    registration: Registration
    version: int


@dataclass(frozen=True)
class HistoryEntry:
    """One event as it was applied to (or refused by) a registration."""

    registration_id: str
    event_id: str
    event_type: str
    source: str
    occurred_at: datetime
    recorded_at: datetime
    outcome: Literal["applied", "rejected"]
    from_state: str
    to_state: str
    code: str | None = None
    message: str | None = None
    event: bytes = b""  # the envelope as JSON; stores encrypt it


@dataclass(frozen=True)
class HistoryCount:
    """How many history entries of one kind an hour (UTC) held: the console's chart over time.

    `code` is a refusal's code, or the code of a verification the event decided."""

    hour: datetime
    outcome: str
    from_state: str
    to_state: str
    code: str | None
    count: int


@dataclass(frozen=True)
class OutboxMessage:
    """An event to publish after the write that produced it; `message_id` is its event id."""

    message_id: str
    routing_key: str
    registration_id: str
    body: bytes
    created_at: datetime
    seq: int = 0


@dataclass(frozen=True)
class FacilityEvent:
    """An event for a facility: a feed row and, when the facility has a webhook, a delivery.

    `body` is the envelope exactly as the feed serves it and the webhook carries it; `seq` is the
    feed position the store gave it (0 until written).
    """

    facility_id: str
    event_id: str
    event_type: str
    registration_id: str | None
    body: bytes
    created_at: datetime
    seq: int = 0


@dataclass(frozen=True)
class OutboxLease:
    """Outbox rows written already leased to the worker that publishes them itself right after
    the commit (the direct path): other relays skip them until `until`, that worker's restart
    takes them back at once, and its stop gives them back to all. Taken only when every earlier
    unsent message of the registration is that worker's too (see `Committed`)."""

    worker: str
    until: datetime


@dataclass(frozen=True)
class Commit:
    """Everything one event changes, written at once or not at all.

    `expected_version` 0 means the registration must not exist yet; `registration` None
    writes no registration (a refused event for a registration that does not exist); `lease`
    None writes the outbox rows free for any relay to claim.
    """

    event_id: str
    registration_id: str
    expected_version: int
    registration: Registration | None
    history: HistoryEntry
    outbox: Sequence[OutboxMessage] = field(default_factory=tuple)
    facility_events: Sequence[FacilityEvent] = field(default_factory=tuple)
    lease: OutboxLease | None = None


@dataclass(frozen=True)
class Committed:
    """What a commit came to: the registration's new version, and whether its outbox rows were
    written under the commit's lease, for the committing worker to publish itself.

    A registration's messages leave in commit order. So the lease is taken only when every earlier
    message of the registration still unsent is leased to the same worker (its lease running):
    `behind` names those, oldest first (none, usually), and the worker's relay may take the new
    ones only while it holds all of them itself. When one is free, held back after a refusal or
    another worker's, the rows are written free, behind it, and a sweep publishes them in order."""

    version: int
    leased: bool = False
    behind: tuple[str, ...] = ()


QuarantineKind = Literal["registration", "history", "outbox", "feed", "delivery", "webhook", "dead_letter"]


@dataclass(frozen=True)
class QuarantineEntry:
    """A stored row that could not be decoded, moved aside so no worker meets it again.

    `key` names the row (a registration or event id, a facility id); `raw` holds the rows as they
    were, by table, as JSON (sealed blobs still sealed), so `release` can put them back."""

    id: int
    kind: str
    key: str
    reason: str
    raw: str
    quarantined_at: datetime


@dataclass(frozen=True)
class MigrationBatch:
    """One batch of `honnin migrate`: rows looked at after the cursor, and what became of them.

    `rewritten` (or, in a dry run, would be), `changed` (a worker rewrote it meanwhile: current
    now), `quarantined` (it does not decode; a dry run only counts it); `last` the next cursor."""

    scanned: int
    rewritten: int
    changed: int
    quarantined: int
    last: str


EndpointState = Literal["active", "failing", "disabled"]
DeliveryState = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class WebhookEndpoint:
    """A facility's webhook: where to, the signing secrets, and how delivery goes.

    `previous_secret` keeps signing beside `secret` until `previous_until` after a rotation.
    """

    facility_id: str
    url: str
    secret: str
    created_at: datetime
    updated_at: datetime
    state: EndpointState = "active"
    previous_secret: str | None = None
    previous_until: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_delivered_at: datetime | None = None


@dataclass(frozen=True)
class PendingDelivery:
    """A delivery claimed for sending: the event, where it goes and how far its schedule is."""

    event_id: str
    facility_id: str
    event_type: str
    body: bytes
    attempts: int
    scheduled_from: datetime  # when its retry schedule began: the commit, or the last replay
    endpoint: WebhookEndpoint


@dataclass(frozen=True)
class DeliveryAttempt:
    """What one attempt decided: `state` delivered, failed (waits for a replay) or pending again at
    `next_attempt_at`; `endpoint_state` changes the endpoint too (410: disabled; schedule out: failing)."""

    event_id: str
    at: datetime
    state: DeliveryState
    status: int | None
    error: str | None
    next_attempt_at: datetime | None = None
    endpoint_state: EndpointState | None = None


class Store(Protocol):
    async def load(self, registration_id: str) -> StoredRegistration | None: ...

    async def is_processed(self, event_id: str) -> bool: ...

    async def load_for_event(self, registration_id: str, event_id: str) -> StoredRegistration | None:
        """`load` for an event that may be a duplicate, in one read: DuplicateEventError when the
        event id was processed already (its registration not decoded)."""
        ...

    async def commit(self, commit: Commit) -> Committed:
        """Write the commit atomically; the new version, and whether the lease was taken.

        Raises DuplicateEventError when the event id was processed already and
        VersionConflictError when the registration is not at `expected_version`.
        """
        ...

    async def history(self, registration_id: str) -> list[HistoryEntry]: ...

    async def history_counts(self, since: datetime, until: datetime) -> list[HistoryCount]:
        """History entries recorded in [since, until), counted by hour, outcome, states and code."""
        ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of open registrations whose next deadline has passed."""
        ...

    async def claim_outbox(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxMessage]:
        """Unsent messages, oldest first, leased to `worker` so other relays skip them; none of a
        registration whose earlier unsent message another worker's lease or a deferral holds."""
        ...

    async def release_outbox(self, worker: str) -> int:
        """Give up `worker`'s leases on unsent messages (its relay stopped), so that any relay may
        claim them at once instead of after the lease; how many."""
        ...

    async def mark_sent(self, message_ids: Sequence[str], now: datetime) -> None: ...

    async def purge_ended(self, before: datetime, limit: int) -> int:
        """Forget registrations that ended without activation before `before`."""
        ...

    async def in_state(self, state: str, limit: int) -> list[str]:
        """Ids of registrations in `state`, least recently changed first (operators' lists)."""
        ...

    async def outbox_backlog(self) -> int:
        """How many outbox messages wait to be published."""
        ...

    async def outbox_oldest_unsent(self) -> datetime | None:
        """When the oldest message still waiting to be published was written (its age is the lag)."""
        ...

    async def defer_outbox(self, message_ids: Sequence[str], until: datetime) -> None:
        """Leave these messages, and every later one of their registrations, unclaimed until `until`
        (a destination refused them: the rest of the outbox goes on)."""
        ...

    async def feed(self, facility_id: str, after: int, limit: int) -> list[FacilityEvent]:
        """This facility's events with a feed position above `after`, in commit order."""
        ...

    async def purge_feed(self, before: datetime, limit: int) -> int:
        """Forget facility events (and their deliveries) written before `before` (the retention)."""
        ...

    async def put_webhook(self, endpoint: WebhookEndpoint) -> None:
        """Create or replace the facility's endpoint (active again: its pending deliveries go on)."""
        ...

    async def webhook(self, facility_id: str) -> WebhookEndpoint | None: ...

    async def webhooks(self) -> list[WebhookEndpoint]:
        """Every endpoint, by facility id (operators' list)."""
        ...

    async def delete_webhook(self, facility_id: str) -> bool:
        """Remove the endpoint and its undelivered deliveries; the feed keeps the events."""
        ...

    async def add_delivery(self, event: FacilityEvent) -> bool:
        """A delivery of an event outside any commit (a test event); False without an endpoint."""
        ...

    async def claim_deliveries(
        self, worker: str, now: datetime, lease_seconds: float, limit: int, per_endpoint: int
    ) -> list[PendingDelivery]:
        """Due deliveries of active endpoints, leased to `worker`; no endpoint gets more than
        `per_endpoint` in flight across all workers, and each endpoint gets its share of `limit`."""
        ...

    async def record_attempt(self, worker: str, attempt: DeliveryAttempt) -> None:
        """Write an attempt's outcome on the delivery this worker leased, and on its endpoint."""
        ...

    async def replay_deliveries(self, facility_id: str, since: datetime | None, now: datetime) -> int:
        """Make the facility's undelivered deliveries (created at or after `since`) due at `now`
        with a fresh schedule, and its endpoint active again; returns how many."""
        ...

    async def delivery_backlog(self, facility_id: str | None = None) -> int:
        """How many deliveries are not delivered yet."""
        ...

    # --- Operators: the quarantine, dead letters, migrations (the console builds on these) ---

    async def list_quarantine(
        self, kind: str | None = None, after: int = 0, limit: int = 100
    ) -> list[QuarantineEntry]:
        """Quarantined rows with an id above `after`, oldest first; `kind` filters."""
        ...

    async def quarantined(self, entry_id: int) -> QuarantineEntry | None: ...

    async def release_quarantined(self, entry_id: int) -> bool:
        """Put the rows back where they were (after a fix) and forget the entry; the next read
        decodes them again. PermanentError `release_conflict` when a row with the key exists again."""
        ...

    async def discard_quarantined(self, entry_id: int) -> bool:
        """Forget the entry and its rows for good."""
        ...

    async def quarantine_count(self, kind: str | None = None) -> int: ...

    async def add_dead_letter(self, letter: DeadLetter, at: datetime) -> None:
        """Keep a message a queue gave up on; the same message on the same queue again updates
        its reason, attempts and last-seen time."""
        ...

    async def dead_letters(
        self, queue: str | None = None, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters with an id above `after`, oldest first; `queue` filters."""
        ...

    async def dead_letter(self, letter_id: int) -> DeadLetter | None: ...

    async def delete_dead_letter(self, letter_id: int) -> bool:
        """Forget one (after replaying it, or deciding it is not to be replayed)."""
        ...

    async def dead_letter_count(self, queue: str | None = None) -> int: ...

    async def migrate(self, after: str, limit: int, *, dry_run: bool) -> MigrationBatch:
        """Rewrite up to `limit` registrations stored at an older schema version (or without the
        listing columns), with ids above `after`, at the current one; never bumps a registration's
        version or skips a writer's."""
        ...

    async def registrations(
        self, query: RegistrationQuery, after: Cursor | None = None, limit: int = 100
    ) -> list[RegistrationSummary]:
        """Registrations matching `query`, by (created_at, id) after the cursor, from indexed
        columns only (no blob is opened; rows moved to the quarantine are not there)."""
        ...

    async def registration_counts(self) -> RegistrationCounts: ...

    async def add_audit(self, record: AuditRecord) -> int:
        """Keep an operator action; returns its id."""
        ...

    async def audit_records(
        self, before: int | None = None, limit: int = 100, *, operator: str | None = None
    ) -> list[AuditRecord]:
        """Operator actions with an id below `before`, newest first; `operator` filters."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class BusMessage:
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    message: BusMessage
    queue: str
    attempt: int  # 1 on first delivery
    first_seen_at: datetime | None = None  # when a consumer first saw it; travels with its retries


@dataclass(frozen=True)
class DeadLetter:
    """A message a queue gave up on, with the reason an operator reads before replaying it.

    `id` is the store's (0 until kept); `first_seen_at` when a consumer first saw the message,
    `last_seen_at` when it was given up on."""

    queue: str
    message: BusMessage
    reason: str
    attempts: int
    id: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None


class DeadLetterSink(Protocol):
    """Where the embedded bus keeps its dead letters: the store, so they outlive the process."""

    async def add_dead_letter(self, letter: DeadLetter, at: datetime) -> None: ...


Handler = Callable[[Delivery], Awaitable[None]]


class Bus(Protocol):
    """Topic routing, at-least-once delivery, dead letters.

    A handler that returns acks; one that raises RetryableError (or anything unexpected) is
    redelivered with backoff until the redelivery window (from when a consumer first saw the
    message) has passed; PermanentError dead-letters at once.
    """

    async def declare_queue(
        self, name: str, bindings: Sequence[str], *, max_length: int | None = None
    ) -> None:
        """Declare a queue bound to `bindings`. With `max_length`, it keeps at most that many messages
        and drops the oldest to take a new one, never refusing a publish (for outside consumers)."""
        ...

    async def publish(self, message: BusMessage) -> None:
        """Returns once the broker has taken the message; raises UnroutableError or
        BusUnavailableError when it has not."""
        ...

    async def send_to(self, queue: str, message: BusMessage) -> None:
        """Put a message on one queue only, past the routing (replaying a dead letter to the queue
        that gave up on it); raises as `publish` does."""
        ...

    async def consume(self, queue: str, handler: Handler) -> None: ...

    @property
    def deliveries_at_once(self) -> int:
        """How many deliveries a consumer of this bus handles at the same time (its prefetch): at
        1, a handler that waits holds up its whole queue."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class WebhookRequest:
    """One signed POST: the sender signs `body` with every secret (a rotation signs with two)."""

    url: str
    message_id: str
    timestamp: datetime
    body: bytes
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class WebhookResponse:
    """The receiver's status, or None with the reason when there was no answer (refused, timed out,
    an address that is not allowed)."""

    status: int | None
    error: str | None = None


class WebhookSender(Protocol):
    async def send(self, request: WebhookRequest) -> WebhookResponse:
        """Never raises for the receiver's failures: they are a response without a status."""
        ...

    async def close(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# --- Outbound mail ------------------------------------------------------------------------------

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class MailMessage:
    """One mail, rendered; the mailer adds From, Date and the MIME structure.

    `message_id` names it everywhere — the Message-ID header, the outbox file, the retry
    schedule — so it is letters, digits and ._- only and carries no personal fact. The same id
    on a retry lets the outbox overwrite and receivers recognise the copy.
    """

    message_id: str
    to: str
    subject: str
    text: str
    html: str | None = None

    def __post_init__(self) -> None:
        mid = self.message_id
        if not (0 < len(mid) <= 128 and set(mid) <= _ID_CHARS and mid[0] not in "._-"):
            raise ValueError("message_id: 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
        for label, value in (("to", self.to), ("subject", self.subject)):
            if "\r" in value or "\n" in value:
                raise ValueError(f"{label}: a header value holds no line break")
        local, at, domain = self.to.rpartition("@")
        if not (local and at and domain) or any(ch.isspace() for ch in self.to):
            raise ValueError("to: one address, local@domain")


class Mailer(Protocol):
    """Hands a mail over for delivery: SMTP, or the embedded file outbox.

    `send` returns once the server (or the folder) has taken the message. It raises
    MailTemporaryError when the same message may go later (4xx, connection refused or dropped,
    timeout, a server set up wrongly) and MailPermanentError when it will not (5xx to the
    recipient or the content, an address the transport cannot carry).
    """

    async def send(self, message: MailMessage) -> None: ...

    async def close(self) -> None: ...


# --- Metrics ------------------------------------------------------------------------------------


class Metrics(Protocol):
    """What the service loop counts as it works; an adapter exports it (Prometheus) or records it.

    Labels are bounded sets (event types, states, codes, queue names): never an id or a fact."""

    def event_handled(self, event_type: str, outcome: str) -> None:
        """One inbound event: applied, rejected, duplicate, deferred (retry later) or conflict."""
        ...

    def transition(self, from_state: str, to_state: str, profile: str) -> None: ...

    def verification(self, outcome: str, code: str) -> None:
        """A verification decided: passed (code ''), failed, retrying or parked, with its code."""
        ...

    def verification_retry(self, code: str) -> None: ...

    def handler_seconds(self, queue: str, outcome: str, seconds: float) -> None:
        """How long a consumer's handler took for one delivery, and how it ended (ok, retry, dead)."""
        ...

    def redelivered(self, queue: str) -> None: ...

    def webhook_delivery(self, outcome: str) -> None:
        """One webhook attempt: delivered, retry, failed (schedule out) or disabled (410)."""
        ...
