"""Property: the pure state machine, driven like the loop drives it (deduplicated by event id,
early steps deferred, deadlines swept), keeps the tables whatever the order of events."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings

from adapters.clock import FakeClock
from orchestrator.machine import RegistrationMachine
from orchestrator.model import Context, Registration
from orchestrator.ports import HistoryEntry
from schemas.events import DeadlineReached, Envelope, derived_event_id
from schemas.payloads import DeadlineReachedPayload
from tests import factory
from tests.flows import ACTION_LISTS, OUTCOMES, PROFILES, RID, check_history, check_registration, events

EVENTS = events()
MACHINE = RegistrationMachine()


class Loop:
    """What the orchestrator does around the machine, in memory: enough to run it step by step."""

    def __init__(self) -> None:
        self.clock = FakeClock(factory.NOW)
        self.registration: Registration | None = None
        self.history: list[HistoryEntry] = []
        self.emitted: list[Envelope] = []

    def apply(self, event: Envelope) -> None:
        if any(entry.event_id == str(event.event_id) for entry in self.history):
            return  # processed: the store would refuse it
        now = self.clock.now()
        ctx = Context(now=now, profiles=PROFILES, new_challenge="Y2hhbGxlbmdl", jitter=0.5)
        outcome = MACHINE.apply(self.registration, event, ctx)
        if outcome.rejection is not None and outcome.rejection.retryable:
            return  # deferred: the bus brings it again
        self.history.append(
            HistoryEntry(
                RID,
                str(event.event_id),
                event.type,
                event.source,
                event.occurred_at,
                now,
                "rejected" if outcome.rejection else "applied",
                outcome.from_state.value,
                outcome.to_state.value,
            )
        )
        if outcome.applied is not None:
            self.registration = outcome.applied.registration
            self.emitted += outcome.applied.emitted

    def sweep(self) -> None:
        deadline = self.registration.next_deadline() if self.registration else None
        if deadline is None or deadline > self.clock.now():
            return
        self.apply(
            DeadlineReached(
                type="registration.deadline_reached",
                event_id=derived_event_id(RID, "deadline", deadline.isoformat()),
                registration_id=RID,
                occurred_at=self.clock.now(),
                source="orchestrator",
                payload=DeadlineReachedPayload(deadline=deadline),
            )
        )


@settings(max_examples=settings.default.max_examples * 5)
@given(ACTION_LISTS)
def test_any_sequence_keeps_the_tables_and_ends_once(actions: list[tuple[str, object]]) -> None:
    loop = Loop()
    for kind, value in actions:
        if kind == "deliver":
            loop.apply(EVENTS[str(value)])
        elif kind == "advance":
            loop.clock.advance(timedelta(minutes=int(str(value))))
        else:
            loop.sweep()
        check_history(loop.history)
        check_registration(loop.registration, loop.history)
    outcomes = [e.type for e in loop.emitted if e.type in OUTCOMES]
    assert len(outcomes) <= 1
    if loop.registration is not None and loop.registration.terminal:
        assert outcomes == [f"registration.{loop.registration.state.value}"]
    ids = [str(e.event_id) for e in loop.emitted]
    assert len(set(ids)) == len(ids), "two emitted events share an id"
