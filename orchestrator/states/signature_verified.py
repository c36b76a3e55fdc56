"""The signature passed every check (step 6); 【完了する】 activates the account (step 7)."""

from __future__ import annotations

from orchestrator.model import Applied, Context, Registration, State
from orchestrator.states.rules import Rule, emit, existing
from schemas.events import RegistrationActivated, RegistrationCompleteRequested

STATE = State.SIGNATURE_VERIFIED


def _activate(
    registration: Registration | None, event: RegistrationCompleteRequested, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    activated = reg.model_copy(
        update={"state": state, "activated_at": ctx.now, "ended_at": ctx.now, "updated_at": ctx.now}
    )
    payload = {"facility_id": reg.facility_id, "activated_at": ctx.now}
    return Applied(activated, [emit(RegistrationActivated, event, ctx, payload)])


RULES = [Rule("registration.complete_requested", _activate, dest=State.ACTIVATED)]
