"""ID有効化 is done (xID): the device key is registered; the person enters an e-mail address next."""

from __future__ import annotations

from orchestrator import messages_xid as words
from orchestrator.model import Applied, Context, Registration, State
from orchestrator.model_xid import VOIDED_KEPT, EmailConfirmation
from orchestrator.states.rules import Rule, emit, existing
from orchestrator.states.xid_steps import record
from orchestrator.xid import is_carrier_address
from schemas.events import EmailConfirmationRequested, EmailEntered

STATE = State.ID_ENABLED


def enter_email(
    registration: Registration | None, event: EmailEntered, ctx: Context, state: State
) -> Applied:
    """メールアドレスの登録 or 再入力する: a new link for the address, the earlier one void, a mail queued."""
    reg = existing(registration)
    xid = record(reg)
    profile = ctx.profile(reg)
    previous = xid.email
    voided = (*previous.voided, previous.link_sha256)[-VOIDED_KEPT:] if previous else ()
    email = EmailConfirmation(
        address=event.payload.email,
        attempt=previous.attempt + 1 if previous else 1,
        link_id=event.payload.link_id,
        link_sha256=event.payload.link_sha256,
        link_expires_at=ctx.now + profile.email_link_ttl,
        voided=voided,
        warning=words.CARRIER_MAIL_WARNING if is_carrier_address(event.payload.email) else None,
        retry_at=ctx.now + profile.mail_answer_timeout,  # asked again if the mail worker never answers
    )
    updated = reg.model_copy(
        update={"state": state, "xid": xid.model_copy(update={"email": email}), "updated_at": ctx.now}
    )
    return Applied(updated, [emit(EmailConfirmationRequested, event, ctx, {"attempt": email.attempt})])


RULES = [Rule("xid.email_entered", enter_email, dest=State.EMAIL_PENDING)]
