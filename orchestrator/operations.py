"""The operator service: find what failed, understand it, replay it — the one layer `honnin ops`,
`/ops/v1` and the console share, so each action behaves (and is audited) the same everywhere.

A replay of a registration asks the verifier again for a parked verification's kept signature;
anything else (activated, failed for good, pending, replayed already) is skipped before any event
is made, so replaying twice, or replaying an activated registration, changes nothing. Its event id
derives from the parking decision, so two operators replaying the same one make one event. A
replay of a dead letter puts the message back on the queue that gave up on it. Many are taken at
the token bucket's rate. Every action, dry runs included, becomes one audit record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from orchestrator.errors import HonninError, InvalidRequestError, NotFoundError, failure_reason
from orchestrator.listing import AuditRecord, Cursor, RegistrationCounts, RegistrationQuery, summary_of
from orchestrator.model import Registration, State
from orchestrator.operations_views import (
    Actor,
    CurrentVerification,
    DeadLetterSummary,
    RegistrationDetail,
    RegistrationPage,
    ReplayItem,
    ReplayReport,
    ReplaySelection,
    Step,
    decision_of,
    decode_cursor,
    encode_cursor,
)
from orchestrator.ports import Bus, Clock, Store
from orchestrator.ratelimit import TokenBucket
from orchestrator.service import Orchestrator
from schemas.events import VerificationReplayRequested, derived_event_id
from schemas.payloads import ReplayRequestedPayload

Progress = Callable[[ReplayItem], None]
MAX_PAGE = 1000
PARKED = RegistrationQuery(state=State.CONFIRMED.value, verification="parked")


class LocalWorker(Protocol):
    """The embedded bus's worker in this process: a replayed dead letter is served here."""

    async def ready(self) -> None:
        """Queues declared and consumed (a worker started if this process runs none)."""
        ...

    async def settle(self) -> None:
        """Until what was sent is handled (or given up on again)."""
        ...


class Operations:
    """`local` serves replayed dead letters on the embedded bus (None: a broker keeps messages, and
    running workers take them); `rate` replays a second."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        clock: Clock,
        orchestrator: Orchestrator,
        *,
        local: LocalWorker | None = None,
        settle_seconds: float = 10.0,
        rate: float = 20.0,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._orchestrator = orchestrator
        self._local = local
        self._settle_seconds = settle_seconds
        self.rate = rate

    # --- reading ------------------------------------------------------------------------------

    async def list_registrations(
        self, query: RegistrationQuery, cursor: str | None = None, limit: int = 100
    ) -> RegistrationPage:
        """One page by (created_at, id); `next_cursor` continues it (InvalidRequestError for a bad one)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"limit is 1 to {MAX_PAGE}", code="invalid_limit")
        after = decode_cursor(cursor) if cursor else None
        rows = await self._store.registrations(query, after, limit + 1)
        more = len(rows) > limit
        items = rows[:limit]
        return RegistrationPage(items, encode_cursor(items[-1].cursor) if more else None)

    async def all_registrations(self, query: RegistrationQuery, page: int = 500) -> list[str]:
        """Every matching id, page after page (a replay by code or time takes them all)."""
        ids: list[str] = []
        after: Cursor | None = None
        while rows := await self._store.registrations(query, after, page):
            ids += [r.id for r in rows]
            after = rows[-1].cursor
        return ids

    async def counts(self) -> RegistrationCounts:
        return await self._store.registration_counts()

    async def show(self, registration_id: str) -> RegistrationDetail:
        """One registration, its whole history and every verdict (NotFoundError, QuarantinedError)."""
        stored = await self._store.load(registration_id)
        if stored is None:
            raise NotFoundError(f"no registration {registration_id}")
        history = await self._store.history(registration_id)
        reg = stored.registration
        return RegistrationDetail(
            summary=summary_of(reg, stored.version),
            expires_at=reg.expires_at,
            activated_at=reg.activated_at,
            ended_at=reg.ended_at,
            card_read=reg.card is not None,
            challenge_attempt=reg.challenge_attempt,
            verification=_current(reg),
            history=[Step.of(e) for e in history],
            decisions=[d for e in history if (d := decision_of(e)) is not None],
        )

    async def dead_letters(
        self, queue: str | None = None, after: int = 0, limit: int = 100
    ) -> list[DeadLetterSummary]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"limit is 1 to {MAX_PAGE}", code="invalid_limit")
        return [DeadLetterSummary.of(d) for d in await self._store.dead_letters(queue, after, limit)]

    async def audit(
        self, before: int | None = None, limit: int = 100, operator: str | None = None
    ) -> list[AuditRecord]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"limit is 1 to {MAX_PAGE}", code="invalid_limit")
        return await self._store.audit_records(before, limit, operator=operator)

    async def record(
        self,
        actor: Actor,
        action: str,
        parameters: Mapping[str, Any],
        affected: int,
        *,
        dry_run: bool = False,
    ) -> int:
        """Keep one operator action in the audit; returns its id."""
        record = AuditRecord(
            operator=actor.name,
            action=action,
            at=self._clock.now(),
            parameters=dict(parameters),
            affected=affected,
            dry_run=dry_run,
            channel=actor.channel,
        )
        return await self._store.add_audit(record)

    async def collect(self, actor: Actor, queues: list[str]) -> int:
        """A broker's dead letters (RabbitMQ's `<queue>.dead`) into the store, where they are listed
        and replayed like the embedded bus's; 0 on a bus that keeps them in the store already."""
        collect = getattr(self._bus, "collect_dead_letters", None)
        if collect is None:
            return 0
        moved = 0
        for queue in queues:
            moved += await collect(
                queue, lambda letter: self._store.add_dead_letter(letter, self._clock.now())
            )
        await self.record(actor, "dead_letters.collect", {"queues": queues}, moved)
        return moved

    # --- replaying ----------------------------------------------------------------------------

    async def targets(self, selection: ReplaySelection) -> list[tuple[str, str]]:
        """(kind, target) for everything the selection names, registrations by query included."""
        found = [("registration", rid) for rid in selection.registration_ids]
        if selection.by_query:
            query = RegistrationQuery(
                state=PARKED.state,
                verification=PARKED.verification,
                code=selection.code,
                updated_after=selection.since,
                updated_before=selection.until,
            )
            known = set(selection.registration_ids)
            found += [
                ("registration", rid) for rid in await self.all_registrations(query) if rid not in known
            ]
        found += [("dead_letter", str(letter_id)) for letter_id in selection.dead_letter_ids]
        return found

    async def replay(
        self,
        selection: ReplaySelection,
        actor: Actor,
        *,
        dry_run: bool = False,
        rate: float | None = None,
        reason: str | None = None,
        progress: Progress | None = None,
        targets: list[tuple[str, str]] | None = None,
        budget_seconds: float | None = None,
    ) -> ReplayReport:
        """Replay (or, dry, say what would be) each target at `rate` a second; one audit record.

        `targets` may be given when the caller listed them already (the CLI, to size its bar).
        With `budget_seconds` (the HTTP API, whose requests are bounded) it stops when the time is
        up and reports how many are left: asking again goes on, as what was replayed is skipped."""
        chosen = targets if targets is not None else await self.targets(selection)
        if not chosen and not selection.by_query:
            raise InvalidRequestError(
                "name registrations, dead letters, a code or a time range", code="no_selection"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_seconds if budget_seconds is not None else None
        bucket = TokenBucket(rate or self.rate, burst=1)
        items: list[ReplayItem] = []
        try:
            for kind, target in chosen:
                if not dry_run:
                    await bucket.take()
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0 and items:
                    break
                item = await self._one(kind, target, dry_run=dry_run, reason=reason, within=left)
                items.append(item)
                if progress is not None:
                    progress(item)
        finally:  # an interrupted replay is audited with what it did
            done = ReplayReport(dry_run, items)
            parameters = {**selection.parameters(), "targets": len(chosen), "done": len(items)}
            audit_id = await self.record(actor, "replay", parameters, done.affected, dry_run=dry_run)
        return ReplayReport(dry_run, items, audit_id, remaining=len(chosen) - len(items))

    async def _one(
        self, kind: str, target: str, *, dry_run: bool, reason: str | None, within: float | None
    ) -> ReplayItem:
        try:
            if kind == "registration":
                return await self._registration(target, dry_run, reason)
            return await self._dead_letter(int(target), dry_run, within)
        except HonninError as exc:  # one that cannot be read (the quarantine) does not stop the rest
            return ReplayItem(kind, target, "failed", failure_reason(exc))  # type: ignore[arg-type]

    async def _registration(self, rid: str, dry_run: bool, reason: str | None) -> ReplayItem:
        stored = await self._store.load(rid)
        if stored is None:
            return ReplayItem("registration", rid, "not_found", "no such registration")
        reg = stored.registration
        why_not = _not_replayable(reg)
        if why_not is not None:
            return ReplayItem("registration", rid, "skipped", why_not)
        verification = reg.verification
        assert verification is not None
        parked = f"parked with code {verification.code or '-'} after {verification.retries} retries"
        if dry_run:
            return ReplayItem(
                "registration", rid, "would_replay", parked + ": the verifier would be asked again"
            )
        episode = verification.decided_at.isoformat() if verification.decided_at else str(stored.version)
        event = VerificationReplayRequested(
            type="verification.replay_requested",
            event_id=derived_event_id("operator", "replay", rid, str(verification.attempt), episode),
            registration_id=rid,
            occurred_at=self._clock.now(),
            source="operator",
            payload=ReplayRequestedPayload(reason=reason),
        )
        result = await self._orchestrator.handle(event)
        if result.status == "applied":
            return ReplayItem("registration", rid, "replayed", parked + ": the verifier is asked again")
        if result.status == "duplicate":
            return ReplayItem("registration", rid, "skipped", "replayed already")
        return ReplayItem("registration", rid, "skipped", f"{result.code}: {result.message}")

    async def _dead_letter(self, letter_id: int, dry_run: bool, within: float | None) -> ReplayItem:
        target = str(letter_id)
        letter = await self._store.dead_letter(letter_id)
        if letter is None:
            return ReplayItem("dead_letter", target, "not_found", "no such dead letter")
        what = f"{letter.message.routing_key} back on {letter.queue}"
        what += f" ({letter.attempts} attempts: {letter.reason})"
        if dry_run:
            return ReplayItem("dead_letter", target, "would_replay", what)
        if self._local is None:  # the broker keeps it now: running workers take it
            await self._bus.send_to(letter.queue, letter.message)
            await self._store.delete_dead_letter(letter_id)
            return ReplayItem("dead_letter", target, "replayed", what)
        await self._local.ready()
        await self._bus.send_to(letter.queue, letter.message)
        try:
            async with asyncio.timeout(max(0.5, min(self._settle_seconds, within or self._settle_seconds))):
                await self._local.settle()
        except TimeoutError:
            return ReplayItem("dead_letter", target, "queued", what + "; listed until it is handled")
        again = await self._store.dead_letter(letter_id)
        if again is not None and again.last_seen_at != letter.last_seen_at:
            return ReplayItem("dead_letter", target, "dead_lettered_again", again.reason)
        await self._store.delete_dead_letter(letter_id)
        return ReplayItem("dead_letter", target, "handled", what)


def _not_replayable(reg: Registration) -> str | None:
    """Why a replay would change nothing, or None when it is a parked verification with its signature."""
    verification = reg.verification
    status = verification.status if verification else "none"
    if reg.state is not State.CONFIRMED:
        return f"event_not_accepted: {reg.state.value} (verification {status}), nothing to replay"
    if verification is None or verification.status != "parked":
        return f"not_parked: verification {status}, nothing to replay"
    if reg.signature is None:
        return "not_parked: parked without a kept signature, the person signs again"
    return None


def _current(reg: Registration) -> CurrentVerification | None:
    v = reg.verification
    if v is None:
        return None
    return CurrentVerification(
        v.attempt, v.status, v.retries, v.code, v.message, v.retry_at, v.decided_at, v.certificate_fingerprint
    )
