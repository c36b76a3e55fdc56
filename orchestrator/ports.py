"""The ports the orchestrator owns; adapters satisfy them without inheriting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

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
class OutboxMessage:
    """An event to publish after the write that produced it; `message_id` is its event id."""

    message_id: str
    routing_key: str
    registration_id: str
    body: bytes
    created_at: datetime
    seq: int = 0


@dataclass(frozen=True)
class Commit:
    """Everything one event changes, written at once or not at all.

    `expected_version` 0 means the registration must not exist yet; `registration` None
    writes no registration (a refused event for a registration that does not exist).
    """

    event_id: str
    registration_id: str
    expected_version: int
    registration: Registration | None
    history: HistoryEntry
    outbox: Sequence[OutboxMessage] = field(default_factory=tuple)


class Store(Protocol):
    async def load(self, registration_id: str) -> StoredRegistration | None: ...

    async def is_processed(self, event_id: str) -> bool: ...

    async def commit(self, commit: Commit) -> int:
        """Write the commit atomically and return the new version.

        Raises DuplicateEventError when the event id was processed already and
        VersionConflictError when the registration is not at `expected_version`.
        """
        ...

    async def history(self, registration_id: str) -> list[HistoryEntry]: ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of open registrations whose next deadline has passed."""
        ...

    async def claim_outbox(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxMessage]:
        """Unsent messages, oldest first, leased to `worker` so other relays skip them."""
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


@dataclass(frozen=True)
class DeadLetter:
    """A message a queue gave up on, with the reason an operator reads before replaying it."""

    queue: str
    message: BusMessage
    reason: str
    attempts: int


Handler = Callable[[Delivery], Awaitable[None]]


class Bus(Protocol):
    """Topic routing, at-least-once delivery, dead letters.

    A handler that returns acks; one that raises RetryableError (or anything unexpected) is
    redelivered until the queue's delivery limit; PermanentError dead-letters at once.
    """

    async def declare_queue(self, name: str, bindings: Sequence[str]) -> None: ...

    async def publish(self, message: BusMessage) -> None:
        """Returns once the broker has taken the message; raises UnroutableError or
        BusUnavailableError when it has not."""
        ...

    async def consume(self, queue: str, handler: Handler) -> None: ...

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
