"""The orchestrator's loop for one event: load ▸ apply ▸ save with outbox, in one write."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import structlog

from orchestrator import messages
from orchestrator.errors import (
    CardInfoNotReadError,
    DuplicateEventError,
    EventDeferredError,
    NotFoundError,
    PoisonMessageError,
    VersionConflictError,
)
from orchestrator.machine import RegistrationMachine
from orchestrator.model import Context, Outcome, Profile, Registration, State
from orchestrator.observations import NoMetrics, decided_code, decided_message, observe
from orchestrator.ports import (
    Clock,
    Commit,
    Delivery,
    FacilityEvent,
    HistoryEntry,
    Metrics,
    OutboxLease,
    OutboxMessage,
    Store,
    StoredRegistration,
)
from orchestrator.states.rules import emit
from orchestrator.topology import FACILITY_EVENTS
from orchestrator.wakeup import Wakeup
from schemas.events import INBOUND_TYPES, Envelope, EnvelopeError, EventRejected, parse_event
from schemas.payloads import CardFacts

log = structlog.get_logger("honnin.orchestrator")


@dataclass(frozen=True)
class HandleResult:
    status: Literal["applied", "rejected", "duplicate"]
    state: State | None = None
    code: str | None = None
    message: str | None = None
    registration: Registration | None = None  # as this event left it, when applied (no reload)


class DirectPath(Protocol):
    """The relay of this worker, publishing a commit's messages itself right after the commit."""

    def lease(self) -> OutboxLease: ...

    def hand_over(self, messages: Sequence[OutboxMessage], behind: Sequence[str]) -> bool: ...


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Orchestrator:
    """Applies events to registrations exactly once, whatever the bus redelivers.

    Events of one registration take turns in this process (a lock per registration), so they never
    conflict with each other here; a conflict with another process is retried after a short,
    growing, random wait (full jitter), so competing workers do not retry in lockstep.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        profiles: dict[str, Profile],
        *,
        conflict_retries: int = 10,
        conflict_backoff: tuple[float, float] = (0.005, 0.25),
        early_event_wait: float = 0.0,
        facility_queue: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics: Metrics = metrics or NoMetrics()
        self._clock = clock
        self._profiles = profiles
        self._conflict_retries = conflict_retries
        self._backoff_base, self._backoff_cap = conflict_backoff
        self._early_wait = early_event_wait
        self._facility_queue = facility_queue  # facility events also go to the bus (AMQP consumers)
        self._machine = RegistrationMachine()
        self._turns: dict[str, _Turn] = {}
        self.committed = asyncio.Event()  # wakes the outbox relay
        self.direct: DirectPath | None = None  # set while this worker's relay runs
        self.facility_heard = Wakeup()  # wakes feed long polls and the delivery worker

    def _context(self) -> Context:
        return Context(
            now=self._clock.now(),
            profiles=self._profiles,
            new_challenge=base64.b64encode(secrets.token_bytes(32)).decode(),
            jitter=random.random(),  # noqa: S311 - jitter, not a secret
        )

    async def handle(
        self, event: Envelope, known: StoredRegistration | None = None, *, wait_if_early: bool = False
    ) -> HandleResult:
        """`known`: the registration as the caller just read it, saving the first load (a stale one
        only costs a version conflict and a fresh load).

        An event that overtook an earlier step of its registration raises EventDeferredError (the
        bus redelivers it later, an HTTP caller tells the person to do that step first). With
        `wait_if_early` (the bus's deliveries), it is tried once more here after the orchestrator's
        `early_event_wait`, out of its turn: the earlier step is usually being applied by another
        worker at that moment, and a redelivery is a round trip through the broker's delay queue
        (100 ms or more). One wait, not several short ones: under load the earlier step takes tens
        of milliseconds, and each try that comes too soon costs a read and the rules for nothing
        (measured: 5, 10, 20, 40 ms made the workers' CPU per registration 10-25 % higher)."""
        try:
            return await self._in_turn(event, known)
        except EventDeferredError as exc:
            if not (wait_if_early and self._early_wait > 0):
                self._deferred(event, exc, tries=1)
                raise
            _bound(event).debug("event.early", code=exc.code, wait=self._early_wait)
            self._metrics.event_handled(event.type, "waited")
        await asyncio.sleep(self._early_wait)
        try:
            return await self._in_turn(event, None)
        except EventDeferredError as exc:
            self._deferred(event, exc, tries=2)
            raise

    async def _in_turn(self, event: Envelope, known: StoredRegistration | None) -> HandleResult:
        async with self._turn(event.registration_id):
            return await self._handle(event, known)

    def _deferred(self, event: Envelope, exc: EventDeferredError, *, tries: int) -> None:
        _bound(event).info("event.deferred", code=exc.code, tries=tries)
        self._metrics.event_handled(event.type, "deferred")

    @contextlib.asynccontextmanager
    async def _turn(self, registration_id: str) -> AsyncIterator[None]:
        """One event of a registration at a time in this process; the lock goes with its last user."""
        turn = self._turns.setdefault(registration_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[registration_id]

    async def _handle(self, event: Envelope, known: StoredRegistration | None = None) -> HandleResult:
        bound = _bound(event)
        try:
            stored = await self._first_read(event, known)
        except DuplicateEventError:
            return self._duplicate(bound, event)
        for conflicts in range(self._conflict_retries):
            if conflicts:
                stored = await self._store.load(event.registration_id)
            ctx = self._context()
            outcome = self._machine.apply(stored.registration if stored else None, event, ctx)
            if outcome.rejection and outcome.rejection.retryable:
                raise EventDeferredError(outcome.rejection.message, code=outcome.rejection.code)
            commit = _commit(stored, outcome, ctx, facility_queue=self._facility_queue)
            direct = self.direct if commit.outbox else None
            if direct is not None:
                commit = replace(commit, lease=direct.lease())
            try:
                committed = await self._store.commit(commit)
            except DuplicateEventError:
                return self._duplicate(bound, event)
            except VersionConflictError:
                bound.info("event.version_conflict", retry=conflicts + 1)
                await asyncio.sleep(self._conflict_wait(conflicts))
                continue
            if direct is not None and committed.leased:  # else they wait behind earlier ones, for a sweep
                direct.hand_over(commit.outbox, committed.behind)
            self.committed.set()
            if commit.facility_events:
                self.facility_heard.notify()
            observe(self._metrics, outcome)
            return _report(bound, outcome)
        self._metrics.event_handled(event.type, "conflict")
        raise VersionConflictError(f"registration {event.registration_id} kept changing")

    async def _first_read(
        self, event: Envelope, known: StoredRegistration | None
    ) -> StoredRegistration | None:
        """The registration as this event finds it, and whether the event is a duplicate, in one read."""
        if known is None:
            return await self._store.load_for_event(event.registration_id, str(event.event_id))
        if await self._store.is_processed(str(event.event_id)):
            raise DuplicateEventError(f"event {event.event_id} was processed already")
        return known

    def _duplicate(self, bound: structlog.typing.FilteringBoundLogger, event: Envelope) -> HandleResult:
        bound.info("event.duplicate")
        self._metrics.event_handled(event.type, "duplicate")
        return HandleResult("duplicate")

    def _conflict_wait(self, conflicts: int) -> float:
        """Full jitter: anywhere up to base × 2ⁿ, capped (another process wrote the registration)."""
        ceiling = min(self._backoff_cap, self._backoff_base * 2**conflicts)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret

    async def on_delivery(self, delivery: Delivery) -> None:
        """The bus handler: a message that cannot be an inbound event is poison."""
        try:
            event = parse_event(delivery.message.body)
        except EnvelopeError as exc:
            raise PoisonMessageError(exc.message) from None
        if event.type not in INBOUND_TYPES:
            raise PoisonMessageError(f"{event.type} is not an event the orchestrator accepts")
        await self.handle(event, wait_if_early=True)

    async def status(self, registration_id: str) -> StoredRegistration:
        stored = await self._store.load(registration_id)
        if stored is None:
            raise NotFoundError(f"no registration {registration_id}")
        return stored

    async def history(self, registration_id: str) -> list[HistoryEntry]:
        return await self._store.history(registration_id)

    async def reflect_card_info(self, registration_id: str) -> CardFacts:
        """【情報を反映する】: the card's facts for the form, or the seed's error before the read."""
        registration = (await self.status(registration_id)).registration
        if registration.card is None:
            raise CardInfoNotReadError(messages.CARD_INFO_NOT_READ)
        return registration.card


def _bound(event: Envelope) -> structlog.typing.FilteringBoundLogger:
    """The log with the event's registration, id and type on every line."""
    bound: structlog.typing.FilteringBoundLogger = log.bind(
        registration_id=event.registration_id, event_id=str(event.event_id), event_type=event.type
    )
    return bound


def _commit(
    stored: StoredRegistration | None, outcome: Outcome, ctx: Context, *, facility_queue: bool
) -> Commit:
    event = outcome.event
    emitted: Sequence[Envelope] = outcome.applied.emitted if outcome.applied else ()
    rejection = outcome.rejection
    if rejection is not None:
        payload = {
            "rejected_event_id": str(event.event_id),
            "rejected_type": event.type,
            "code": rejection.code,
            "message": rejection.message,
        }
        emitted = [emit(EventRejected, event, ctx, payload)]
    history = HistoryEntry(
        registration_id=event.registration_id,
        event_id=str(event.event_id),
        event_type=event.type,
        source=event.source,
        occurred_at=event.occurred_at,
        recorded_at=ctx.now,
        outcome="rejected" if rejection else "applied",
        from_state=outcome.from_state.value,
        to_state=outcome.to_state.value,
        code=rejection.code if rejection else decided_code(outcome),
        message=rejection.message if rejection else decided_message(outcome),
        event=_recorded(event, stored, ctx),
    )
    registration = outcome.applied.registration if outcome.applied else None
    owner = registration or (stored.registration if stored else None)
    bodies = [(e, _body(e, owner)) for e in emitted]
    outbox = [
        OutboxMessage(
            message_id=str(e.event_id),
            routing_key=e.type,
            registration_id=e.registration_id,
            body=body,
            created_at=ctx.now,
        )
        for e, body in bodies
        if facility_queue or e.type not in FACILITY_EVENTS
    ]
    heard = [
        FacilityEvent(owner.facility_id, str(e.event_id), e.type, e.registration_id, body, ctx.now)
        for e, body in bodies
        if owner is not None and e.type in FACILITY_EVENTS
    ]
    return Commit(
        event_id=str(event.event_id),
        registration_id=event.registration_id,
        expected_version=stored.version if stored else 0,
        registration=registration,
        history=history,
        outbox=outbox,
        facility_events=heard,
    )


def _body(event: Envelope, owner: Registration | None) -> bytes:
    """An event as it is kept: a facility's shows the facility its own reference as the
    registration_id (the feed, the webhook and the facility queue carry the same bytes)."""
    if event.type in FACILITY_EVENTS and owner is not None and owner.reference != event.registration_id:
        event = event.model_copy(update={"registration_id": owner.reference})
    return event.model_dump_json().encode()


def _recorded(event: Envelope, stored: StoredRegistration | None, ctx: Context) -> bytes:
    """The event as history keeps it: a signing certificate carries the four facts, so unless the
    profile retains certificates only its fingerprint is kept, and the signature not at all."""
    data = event.model_dump(mode="json")
    retain = stored is not None and ctx.profile(stored.registration).retain_certificate
    if event.type in ("card.signature_submitted", "xid.signature_submitted") and not retain:
        der = base64.b64decode(data["payload"]["certificate"])
        data["payload"]["certificate"] = "sha256:" + hashlib.sha256(der).hexdigest()
        data["payload"]["signature"] = "[not kept]"
    return json.dumps(data, ensure_ascii=False).encode()


def _report(bound: structlog.typing.FilteringBoundLogger, outcome: Outcome) -> HandleResult:
    if outcome.rejection is not None:
        bound.warning("event.rejected", state=outcome.from_state.value, code=outcome.rejection.code)
        return HandleResult("rejected", outcome.from_state, outcome.rejection.code, outcome.rejection.message)
    bound.info("event.applied", from_state=outcome.from_state.value, to_state=outcome.to_state.value)
    after = outcome.applied.registration if outcome.applied else None
    return HandleResult("applied", outcome.to_state, registration=after)
