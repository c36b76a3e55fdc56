"""Rules every open registration shares: cancellation and the persisted deadlines."""

from __future__ import annotations

from orchestrator.model import Applied, Context, Registration, State
from orchestrator.states.rules import Rule, deadline_now, emit, existing
from schemas.events import (
    DeadlineReached,
    RegistrationCancelled,
    RegistrationCancelRequested,
    RegistrationExpired,
)


def _expired(registration: Registration | None, event: DeadlineReached, ctx: Context) -> bool:
    return deadline_now(event, ctx) >= existing(registration).expires_at


def _expire(registration: Registration | None, event: DeadlineReached, ctx: Context, state: State) -> Applied:
    reg = existing(registration)
    ended = reg.model_copy(
        update={"state": state, "updated_at": ctx.now, "ended_at": ctx.now, "signature": None}
    )
    payload = {"facility_id": reg.facility_id, "reason": "activation_timeout"}
    return Applied(ended, [emit(RegistrationExpired, event, ctx, payload)])


def _cancel(
    registration: Registration | None, event: RegistrationCancelRequested, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    ended = reg.model_copy(
        update={"state": state, "updated_at": ctx.now, "ended_at": ctx.now, "signature": None}
    )
    payload = {"facility_id": reg.facility_id, "reason": event.payload.reason or "cancel_requested"}
    return Applied(ended, [emit(RegistrationCancelled, event, ctx, payload)])


def _nothing_due(
    registration: Registration | None, _: DeadlineReached, ctx: Context, state: State
) -> Applied:
    """A deadline that moved since it was read: record it, change nothing."""
    return Applied(existing(registration))


FIRST = [
    Rule("registration.deadline_reached", _expire, dest=State.EXPIRED, when=_expired),
    Rule("registration.cancel_requested", _cancel, dest=State.CANCELLED),
]
LAST = [Rule("registration.deadline_reached", _nothing_due)]
