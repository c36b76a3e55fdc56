"""Random event sequences for one registration, and the rules every sequence must keep.

A sequence is a list of actions: deliver one of a fixed set of events (so a second delivery is
a duplicate, and any order is a reordering), move the clock, or let the sweeper turn passed
deadlines into events. The checks hold whatever the sequence: only transitions the state
tables allow, nothing after a terminal state, one outcome at most, and a processed event
changes nothing when it comes again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from orchestrator.model import TERMINAL, Registration, State
from orchestrator.ports import HistoryEntry
from orchestrator.states import TABLE
from schemas.events import AnyEvent, parse_event
from tests import factory

RID = "reg-property-01"
OUTCOMES = frozenset({"registration.activated", "registration.expired", "registration.cancelled"})
TIMEOUT = timedelta(minutes=30)
PROFILES = factory.profiles(timeout=TIMEOUT, retry_limit=1)

ALLOWED = frozenset(
    (rule.trigger, state.value, (rule.dest or state).value)
    for state, rules in TABLE.items()
    for rule in rules
)
"""(event type, from state, to state) of every transition the tables declare."""


def _event(kind: str, name: str, payload: dict[str, Any] | None = None, **changes: Any) -> AnyEvent:
    """A fixed event id per name: delivering the same name twice is a duplicate."""
    raw = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"honnin:test:{name}")),
        "type": kind,
        "registration_id": RID,
        "occurred_at": factory.NOW.isoformat(),
        "source": factory.SOURCES.get(kind, "orchestrator"),
        "payload": factory.PAYLOADS.get(kind, {}) if payload is None else payload,
        **changes,
    }
    return parse_event(raw)


def _verdict(attempt: int, outcome: str, code: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"attempt": attempt, "outcome": outcome}
    if outcome == "pass":
        payload["certificate_fingerprint"] = "a" * 64
    else:
        payload["code"] = code
    return payload


def events() -> dict[str, AnyEvent]:
    """Every step of the facility flow, two signing attempts, their verdicts, cancel and deadlines."""
    signature = factory.PAYLOADS["card.signature_submitted"]
    stale = {"deadline": (factory.NOW + TIMEOUT).isoformat()}
    return {
        "start": _event("registration.started", "start"),
        "card": _event("card.info_read", "card"),
        "confirm": _event("registration.confirmed", "confirm"),
        "sign 1": _event("card.signature_submitted", "sign 1", signature),
        "sign 2": _event("card.signature_submitted", "sign 2", signature),
        "pass 1": _event("verification.completed", "pass 1", _verdict(1, "pass")),
        "fail 1": _event("verification.completed", "fail 1", _verdict(1, "fail", "23")),
        "later 1": _event("verification.completed", "later 1", _verdict(1, "retry_later", "40")),
        "pass 2": _event("verification.completed", "pass 2", _verdict(2, "pass")),
        "fail 2": _event("verification.completed", "fail 2", _verdict(2, "fail", "21")),
        "replay": _event("verification.replay_requested", "replay"),
        "complete": _event("registration.complete_requested", "complete"),
        "complete again": _event("registration.complete_requested", "complete again"),
        "cancel": _event("registration.cancel_requested", "cancel"),
        "deadline": _event("registration.deadline_reached", "deadline", stale),
    }


NAMES = sorted(events())
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.sampled_from(NAMES)),
        st.tuples(st.just("advance"), st.sampled_from([1, 3, 10, 31])),
        st.tuples(st.just("sweep"), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)
HAPPY = [("deliver", name) for name in ("start", "card", "confirm", "sign 1", "pass 1", "complete")]
ACTION_LISTS = st.one_of(
    ACTIONS,
    # the happy path with noise around it: reaches the late states often
    st.tuples(ACTIONS, ACTIONS).map(lambda pair: [*pair[0][:5], *HAPPY, *pair[1][:10]]),
    st.permutations(HAPPY).map(lambda steps: steps * 2),
)


def check_history(history: Sequence[HistoryEntry]) -> None:
    """Only declared transitions, one chain of states, nothing after the end, one outcome."""
    state = State.NEW.value
    for entry in history:
        assert entry.from_state == state, f"{entry.event_type} starts at {entry.from_state}, not {state}"
        if entry.outcome == "applied":
            assert (entry.event_type, entry.from_state, entry.to_state) in ALLOWED, entry
        else:
            assert entry.to_state == entry.from_state, entry
        if State(state) in TERMINAL:
            assert entry.to_state == state, f"{entry.event_type} moved a {state} registration"
        state = entry.to_state
    ended = [e for e in history if State(e.to_state) in TERMINAL and e.from_state != e.to_state]
    assert len(ended) <= 1, f"more than one outcome: {ended}"
    assert len({e.event_id for e in history}) == len(history), "an event id applied twice"


def check_registration(registration: Registration | None, history: Sequence[HistoryEntry]) -> None:
    """The stored registration agrees with its history and with itself."""
    applied = [e for e in history if e.outcome == "applied"]
    if registration is None:
        assert applied == []
        return
    assert registration.state.value == applied[-1].to_state
    assert (registration.activated_at is not None) == (registration.state is State.ACTIVATED)
    assert (registration.ended_at is not None) == registration.terminal
    if registration.terminal:
        assert registration.signature is None, "a signature outlives its registration's end"
    verification = registration.verification
    if verification is not None and verification.in_progress:
        assert registration.state is State.CONFIRMED
    if registration.state is State.CONFIRMED:
        assert registration.challenge is not None


def check_outbox(routing_keys: Sequence[str], ids: Sequence[str], final: Registration | None) -> None:
    """At most one outcome was announced (outbox or feed), the one it ended with, each event once."""
    counted = Counter(key for key in routing_keys if key in OUTCOMES)
    assert sum(counted.values()) <= 1, counted
    if final is not None and final.terminal:
        assert counted == {f"registration.{final.state.value}": 1}
    else:
        assert not counted
    assert len(set(ids)) == len(ids), "an outbox event twice"
