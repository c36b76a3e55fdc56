"""Confirmed (step 4): the person signs the challenge and the verifier decides (steps 5-6)."""

from __future__ import annotations

from orchestrator import messages
from orchestrator.model import (
    Applied,
    Context,
    Registration,
    Rejection,
    Signature,
    State,
    Verification,
)
from orchestrator.states.card_read import issue_challenge
from orchestrator.states.rules import Rule, Select, deadline_now, emit, existing, refuse
from schemas.events import (
    DeadlineReached,
    Envelope,
    RegistrationCompleteRequested,
    SignatureSubmitted,
    SignatureVerified,
    VerificationCompleted,
    VerificationFailed,
    VerificationReplayRequested,
    VerificationRequested,
)

STATE = State.CONFIRMED
CODE_UNANSWERED = "44"  # the verifier did not answer (crashed, or lost the request) within the timeout


def _not_while_verifying(registration: Registration | None, _: Envelope, ctx: Context) -> Rejection | None:
    verification = existing(registration).verification
    if verification and verification.in_progress:
        return Rejection("verification_in_progress", messages.VERIFICATION_PENDING)
    return None


def _submit(
    registration: Registration | None, event: SignatureSubmitted, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    assert reg.challenge is not None
    signature = Signature(
        certificate=event.payload.certificate,
        signature=event.payload.signature,
        algorithm=event.payload.algorithm,
        challenge=reg.challenge,
        attempt=reg.challenge_attempt,
        submitted_at=ctx.now,
    )
    return verify(reg, signature, event, ctx)


def verify(reg: Registration, signature: Signature, event: Envelope, ctx: Context) -> Applied:
    """Keep the signature until it is decided and ask the verifier (step 5 → 6), for any profile."""
    verification = Verification(
        attempt=reg.challenge_attempt,
        status="pending",
        retry_at=ctx.now + ctx.profile(reg).verification_answer_timeout,
    )
    updated = reg.model_copy(
        update={"signature": signature, "verification": verification, "updated_at": ctx.now}
    )
    request = emit(VerificationRequested, event, ctx, {"attempt": verification.attempt})
    return Applied(updated, [request])


def _current_attempt(
    registration: Registration | None, event: VerificationCompleted, ctx: Context
) -> Rejection | None:
    verification = existing(registration).verification
    if verification is None or verification.status != "pending":
        return Rejection("stale_verification", "no verification request is outstanding")
    if verification.attempt != event.payload.attempt:
        return Rejection("stale_verification", f"attempt {event.payload.attempt} is not current")
    return None


def _outcome(kind: str) -> Select:
    def select(_: Registration | None, event: VerificationCompleted, ctx: Context) -> bool:
        return event.payload.outcome == kind

    return select


def _kept_certificate(reg: Registration, ctx: Context) -> str | None:
    """The raw certificate outlives the decision only where the profile says so."""
    if ctx.profile(reg).retain_certificate and reg.signature is not None:
        return reg.signature.certificate
    return None


def _passed(
    registration: Registration | None, event: VerificationCompleted, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    assert reg.verification is not None
    verification = reg.verification.model_copy(
        update={
            "status": "passed",
            "retry_at": None,
            "certificate_fingerprint": event.payload.certificate_fingerprint,
            "certificate": _kept_certificate(reg, ctx),
            "decided_at": ctx.now,
        }
    )
    verified = reg.model_copy(
        update={"state": state, "verification": verification, "signature": None, "updated_at": ctx.now}
    )
    payload = {
        "attempt": verification.attempt,
        "certificate_fingerprint": verification.certificate_fingerprint,
    }
    return Applied(verified, [emit(SignatureVerified, event, ctx, payload)])


def _ended_badly(
    reg: Registration, event: Envelope, ctx: Context, status: str, code: str, fingerprint: str | None
) -> Applied:
    """The attempt is over without a pass: say why in the seed's words, offer a new challenge."""
    assert reg.verification is not None
    message = messages.message_for_failure(code)
    verification = reg.verification.model_copy(
        update={
            "status": status,
            "code": code,
            "message": message,
            "retry_at": None,
            "certificate_fingerprint": fingerprint,
            "certificate": _kept_certificate(reg, ctx),
            "decided_at": ctx.now,
        }
    )
    keep = reg.signature if status == "parked" else None  # an operator may replay a parked one
    updated = reg.model_copy(update={"verification": verification, "signature": keep, "updated_at": ctx.now})
    updated, challenge = issue_challenge(updated, event, ctx)
    failed = emit(
        VerificationFailed,
        event,
        ctx,
        {"attempt": verification.attempt, "code": code, "message": message, "may_sign_again": True},
    )
    return Applied(updated, [failed, challenge])


def _failed(
    registration: Registration | None, event: VerificationCompleted, ctx: Context, state: State
) -> Applied:
    assert event.payload.code is not None
    return _ended_badly(
        existing(registration),
        event,
        ctx,
        "failed",
        event.payload.code,
        event.payload.certificate_fingerprint,
    )


def _retry_later(
    registration: Registration | None, event: VerificationCompleted, ctx: Context, state: State
) -> Applied:
    """Temporary trouble: schedule another request, persisted; park when retries run out."""
    reg = existing(registration)
    assert reg.verification is not None
    assert event.payload.code is not None
    retries = reg.verification.retries
    if retries >= ctx.profile(reg).verification_retry_limit:
        return _ended_badly(
            reg, event, ctx, "parked", event.payload.code, event.payload.certificate_fingerprint
        )
    retry_at = ctx.now + ctx.profile(reg).retry_delay(retries, ctx.jitter)
    verification = reg.verification.model_copy(
        update={
            "status": "retrying",
            "retries": retries + 1,
            "retry_at": retry_at,
            "code": event.payload.code,
        }
    )
    return Applied(reg.model_copy(update={"verification": verification, "updated_at": ctx.now}))


def _retry_due(registration: Registration | None, event: DeadlineReached, ctx: Context) -> bool:
    """A retry_later's turn came, or a request went unanswered (the verifier crashed or lost it)."""
    verification = existing(registration).verification
    return bool(verification and verification.retry_at and verification.retry_at <= deadline_now(event, ctx))


def _request_again(
    registration: Registration | None, event: DeadlineReached, ctx: Context, state: State
) -> Applied:
    """Ask the verifier again; an unanswered request counts as a retry, and parks at the limit."""
    reg = existing(registration)
    assert reg.verification is not None
    retries = reg.verification.retries
    if reg.verification.status == "pending":
        if retries >= ctx.profile(reg).verification_retry_limit:
            return _ended_badly(reg, event, ctx, "parked", CODE_UNANSWERED, None)
        retries += 1
    verification = reg.verification.model_copy(
        update={
            "status": "pending",
            "retries": retries,
            "retry_at": ctx.now + ctx.profile(reg).verification_answer_timeout,
        }
    )
    request = emit(VerificationRequested, event, ctx, {"attempt": verification.attempt}, tag=str(retries))
    return Applied(reg.model_copy(update={"verification": verification, "updated_at": ctx.now}), [request])


def _parked(
    registration: Registration | None, _: VerificationReplayRequested, ctx: Context
) -> Rejection | None:
    verification = existing(registration).verification
    if verification is None or verification.status != "parked" or existing(registration).signature is None:
        return Rejection("not_parked", "only a parked verification with its signature can be replayed")
    return None


def _replay(
    registration: Registration | None, event: VerificationReplayRequested, ctx: Context, state: State
) -> Applied:
    """The kept signature goes to the verifier again, with a fresh retry budget."""
    reg = existing(registration)
    assert reg.verification is not None
    verification = reg.verification.model_copy(
        update={
            "status": "pending",
            "retries": 0,
            "code": None,
            "message": None,
            "retry_at": ctx.now + ctx.profile(reg).verification_answer_timeout,
        }
    )
    request = emit(VerificationRequested, event, ctx, {"attempt": verification.attempt})
    return Applied(reg.model_copy(update={"verification": verification, "updated_at": ctx.now}), [request])


def _why_not_complete(
    registration: Registration | None, _: RegistrationCompleteRequested, ctx: Context
) -> Rejection:
    """【完了する】 before a pass: the seed's error for the last outcome, or what is missing."""
    verification = existing(registration).verification
    if verification is None:
        return Rejection("signature_not_submitted", messages.SIGNATURE_NOT_SUBMITTED)
    if verification.in_progress:
        return Rejection("verification_in_progress", messages.VERIFICATION_PENDING)
    code = verification.code or "unknown"
    return Rejection(code, messages.message_for_failure(code))


RULES = [
    Rule("card.signature_submitted", _submit, guard=_not_while_verifying),
    Rule(
        "verification.completed",
        _passed,
        dest=State.SIGNATURE_VERIFIED,
        when=_outcome("pass"),
        guard=_current_attempt,
    ),
    Rule("verification.completed", _failed, when=_outcome("fail"), guard=_current_attempt),
    Rule("verification.completed", _retry_later, when=_outcome("retry_later"), guard=_current_attempt),
    Rule("registration.deadline_reached", _request_again, when=_retry_due),
    Rule("verification.replay_requested", _replay, guard=_parked),
    refuse("registration.complete_requested", _why_not_complete),
]
