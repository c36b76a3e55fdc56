"""The address is confirmed (xID); 利用を開始する ends the registration `activated`."""

from __future__ import annotations

from orchestrator.model import Applied, Context, Registration, State
from orchestrator.states.rules import Rule, emit, existing
from schemas.events import EmailDeliveryCompleted, RegistrationActivated, UseStarted

STATE = State.EMAIL_CONFIRMED


def _start_using(registration: Registration | None, event: UseStarted, ctx: Context, state: State) -> Applied:
    reg = existing(registration)
    activated = reg.model_copy(
        update={"state": state, "activated_at": ctx.now, "ended_at": ctx.now, "updated_at": ctx.now}
    )
    payload = {"facility_id": reg.facility_id, "activated_at": ctx.now}
    return Applied(activated, [emit(RegistrationActivated, event, ctx, payload)])


def _late_report(
    registration: Registration | None, _: EmailDeliveryCompleted, ctx: Context, state: State
) -> Applied:
    """The link came back before the worker's answer: the answer changes nothing now."""
    return Applied(existing(registration))


RULES = [
    Rule("xid.use_started", _start_using, dest=State.ACTIVATED),
    Rule("email.delivery_completed", _late_report),
]
