"""What a state module declares: the events it accepts, their guards and their effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.model import Applied, Context, Registration, Rejection, State
from schemas.events import Envelope, derived_event_id, event_type

Guard = Callable[[Registration | None, Any, Context], Rejection | None]
Select = Callable[[Registration | None, Any, Context], bool]
Effect = Callable[[Registration | None, Any, Context, State], Applied]


@dataclass(frozen=True)
class Rule:
    """One transition: `when` picks among rules of the same trigger, `guard` may refuse it.

    `dest` None keeps the state (an internal transition).
    """

    trigger: str
    effect: Effect
    dest: State | None = None
    when: Select | None = None
    guard: Guard | None = None


def emit(cls: type[Envelope], cause: Envelope, ctx: Context, payload: Any, *, tag: str = "") -> Envelope:
    """An outbound event whose id derives from its cause, so re-applying the cause re-emits
    the same ids and consumers deduplicate them."""
    kind = event_type(cls)
    return cls.model_validate(
        {
            "type": kind,
            "event_id": derived_event_id(str(cause.event_id), kind, tag),
            "registration_id": cause.registration_id,
            "occurred_at": ctx.now,
            "source": "orchestrator",
            "payload": payload,
        }
    )


def existing(registration: Registration | None) -> Registration:
    """Every state but NEW has a registration; say so once for the type checker."""
    if registration is None:
        raise AssertionError("a persisted state without a registration")
    return registration


def not_accepted(state: State, event: Envelope) -> Rejection:
    return Rejection(
        code="event_not_accepted",
        message=f"{event.type} is not accepted while the registration is {state.value}",
    )


def _never(*_: Any) -> Applied:
    raise AssertionError("a refusing rule's guard always answers")


def refuse(trigger: str, why: Guard) -> Rule:
    """An event the state understands but answers with its own error, never with a change."""
    return Rule(trigger, _never, guard=why)


def deadline_now(event: Any, ctx: Context) -> datetime:
    """For deadline events, the deadline the sweeper saw has passed, whatever this clock says:
    deciding on a second, earlier reading would spend the event id on a no-op for good."""
    deadline: datetime = event.payload.deadline
    return max(ctx.now, deadline)
