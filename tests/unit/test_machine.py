"""The registration state machine: every state's rules, walked with pure `machine.apply` calls."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from orchestrator import messages
from orchestrator.machine import RegistrationMachine
from orchestrator.model import TERMINAL, Applied, Context, Outcome, Profile, Registration, State
from orchestrator.states import TABLE
from schemas.events import Envelope, derived_event_id, parse_event
from tests import factory

MACHINE = RegistrationMachine()
CHALLENGE = base64.b64encode(b"challenge-attempt-1").decode()
CHALLENGE_2 = base64.b64encode(b"challenge-attempt-2").decode()
REVOKED = "失効済みのマイナンバーカードの可能性があります。(Code: 23)"
EXPIRED_CERT = "失効済みのマイナンバーカードの可能性があります。(Code: 21)"
MISMATCH = "入力された利用者情報と読み取られたカードの情報が一致しません"
HOUR = timedelta(hours=1)
OPEN_STATES = [State.INFO_ENTERED, State.CARD_READ, State.CONFIRMED, State.SIGNATURE_VERIFIED]
INBOUND_KINDS = list(factory.SOURCES)

# Number of factory.FLOW steps that leave a registration in a state.
STEPS = {
    State.INFO_ENTERED: 1,
    State.CARD_READ: 2,
    State.CONFIRMED: 3,
    State.SIGNATURE_VERIFIED: 5,
    State.ACTIVATED: 6,
}


def ctx(
    now: datetime = factory.NOW,
    challenge: str = CHALLENGE,
    jitter: float = 0.5,
    profiles: dict[str, Profile] | None = None,
) -> Context:
    return Context(
        now=now,
        profiles=factory.profiles() if profiles is None else profiles,
        new_challenge=challenge,
        jitter=jitter,
    )


def apply(before: Registration | None, event: Envelope, context: Context | None = None) -> Outcome:
    return MACHINE.apply(before, event, context or ctx())


def applied(before: Registration | None, event: Envelope, context: Context | None = None) -> Applied:
    outcome = apply(before, event, context)
    assert outcome.rejection is None, outcome.rejection
    assert outcome.applied is not None
    return outcome.applied


def refused(before: Registration | None, event: Envelope, context: Context | None = None) -> Any:
    outcome = apply(before, event, context)
    assert outcome.applied is None, outcome.applied
    assert outcome.rejection is not None
    assert outcome.to_state is outcome.from_state
    return outcome.rejection


def walk(steps: int, context: Context | None = None) -> Registration | None:
    reg: Registration | None = None
    for event in factory.flow(upto=steps):
        reg = applied(reg, event, context).registration
    return reg


def reach(state: State) -> Registration:
    if state is State.EXPIRED:
        return applied(reach(State.CARD_READ), deadline(), ctx(now=factory.NOW + HOUR)).registration
    if state is State.CANCELLED:
        return applied(reach(State.CARD_READ), factory.event("registration.cancel_requested")).registration
    reg = walk(STEPS[state])
    assert reg is not None
    assert reg.state is state
    return reg


def pending() -> Registration:
    """Confirmed, signature submitted, verification attempt 1 under way."""
    reg = walk(4)
    assert reg is not None
    assert reg.verification is not None
    assert reg.verification.status == "pending"
    return reg


def completed(outcome: str = "pass", code: str | None = None, attempt: int = 1) -> Envelope:
    payload: dict[str, Any] = {"attempt": attempt, "outcome": outcome}
    if code is not None:
        payload["code"] = code
    return factory.event("verification.completed", payload=payload)


def deadline(at: datetime = factory.NOW) -> Envelope:
    return parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "type": "registration.deadline_reached",
            "registration_id": "reg-00000001",
            "occurred_at": at.isoformat(),
            "source": "orchestrator",
            "schema_version": 1,
            "payload": {"deadline": at.isoformat()},
        }
    )


def outbound(kind: str) -> Envelope:
    payloads = {
        "registration.activated": {"facility_id": "facility-1", "activated_at": factory.NOW.isoformat()},
        "verification.requested": {"attempt": 1},
    }
    return parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "registration_id": "reg-00000001",
            "occurred_at": factory.NOW.isoformat(),
            "source": "orchestrator",
            "payload": payloads[kind],
        }
    )


def types(result: Applied) -> list[str]:
    return [e.type for e in result.emitted]


def any_event(kind: str) -> Envelope:
    if kind == "registration.deadline_reached":
        return deadline()
    return factory.event(kind)


# --- the table ---------------------------------------------------------------------------------


def test_table_has_an_entry_for_every_state() -> None:
    assert set(TABLE) == set(State)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_terminal_states_have_no_rules(state: State) -> None:
    assert TABLE[state] == []


@pytest.mark.parametrize("state", OPEN_STATES)
def test_open_states_share_cancellation_and_deadlines(state: State) -> None:
    triggers = [rule.trigger for rule in TABLE[state]]
    assert "registration.cancel_requested" in triggers
    assert triggers[0] == "registration.deadline_reached"  # expiry is checked before anything else
    assert triggers[-1] == "registration.deadline_reached"  # a deadline that moved is a no-op


def test_only_registration_started_leaves_new() -> None:
    assert [rule.trigger for rule in TABLE[State.NEW]] == ["registration.started"]


# --- the whole facility flow -------------------------------------------------------------------


def test_the_facility_flow_ends_activated() -> None:
    reg: Registration | None = None
    states, emitted = [], []
    for event in factory.flow():
        outcome = apply(reg, event)
        assert outcome.rejection is None, (event.type, outcome.rejection)
        assert outcome.applied is not None
        assert outcome.before is reg
        reg = outcome.applied.registration
        states.append(reg.state)
        emitted.append(types(outcome.applied))
    assert states == [
        State.INFO_ENTERED,
        State.CARD_READ,
        State.CONFIRMED,
        State.CONFIRMED,
        State.SIGNATURE_VERIFIED,
        State.ACTIVATED,
    ]
    assert emitted == [
        [],
        [],
        ["registration.challenge_issued"],
        ["verification.requested"],
        ["registration.signature_verified"],
        ["registration.activated"],
    ]
    assert reg is not None
    assert reg.activated_at == factory.NOW
    assert reg.ended_at == factory.NOW
    assert reg.terminal


def test_activation_emits_registration_activated_for_the_caller() -> None:
    event = factory.event("registration.complete_requested")
    now = factory.NOW + timedelta(minutes=5)
    result = applied(reach(State.SIGNATURE_VERIFIED), event, ctx(now=now))
    [activated] = result.emitted
    assert activated.type == "registration.activated"
    assert activated.source == "orchestrator"
    assert activated.registration_id == "reg-00000001"
    assert activated.occurred_at == now
    assert activated.payload.facility_id == "facility-1"
    assert activated.payload.activated_at == now
    assert result.registration.state is State.ACTIVATED


def test_outcome_reports_from_and_to_state() -> None:
    outcome = apply(reach(State.CARD_READ), factory.event("registration.confirmed"))
    assert (outcome.from_state, outcome.to_state) == (State.CARD_READ, State.CONFIRMED)
    first = apply(None, factory.event("registration.started"))
    assert (first.from_state, first.to_state) == (State.NEW, State.INFO_ENTERED)


def test_started_creates_the_registration() -> None:
    result = applied(None, factory.event("registration.started", "reg-started-01"))
    reg = result.registration
    assert result.emitted == []
    assert reg.id == "reg-started-01"
    assert reg.state is State.INFO_ENTERED
    assert reg.profile == "facility"
    assert reg.facility_id == "facility-1"
    assert reg.created_at == reg.updated_at == factory.NOW
    assert reg.expires_at == factory.NOW + HOUR
    assert reg.applicant.name == factory.NAME
    assert reg.card is None
    assert reg.challenge is None


def test_started_with_an_unconfigured_profile_is_refused() -> None:
    rejection = refused(None, factory.event("registration.started"), ctx(profiles={}))
    assert rejection.code == "unknown_profile"
    assert not rejection.retryable


def test_card_read_keeps_the_four_facts() -> None:
    reg = reach(State.CARD_READ)
    assert reg.card is not None
    assert (reg.card.name, reg.card.address, reg.card.birth_date.isoformat(), reg.card.sex) == (
        factory.NAME,
        factory.ADDRESS,
        "1990-04-01",
        2,
    )


def test_reading_the_card_again_replaces_the_facts() -> None:
    card = {**factory.CARD, "name": "公的　太郎", "sex": 1}
    result = applied(reach(State.CARD_READ), factory.event("card.info_read", payload={"card": card}))
    assert result.registration.state is State.CARD_READ
    assert result.registration.card is not None
    assert (result.registration.card.name, result.registration.card.sex) == ("公的　太郎", 1)


def test_card_read_is_refused_when_the_profile_has_no_such_step() -> None:
    base = factory.profiles()["facility"]
    profiles = {"facility": base.model_copy(update={"steps": frozenset({"confirm", "signature"})})}
    rejection = refused(reach(State.INFO_ENTERED), factory.event("card.info_read"), ctx(profiles=profiles))
    assert rejection.code == "step_not_in_profile"


# --- refusals ----------------------------------------------------------------------------------

NOT_YET_ACCEPTED = [
    (State.INFO_ENTERED, "registration.confirmed"),
    (State.INFO_ENTERED, "card.signature_submitted"),
    (State.INFO_ENTERED, "verification.completed"),
    (State.INFO_ENTERED, "registration.complete_requested"),
    (State.CARD_READ, "card.signature_submitted"),
    (State.CARD_READ, "verification.completed"),
    (State.CARD_READ, "registration.complete_requested"),
]
NOT_ACCEPTED = [
    (State.INFO_ENTERED, "registration.started"),
    (State.CARD_READ, "registration.started"),
    (State.CONFIRMED, "registration.started"),
    (State.CONFIRMED, "card.info_read"),
    (State.CONFIRMED, "registration.confirmed"),
    (State.SIGNATURE_VERIFIED, "registration.started"),
    (State.SIGNATURE_VERIFIED, "card.info_read"),
    (State.SIGNATURE_VERIFIED, "registration.confirmed"),
    (State.SIGNATURE_VERIFIED, "card.signature_submitted"),
    (State.SIGNATURE_VERIFIED, "verification.completed"),
]


@pytest.mark.parametrize(("state", "kind"), NOT_YET_ACCEPTED)
def test_an_event_whose_state_is_still_ahead_waits_instead_of_being_spent(state: State, kind: str) -> None:
    rejection = refused(reach(state), factory.event(kind))
    assert rejection.code == "not_yet_accepted"
    assert rejection.retryable
    assert state.value in rejection.message


@pytest.mark.parametrize(("state", "kind"), NOT_ACCEPTED)
def test_a_state_refuses_events_it_does_not_accept(state: State, kind: str) -> None:
    before = reach(state)
    rejection = refused(before, factory.event(kind))
    assert rejection.code == "event_not_accepted"
    assert not rejection.retryable
    assert kind in rejection.message
    assert state.value in rejection.message


@pytest.mark.parametrize("state", OPEN_STATES)
@pytest.mark.parametrize("kind", ["registration.activated", "verification.requested"])
def test_open_states_refuse_outbound_events(state: State, kind: str) -> None:
    assert refused(reach(state), outbound(kind)).code == "event_not_accepted"


@pytest.mark.parametrize("state", sorted(TERMINAL))
@pytest.mark.parametrize("kind", [*INBOUND_KINDS, "registration.deadline_reached"])
def test_terminal_states_refuse_everything(state: State, kind: str) -> None:
    before = reach(state)
    assert before.state is state
    late = ctx(now=factory.NOW + 2 * HOUR)
    rejection = refused(before, any_event(kind), late)
    assert rejection.code == "event_not_accepted"
    assert state.value in rejection.message


@pytest.mark.parametrize("kind", [k for k in INBOUND_KINDS if k != "registration.started"])
def test_any_event_for_a_missing_registration_is_retryable_unknown_registration(kind: str) -> None:
    rejection = refused(None, factory.event(kind, "reg-missing-01"))
    assert rejection.code == "unknown_registration"
    assert rejection.retryable
    assert "reg-missing-01" in rejection.message


def test_a_deadline_for_a_missing_registration_is_unknown_registration() -> None:
    rejection = refused(None, deadline())
    assert (rejection.code, rejection.retryable) == ("unknown_registration", True)


def test_a_refused_event_does_not_disturb_the_next_one() -> None:
    before = reach(State.CARD_READ)
    refused(before, factory.event("registration.complete_requested"))
    assert applied(before, factory.event("registration.confirmed")).registration.state is State.CONFIRMED


# --- confirmation and the challenge ------------------------------------------------------------


def test_confirmation_issues_the_first_challenge() -> None:
    result = applied(reach(State.CARD_READ), factory.event("registration.confirmed"))
    reg = result.registration
    assert reg.state is State.CONFIRMED
    assert (reg.challenge, reg.challenge_attempt) == (CHALLENGE, 1)
    [issued] = result.emitted
    assert issued.type == "registration.challenge_issued"
    assert (issued.payload.challenge, issued.payload.attempt) == (CHALLENGE, 1)
    assert reg.applicant == reach(State.CARD_READ).applicant


def test_confirmation_applies_corrected_phone_and_email() -> None:
    payload = {"notice_acknowledged": True, "phone": "090-9999-0000", "email": "new@example.jp"}
    reg = applied(
        reach(State.CARD_READ), factory.event("registration.confirmed", payload=payload)
    ).registration
    assert (reg.applicant.phone, reg.applicant.email) == ("090-9999-0000", "new@example.jp")
    assert reg.applicant.name == factory.NAME
    assert reg.applicant.address == factory.ADDRESS


def test_confirmation_correcting_only_the_email_keeps_the_phone() -> None:
    payload = {"notice_acknowledged": True, "email": "only@example.jp"}
    reg = applied(
        reach(State.CARD_READ), factory.event("registration.confirmed", payload=payload)
    ).registration
    assert (reg.applicant.phone, reg.applicant.email) == (factory.APPLICANT["phone"], "only@example.jp")


def test_complete_before_signing_is_refused_with_the_sign_message() -> None:
    rejection = refused(reach(State.CONFIRMED), factory.event("registration.complete_requested"))
    assert (rejection.code, rejection.message) == (
        "signature_not_submitted",
        messages.SIGNATURE_NOT_SUBMITTED,
    )


# --- signature and verification ----------------------------------------------------------------


def test_signature_starts_verification_of_the_current_challenge() -> None:
    result = applied(reach(State.CONFIRMED), factory.event("card.signature_submitted"))
    reg = result.registration
    assert reg.state is State.CONFIRMED
    assert reg.signature is not None
    assert (reg.signature.challenge, reg.signature.attempt) == (CHALLENGE, 1)
    assert (reg.signature.certificate, reg.signature.signature) == ("MIIB", "c2ln")
    assert reg.verification is not None
    assert (reg.verification.attempt, reg.verification.status) == (1, "pending")
    [requested] = result.emitted
    assert (requested.type, requested.payload.attempt) == ("verification.requested", 1)


def test_a_signature_while_verification_is_pending_is_refused() -> None:
    rejection = refused(pending(), factory.event("card.signature_submitted"))
    assert (rejection.code, rejection.message) == ("verification_in_progress", messages.VERIFICATION_PENDING)


def test_complete_while_verification_is_pending_is_refused() -> None:
    rejection = refused(pending(), factory.event("registration.complete_requested"))
    assert rejection.code == "verification_in_progress"


def test_verification_pass_moves_to_signature_verified_and_drops_the_signature() -> None:
    reg = applied(pending(), factory.event("verification.completed")).registration
    assert reg.state is State.SIGNATURE_VERIFIED
    assert reg.signature is None
    assert reg.verification is not None
    assert reg.verification.status == "passed"
    assert reg.verification.certificate_fingerprint == "a" * 64
    assert reg.verification.decided_at == factory.NOW


@pytest.mark.parametrize("outcome", ["pass", "fail", "retry_later"])
def test_a_verification_result_for_a_stale_attempt_is_refused(outcome: str) -> None:
    code = None if outcome == "pass" else "23"
    rejection = refused(pending(), completed(outcome, code, attempt=2))
    assert rejection.code == "stale_verification"


def test_a_verification_result_before_any_signature_is_refused() -> None:
    assert refused(reach(State.CONFIRMED), completed()).code == "stale_verification"


FAILURES = [("23", REVOKED), ("21", EXPIRED_CERT), ("identity_mismatch", MISMATCH)]


@pytest.mark.parametrize(("code", "message"), FAILURES)
def test_a_failure_keeps_confirmed_and_says_why_in_the_seed_words(code: str, message: str) -> None:
    result = applied(pending(), completed("fail", code), ctx(challenge=CHALLENGE_2))
    reg = result.registration
    assert reg.state is State.CONFIRMED
    assert types(result) == ["registration.verification_failed", "registration.challenge_issued"]
    failed, issued = result.emitted
    assert failed.payload.message == message
    assert (failed.payload.code, failed.payload.attempt, failed.payload.may_sign_again) == (code, 1, True)
    assert (issued.payload.attempt, issued.payload.challenge) == (2, CHALLENGE_2)
    assert (reg.challenge, reg.challenge_attempt) == (CHALLENGE_2, 2)
    assert reg.signature is None
    assert reg.verification is not None
    assert (reg.verification.status, reg.verification.code, reg.verification.message) == (
        "failed",
        code,
        message,
    )


@pytest.mark.parametrize(("code", "message"), FAILURES)
def test_complete_after_a_failure_is_refused_with_the_same_words(code: str, message: str) -> None:
    failed = applied(pending(), completed("fail", code), ctx(challenge=CHALLENGE_2)).registration
    rejection = refused(failed, factory.event("registration.complete_requested"))
    assert rejection.message == message
    assert rejection.code == code


def test_after_a_failure_the_person_signs_the_new_challenge() -> None:
    failed = applied(
        pending(), completed("fail", "identity_mismatch"), ctx(challenge=CHALLENGE_2)
    ).registration
    result = applied(failed, factory.event("card.signature_submitted"))
    reg = result.registration
    assert reg.signature is not None
    assert (reg.signature.challenge, reg.signature.attempt) == (CHALLENGE_2, 2)
    assert reg.verification is not None
    assert (reg.verification.attempt, reg.verification.status, reg.verification.code) == (2, "pending", None)
    assert result.emitted[0].payload.attempt == 2
    assert refused(reg, completed("pass", attempt=1)).code == "stale_verification"
    assert applied(reg, completed("pass", attempt=2)).registration.state is State.SIGNATURE_VERIFIED


# --- retry later -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retries", "jitter", "seconds"),
    [
        (0, 0.0, 1.0),
        (0, 0.5, 1.5),
        (1, 0.5, 3.0),
        (2, 0.5, 6.0),
        (3, 0.0, 8.0),
        (4, 0.9, 30.4),
        (5, 0.0, 30.0),  # 64 s is capped at 60 s
        (10, 0.5, 45.0),
        (40, 0.0, 30.0),
    ],
)
def test_retry_delay_is_capped_exponential_backoff_with_equal_jitter(
    retries: int, jitter: float, seconds: float
) -> None:
    profile = factory.profiles()["facility"]
    assert profile.retry_delay(retries, jitter) == timedelta(seconds=seconds)


def test_retry_delay_stays_within_half_and_full_ceiling() -> None:
    profile = factory.profiles()["facility"]
    for retries in range(8):
        ceiling = min(timedelta(seconds=60), timedelta(seconds=2) * 2**retries)
        for jitter in (0.0, 0.25, 0.999):
            assert ceiling / 2 <= profile.retry_delay(retries, jitter) < ceiling + timedelta(microseconds=1)


def test_retry_later_schedules_the_next_request() -> None:
    result = applied(pending(), completed("retry_later", "50"))
    reg = result.registration
    assert result.emitted == []
    assert reg.state is State.CONFIRMED
    assert reg.verification is not None
    assert (reg.verification.status, reg.verification.retries, reg.verification.code) == ("retrying", 1, "50")
    assert reg.verification.retry_at == factory.NOW + timedelta(seconds=1.5)
    assert reg.signature is not None
    assert reg.next_deadline() == reg.verification.retry_at


@pytest.mark.parametrize(("jitter", "seconds"), [(0.0, 1.0), (0.5, 1.5), (0.99, 1.99)])
def test_retry_later_uses_the_context_jitter(jitter: float, seconds: float) -> None:
    reg = applied(pending(), completed("retry_later", "50"), ctx(jitter=jitter)).registration
    assert reg.verification is not None
    assert reg.verification.retry_at == factory.NOW + timedelta(seconds=seconds)


def test_a_signature_while_a_retry_is_scheduled_is_refused() -> None:
    retrying = applied(pending(), completed("retry_later", "50")).registration
    assert refused(retrying, factory.event("card.signature_submitted")).code == "verification_in_progress"


def test_a_due_retry_deadline_requests_verification_again() -> None:
    retrying = applied(pending(), completed("retry_later", "50")).registration
    assert retrying.verification is not None
    due = retrying.verification.retry_at
    assert due is not None
    result = applied(retrying, deadline(due), ctx(now=due))
    reg = result.registration
    assert reg.state is State.CONFIRMED
    [requested] = result.emitted
    assert (requested.type, requested.payload.attempt) == ("verification.requested", 1)
    assert reg.verification is not None
    answer_by = due + factory.profiles()["facility"].verification_answer_timeout
    assert (reg.verification.status, reg.verification.retry_at, reg.verification.retries) == (
        "pending",
        answer_by,
        1,
    )
    assert reg.next_deadline() == answer_by, "a request nobody answers is asked again"


def test_an_unanswered_request_is_asked_again_then_parked_with_code_44() -> None:
    reg = pending()
    assert reg.verification is not None
    for retry in range(1, 4):
        due = reg.verification.retry_at
        assert due is not None
        result = applied(reg, deadline(due), ctx(now=due))
        reg = result.registration
        assert reg.verification is not None
        assert [e.type for e in result.emitted] == ["verification.requested"]
        assert (reg.verification.status, reg.verification.retries) == ("pending", retry)
    due = reg.verification.retry_at
    assert due is not None
    parked = applied(reg, deadline(due), ctx(now=due)).registration
    assert parked.verification is not None
    assert (parked.verification.status, parked.verification.code) == ("parked", "44")


def test_a_deadline_decides_by_the_deadline_it_carries_not_an_earlier_clock() -> None:
    started = applied(None, factory.event("registration.started"), ctx()).registration
    late = applied(
        started, deadline(started.expires_at), ctx(now=started.expires_at - timedelta(milliseconds=1))
    )
    assert late.registration.state is State.EXPIRED


def test_a_retry_deadline_not_yet_due_changes_nothing() -> None:
    retrying = applied(pending(), completed("retry_later", "50")).registration
    early = factory.NOW + timedelta(seconds=1)
    result = applied(retrying, deadline(early), ctx(now=early))
    assert result.emitted == []
    assert result.registration == retrying


def _retry_round(reg: Registration, now: datetime) -> tuple[Registration, timedelta]:
    """retry_later at `now`, then the deadline at retry_at; returns the re-requested registration."""
    reg = applied(reg, completed("retry_later", "50"), ctx(now=now)).registration
    assert reg.verification is not None
    assert reg.verification.retry_at is not None
    delay = reg.verification.retry_at - now
    due = reg.verification.retry_at
    result = applied(reg, deadline(due), ctx(now=due))
    assert types(result) == ["verification.requested"]
    return result.registration, delay


def test_retries_back_off_exponentially_then_park() -> None:
    reg, now = pending(), factory.NOW
    delays = []
    for _ in range(3):  # factory.profiles() allows 3 retries
        reg, delay = _retry_round(reg, now)
        delays.append(delay)
        now = reg.updated_at
    assert delays == [timedelta(seconds=1.5), timedelta(seconds=3), timedelta(seconds=6)]
    signature = reg.signature
    assert signature is not None
    result = applied(reg, completed("retry_later", "50"), ctx(now=now, challenge=CHALLENGE_2))
    parked = result.registration
    assert parked.state is State.CONFIRMED
    assert parked.verification is not None
    assert (parked.verification.status, parked.verification.retry_at) == ("parked", None)
    assert parked.verification.code == "50"
    assert parked.signature == signature  # kept for an operator's replay
    assert types(result) == ["registration.verification_failed", "registration.challenge_issued"]
    failed, issued = result.emitted
    assert failed.payload.message == "失効済みのマイナンバーカードの可能性があります。(Code: 50)"
    assert failed.payload.code == "50"
    assert (issued.payload.attempt, parked.challenge, parked.challenge_attempt) == (2, CHALLENGE_2, 2)
    assert parked.next_deadline() == parked.expires_at


def test_a_profile_without_retries_parks_at_once() -> None:
    profiles = factory.profiles(retry_limit=0)
    reg = walk(4, ctx(profiles=profiles))
    assert reg is not None
    parked = applied(reg, completed("retry_later", "50"), ctx(profiles=profiles)).registration
    assert parked.verification is not None
    assert parked.verification.status == "parked"


def test_a_parked_registration_may_sign_again() -> None:
    parked = applied(pending(), completed("retry_later", "50"), ctx(profiles=factory.profiles(retry_limit=0)))
    reg = applied(parked.registration, factory.event("card.signature_submitted")).registration
    assert reg.verification is not None
    assert (reg.verification.status, reg.verification.attempt) == ("pending", 2)


# --- expiry and cancellation -------------------------------------------------------------------

OPEN_REGISTRATIONS = {
    "info_entered": lambda: reach(State.INFO_ENTERED),
    "card_read": lambda: reach(State.CARD_READ),
    "confirmed": lambda: reach(State.CONFIRMED),
    "confirmed_pending": pending,
    "confirmed_retrying": lambda: applied(pending(), completed("retry_later", "50")).registration,
    "signature_verified": lambda: reach(State.SIGNATURE_VERIFIED),
}


@pytest.mark.parametrize("which", sorted(OPEN_REGISTRATIONS))
@pytest.mark.parametrize("late", [timedelta(0), timedelta(minutes=1)])
def test_a_deadline_after_expiry_expires_any_open_state(which: str, late: timedelta) -> None:
    before = OPEN_REGISTRATIONS[which]()
    now = before.expires_at + late
    result = applied(before, deadline(now), ctx(now=now))
    reg = result.registration
    assert reg.state is State.EXPIRED
    assert (reg.ended_at, reg.signature) == (now, None)
    [expired] = result.emitted
    assert expired.type == "registration.expired"
    assert (expired.payload.facility_id, expired.payload.reason) == ("facility-1", "activation_timeout")
    assert reg.next_deadline() is None


@pytest.mark.parametrize("state", OPEN_STATES)
def test_a_deadline_before_expiry_changes_nothing(state: State) -> None:
    before = reach(state)
    now = before.expires_at - timedelta(seconds=1)
    result = applied(before, deadline(now), ctx(now=now))
    assert result.emitted == []
    assert result.registration == before


@pytest.mark.parametrize("which", sorted(OPEN_REGISTRATIONS))
def test_cancel_from_any_open_state(which: str) -> None:
    before = OPEN_REGISTRATIONS[which]()
    now = factory.NOW + timedelta(minutes=3)
    result = applied(before, factory.event("registration.cancel_requested"), ctx(now=now))
    reg = result.registration
    assert reg.state is State.CANCELLED
    assert (reg.ended_at, reg.signature) == (now, None)
    [cancelled] = result.emitted
    assert cancelled.type == "registration.cancelled"
    assert (cancelled.payload.facility_id, cancelled.payload.reason) == ("facility-1", "cancel_requested")


def test_cancel_carries_the_given_reason() -> None:
    event = factory.event("registration.cancel_requested", payload={"reason": "利用者による取消"})
    result = applied(reach(State.CARD_READ), event)
    assert result.emitted[0].payload.reason == "利用者による取消"


# --- emitted ids -------------------------------------------------------------------------------

CAUSES = [
    (State.CARD_READ, "registration.confirmed"),
    (State.CONFIRMED, "card.signature_submitted"),
    (State.SIGNATURE_VERIFIED, "registration.complete_requested"),
    (State.INFO_ENTERED, "registration.cancel_requested"),
]


@pytest.mark.parametrize(("state", "kind"), CAUSES)
def test_emitted_ids_derive_from_the_cause(state: State, kind: str) -> None:
    before = reach(state)
    event = factory.event(kind)
    first = applied(before, event).emitted
    again = applied(before, event, ctx(now=factory.NOW + timedelta(seconds=30))).emitted
    assert first
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert [e.event_id for e in first] == [derived_event_id(str(event.event_id), e.type, "") for e in first]
    other = applied(before, factory.event(kind)).emitted
    assert {e.event_id for e in first}.isdisjoint(e.event_id for e in other)


def test_a_failure_emits_distinct_ids_that_repeat_on_reapply() -> None:
    before, event = pending(), completed("fail", "23")
    first = [e.event_id for e in applied(before, event).emitted]
    assert len(set(first)) == 2
    assert first == [e.event_id for e in applied(before, event).emitted]


def test_emitted_events_are_from_the_orchestrator_for_the_same_registration() -> None:
    now = factory.NOW + timedelta(minutes=7)
    result = applied(pending(), completed("fail", "23"), ctx(now=now))
    for event in result.emitted:
        assert event.source == "orchestrator"
        assert event.registration_id == "reg-00000001"
        assert event.occurred_at == now


def test_re_requests_after_successive_retries_have_distinct_ids() -> None:
    reg, first_delay = _retry_round(pending(), factory.NOW)
    assert first_delay == timedelta(seconds=1.5)
    retrying = applied(reg, completed("retry_later", "50"), ctx(now=reg.updated_at)).registration
    assert retrying.verification is not None
    due = retrying.verification.retry_at
    assert due is not None
    event = deadline(due)
    ids = [e.event_id for e in applied(retrying, event, ctx(now=due)).emitted]
    assert ids == [derived_event_id(str(event.event_id), "verification.requested", "2")]


# --- next deadline -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_next_deadline_is_none_when_terminal(state: State) -> None:
    assert reach(state).next_deadline() is None


def test_next_deadline_is_none_when_expired_while_retrying() -> None:
    retrying = OPEN_REGISTRATIONS["confirmed_retrying"]()
    expired = applied(retrying, deadline(retrying.expires_at), ctx(now=retrying.expires_at)).registration
    assert expired.verification is not None
    assert expired.verification.retry_at is not None
    assert expired.next_deadline() is None


@pytest.mark.parametrize("state", OPEN_STATES)
def test_next_deadline_is_expiry_without_a_retry(state: State) -> None:
    reg = reach(state)
    assert reg.next_deadline() == reg.expires_at == factory.NOW + HOUR


def test_next_deadline_is_the_earlier_of_retry_and_expiry() -> None:
    retrying = OPEN_REGISTRATIONS["confirmed_retrying"]()
    assert retrying.verification is not None
    assert retrying.next_deadline() == retrying.verification.retry_at < retrying.expires_at
    later = retrying.verification.model_copy(update={"retry_at": retrying.expires_at + HOUR})
    assert retrying.model_copy(update={"verification": later}).next_deadline() == retrying.expires_at


def test_confirming_takes_name_and_address_from_the_card_the_signature_must_then_match() -> None:
    reg = walk(2)
    assert reg is not None
    typed_otherwise = reg.model_copy(
        update={"applicant": reg.applicant.model_copy(update={"name": "別人　次郎", "address": "大阪府"})}
    )
    confirmed = applied(typed_otherwise, factory.event("registration.confirmed"), ctx()).registration
    assert confirmed.card is not None
    assert (confirmed.applicant.name, confirmed.applicant.address) == (
        confirmed.card.name,
        confirmed.card.address,
    )
