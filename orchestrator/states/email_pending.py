"""A confirmation link is out (xID, メールアドレス確認): the mail's delivery schedule and the link's use.

The mail worker answers each request: sent, a temporary failure (rescheduled with backoff from
the persisted `retry_at`, up to the profile's limit) or a permanent one (recorded and shown, so
the person can 再入力する). Opening the current, unexpired link confirms the address.
"""

from __future__ import annotations

from orchestrator import messages_xid as words
from orchestrator.model import Applied, Context, Registration, Rejection, State
from orchestrator.model_xid import EmailConfirmation
from orchestrator.states.id_enabled import enter_email
from orchestrator.states.rules import Rule, Select, deadline_now, emit, existing, refuse
from orchestrator.states.xid_steps import record
from schemas.events import (
    DeadlineReached,
    EmailConfirmationRequested,
    EmailConfirmed,
    EmailDeliveryCompleted,
    UseStarted,
)

STATE = State.EMAIL_PENDING
CODE_UNANSWERED = "mail_unanswered"  # the mail worker did not answer within the timeout


def email_of(reg: Registration) -> EmailConfirmation:
    email = record(reg).email
    if email is None:
        raise AssertionError("an e-mail step without an address")
    return email


def _with(reg: Registration, ctx: Context, **changes: object) -> Registration:
    email = email_of(reg).model_copy(update=changes)
    return reg.model_copy(
        update={"xid": record(reg).model_copy(update={"email": email}), "updated_at": ctx.now}
    )


def _current(
    registration: Registration | None, event: EmailDeliveryCompleted, ctx: Context
) -> Rejection | None:
    email = email_of(existing(registration))
    if email.attempt != event.payload.attempt or email.delivery != "pending":
        return Rejection("stale_delivery", f"no request for mail {event.payload.attempt} is outstanding")
    return None


def _outcome(kind: str) -> Select:
    def select(_: Registration | None, event: EmailDeliveryCompleted, ctx: Context) -> bool:
        return event.payload.outcome == kind

    return select


def _sent(
    registration: Registration | None, event: EmailDeliveryCompleted, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    sent_at = event.payload.sent_at or ctx.now
    return Applied(
        _with(reg, ctx, delivery="sent", sent_at=sent_at, retry_at=None, code=None, smtp_code=None)
    )


def _failed(reg: Registration, ctx: Context, code: str, smtp_code: int | None, message: str) -> Applied:
    """The mail will not go by itself any more: the person sees why and may 再入力する."""
    changes = {
        "delivery": "failed",
        "retry_at": None,
        "code": code,
        "smtp_code": smtp_code,
        "message": message,
    }
    return Applied(_with(reg, ctx, **changes))


def _deferred(
    registration: Registration | None, event: EmailDeliveryCompleted, ctx: Context, state: State
) -> Applied:
    """A temporary failure: try again later from the persisted schedule, or give up at the limit."""
    reg = existing(registration)
    email, profile = email_of(reg), ctx.profile(reg)
    code = event.payload.code or "mail_temporary"
    if email.retries >= profile.mail_retry_limit:
        return _failed(reg, ctx, code, event.payload.smtp_code, words.MAIL_GAVE_UP)
    retry_at = ctx.now + profile.mail_retry_delay(email.retries, ctx.jitter)
    changes = {"delivery": "retrying", "retries": email.retries + 1, "retry_at": retry_at, "code": code}
    return Applied(_with(reg, ctx, smtp_code=event.payload.smtp_code, **changes))


def _refused(
    registration: Registration | None, event: EmailDeliveryCompleted, ctx: Context, state: State
) -> Applied:
    code = event.payload.code or "mail_permanent"
    return _failed(existing(registration), ctx, code, event.payload.smtp_code, words.MAIL_REJECTED)


def _mail_due(registration: Registration | None, event: DeadlineReached, ctx: Context) -> bool:
    retry_at = email_of(existing(registration)).retry_at
    return retry_at is not None and retry_at <= deadline_now(event, ctx)


def _send_again(
    registration: Registration | None, event: DeadlineReached, ctx: Context, state: State
) -> Applied:
    """A retry's turn came, or a request went unanswered (counted as a retry; fails at the limit)."""
    reg = existing(registration)
    email, profile = email_of(reg), ctx.profile(reg)
    retries = email.retries
    if email.delivery == "pending":
        if retries >= profile.mail_retry_limit:
            return _failed(reg, ctx, CODE_UNANSWERED, None, words.MAIL_GAVE_UP)
        retries += 1
    updated = _with(
        reg, ctx, delivery="pending", retries=retries, retry_at=ctx.now + profile.mail_answer_timeout
    )
    request = emit(EmailConfirmationRequested, event, ctx, {"attempt": email.attempt}, tag=str(retries))
    return Applied(updated, [request])


def _genuine_link(registration: Registration | None, event: EmailConfirmed, ctx: Context) -> Rejection | None:
    """The current link, before it expires; an earlier one is void (再入力する), anything else unknown."""
    email = email_of(existing(registration))
    presented = event.payload.link_sha256
    if presented == email.link_sha256:
        if ctx.now >= email.link_expires_at:
            return Rejection("link_expired", words.LINK_EXPIRED)
        return None
    if presented in email.voided:
        return Rejection("link_voided", words.LINK_VOIDED)
    return Rejection("link_unknown", words.LINK_UNKNOWN)


def _confirm(registration: Registration | None, event: EmailConfirmed, ctx: Context, state: State) -> Applied:
    """The link came back, so the mail arrived: no more sending, whatever the worker said last."""
    reg = existing(registration)
    updated = _with(reg, ctx, confirmed_at=ctx.now, delivery="sent", retry_at=None, message=None)
    return Applied(updated.model_copy(update={"state": state}))


def _not_confirmed(registration: Registration | None, _: UseStarted, ctx: Context) -> Rejection:
    return Rejection("email_not_confirmed", words.EMAIL_NOT_CONFIRMED)


RULES = [
    Rule("xid.email_entered", enter_email),
    Rule("email.delivery_completed", _sent, when=_outcome("sent"), guard=_current),
    Rule("email.delivery_completed", _deferred, when=_outcome("temporary_failure"), guard=_current),
    Rule("email.delivery_completed", _refused, when=_outcome("permanent_failure"), guard=_current),
    Rule("registration.deadline_reached", _send_again, when=_mail_due),
    Rule("xid.email_confirmed", _confirm, dest=State.EMAIL_CONFIRMED, guard=_genuine_link),
    refuse("xid.use_started", _not_confirmed),
]
