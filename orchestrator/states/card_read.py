"""The card was read (step 2); the web may reflect it and the person confirms (step 4)."""

from __future__ import annotations

from orchestrator.model import Applied, Context, Registration, State
from orchestrator.states.info_entered import read_card
from orchestrator.states.rules import Rule, emit, existing
from schemas.events import ChallengeIssued, Envelope, RegistrationConfirmed

STATE = State.CARD_READ


def issue_challenge(reg: Registration, cause: Envelope, ctx: Context) -> tuple[Registration, Envelope]:
    """A fresh challenge for the next signature: it binds the signature to this registration
    and this attempt, so an old signature cannot be replayed."""
    attempt = reg.challenge_attempt + 1
    updated = reg.model_copy(update={"challenge": ctx.new_challenge, "challenge_attempt": attempt})
    payload = {"challenge": ctx.new_challenge, "attempt": attempt}
    return updated, emit(ChallengeIssued, cause, ctx, payload)


def _confirm(
    registration: Registration | None, event: RegistrationConfirmed, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    corrections = {k: v for k, v in (("phone", event.payload.phone), ("email", event.payload.email)) if v}
    assert reg.card is not None
    assert reg.applicant is not None  # the facility profile starts with the form
    # 【情報を反映する】 filled the form from the card: the account carries the card's name and
    # address, which the signature step then proves (the certificate must match the card).
    corrections |= {"name": reg.card.name, "address": reg.card.address}
    applicant = reg.applicant.model_copy(update=corrections)
    confirmed = reg.model_copy(update={"state": state, "applicant": applicant, "updated_at": ctx.now})
    confirmed, challenge = issue_challenge(confirmed, event, ctx)
    return Applied(confirmed, [challenge])


RULES = [
    Rule("card.info_read", read_card),
    Rule("registration.confirmed", _confirm, dest=State.CONFIRMED),
]
