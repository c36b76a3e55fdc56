"""The form is filled in (必要事項を入力); the app reads the card next."""

from __future__ import annotations

from orchestrator.model import Applied, Context, Registration, Rejection, State
from orchestrator.states.rules import Rule, existing
from schemas.events import CardInfoRead

STATE = State.INFO_ENTERED
CARD_INFO_STEP = "card_info_read"


def _profile_reads_card(registration: Registration | None, _: CardInfoRead, ctx: Context) -> Rejection | None:
    profile = ctx.profile(existing(registration))
    if CARD_INFO_STEP not in profile.steps:
        return Rejection("step_not_in_profile", f"profile {profile.name} has no card-info read")
    return None


def read_card(registration: Registration | None, event: CardInfoRead, ctx: Context, state: State) -> Applied:
    """Keep the card's four facts; reading again replaces them (the seed lets the person retry)."""
    reg = existing(registration)
    return Applied(reg.model_copy(update={"state": state, "card": event.payload.card, "updated_at": ctx.now}))


RULES = [
    Rule("card.info_read", read_card, dest=State.CARD_READ, guard=_profile_reads_card),
]
