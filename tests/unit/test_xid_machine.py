"""Profiles as data, and the xID profile walked with pure `machine.apply` calls."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from honnin.settings import Settings
from orchestrator import messages_xid as words
from orchestrator.machine import RegistrationMachine
from orchestrator.model import FACILITY_PATH, SHARED_TRIGGERS, Context, Profile, Registration, State
from orchestrator.states import SHARED, TABLE
from orchestrator.xid import XID_PATH, consent_message, is_carrier_address
from schemas import api_xid
from schemas.events import parse_event
from tests import factory

MACHINE = RegistrationMachine()
HOUR = timedelta(hours=1)
CHALLENGE = base64.b64encode(b"challenge-attempt-1").decode()
CERT = b"a certificate's DER"
PRINT = hashlib.sha256(CERT).hexdigest()


def profiles() -> dict[str, Profile]:
    settings = Settings(xid_terms=f"{factory.TERMS['version']}:{factory.TERMS['sha256']}", mail_retry_limit=2)
    return {**factory.profiles(), "xid": settings.profiles()["xid"]}


def ctx(now: datetime = factory.NOW, jitter: float = 0.5) -> Context:
    return Context(now=now, profiles=profiles(), new_challenge=CHALLENGE, jitter=jitter)


def xid(kind: str, payload: dict[str, Any] | None = None, **envelope: Any) -> Any:
    raw = factory.raw(kind, "reg-xid-0001", **envelope)
    if payload is not None:
        raw["payload"] = payload
    return parse_event(raw)


def start() -> Any:
    payload = {"facility_id": "xid-ios", "profile": "xid", "terms": factory.TERMS}
    return xid("registration.started", payload, source="app")


def deadline(at: datetime) -> Any:
    return parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "type": "registration.deadline_reached",
            "registration_id": "reg-xid-0001",
            "occurred_at": at.isoformat(),
            "source": "orchestrator",
            "payload": {"deadline": at.isoformat()},
        }
    )


def step(reg: Registration | None, event: Any, context: Context | None = None) -> Any:
    outcome = MACHINE.apply(reg, event, context or ctx())
    assert outcome.rejection is None, outcome.rejection
    assert outcome.applied is not None
    return outcome.applied


def refused(reg: Registration | None, event: Any, context: Context | None = None) -> Any:
    outcome = MACHINE.apply(reg, event, context or ctx())
    assert outcome.applied is None
    assert outcome.rejection is not None
    return outcome.rejection


def signature() -> dict[str, str]:
    return {
        "certificate": base64.b64encode(CERT).decode(),
        "signature": "c2ln",
        "algorithm": "rsa-pkcs1v15-sha256",
    }


def verified() -> Registration:
    reg = step(None, start()).registration
    facts = {
        "facts": {**factory.CERTIFICATE_FACTS, "address": "東京都品川区広町2-1-10"},
        "certificate_fingerprint": PRINT,
    }
    reg = step(reg, xid("xid.certificate_read", facts)).registration
    reg = step(reg, xid("xid.consent_given")).registration
    reg = step(reg, xid("xid.signature_submitted", signature())).registration
    completed = {"attempt": 1, "outcome": "pass", "certificate_fingerprint": PRINT}
    return step(reg, xid("verification.completed", completed)).registration


def entered(address: str = "hanako@example.jp", link: str = "d" * 64) -> Registration:
    reg = step(verified(), xid("xid.activation_requested")).registration
    payload = {"email": address, "link_id": "link-0000000000000001", "link_sha256": link}
    return step(reg, xid("xid.email_entered", payload)).registration


def delivered(reg: Registration, outcome: str, code: str | None = None, **more: Any) -> Any:
    payload = {
        "attempt": reg.xid.email.attempt,
        "outcome": outcome,
        **({"code": code} if code else {}),
        **more,
    }
    return xid("email.delivery_completed", payload)


# --- profiles as data --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [FACILITY_PATH, XID_PATH], ids=["facility", "xid"])
def test_every_event_a_path_accepts_has_a_rule_in_that_state(path: Any) -> None:
    for state, kinds in path.accepts.items():
        triggers = {rule.trigger for rule in TABLE[state]}
        assert kinds <= triggers, (state, kinds - triggers)


def test_the_facility_path_is_exactly_the_facility_rules() -> None:
    """The table the facility flow had: every non-shared rule's trigger per state, nothing more."""
    xid_kinds = {k for k in factory.SOURCES if k.startswith(("xid.", "email."))}
    for state in FACILITY_PATH.states:
        own = {r.trigger for r in TABLE[state] if r not in SHARED and r.trigger not in xid_kinds}
        assert FACILITY_PATH.accepts.get(state, frozenset()) == own, state


def test_paths_accept_the_shared_events_in_their_open_states_only() -> None:
    for path in (FACILITY_PATH, XID_PATH):
        for state in path.states:
            shared = path.accepted(state) >= SHARED_TRIGGERS
            assert shared == (state not in (State.NEW, State.ACTIVATED)), state


def test_a_profile_checks_the_signature_and_the_chain_always() -> None:
    with pytest.raises(ValueError, match="signature and the chain"):
        Profile.model_validate({**profiles()["xid"].model_dump(), "checks": {"signature"}})
    assert "identity" not in profiles()["xid"].checks
    assert "identity" in profiles()["facility"].checks


def test_facility_steps_are_refused_on_an_xid_registration_and_xid_steps_on_a_facility_one() -> None:
    reg = step(None, start()).registration
    assert refused(reg, factory.event("card.info_read", "reg-xid-0001")).code == "event_not_accepted"
    assert refused(reg, factory.event("registration.confirmed", "reg-xid-0001")).code == "event_not_accepted"
    facility = step(None, factory.event("registration.started")).registration
    facts = {"facts": factory.CERTIFICATE_FACTS, "certificate_fingerprint": PRINT}
    refusal = refused(facility, parse_event(factory.raw("xid.certificate_read", payload=facts)))
    assert refusal.code == "event_not_accepted"


# --- the xID path ---------------------------------------------------------------------------------------


def test_start_keeps_the_accepted_terms_and_refuses_others() -> None:
    reg = step(None, start()).registration
    assert (reg.profile, reg.state, reg.applicant, reg.facility_id) == (
        "xid",
        State.INFO_ENTERED,
        None,
        "xid-ios",
    )
    assert reg.xid.terms.model_dump() == factory.TERMS
    assert reg.expires_at == factory.NOW + timedelta(hours=24)
    other = {"facility_id": "xid-ios", "profile": "xid", "terms": {**factory.TERMS, "sha256": "0" * 64}}
    rejection = refused(None, xid("registration.started", other, source="app"))
    assert (rejection.code, rejection.message) == ("terms_outdated", words.TERMS_OUTDATED)


def test_the_facts_are_kept_and_a_reread_replaces_them() -> None:
    reg = step(None, start()).registration
    facts = {"facts": factory.CERTIFICATE_FACTS, "certificate_fingerprint": "b" * 64}
    reg = step(reg, xid("xid.certificate_read", facts)).registration
    assert (reg.state, reg.xid.facts.name) == (State.CARD_READ, factory.NAME)
    again = {"facts": {**factory.CERTIFICATE_FACTS, "name": "公的　太郎"}, "certificate_fingerprint": PRINT}
    reg = step(reg, xid("xid.certificate_read", again)).registration
    assert (reg.state, reg.xid.facts.name, reg.xid.certificate_fingerprint) == (
        State.CARD_READ,
        "公的　太郎",
        PRINT,
    )


def test_consent_issues_a_challenge_and_the_signature_is_over_the_consent_message() -> None:
    reg = step(None, start()).registration
    reg = step(
        reg,
        xid("xid.certificate_read", {"facts": factory.CERTIFICATE_FACTS, "certificate_fingerprint": PRINT}),
    ).registration
    consented = step(reg, xid("xid.consent_given"))
    assert [e.type for e in consented.emitted] == ["registration.challenge_issued"]
    reg = consented.registration
    assert (reg.state, reg.challenge, reg.challenge_attempt) == (State.CONFIRMED, CHALLENGE, 1)
    submitted = step(reg, xid("xid.signature_submitted", signature()))
    assert [e.type for e in submitted.emitted] == ["verification.requested"]
    signed = base64.b64decode(submitted.registration.signature.challenge)
    assert signed == consent_message(
        "reg-xid-0001", factory.TERMS["version"], factory.TERMS["sha256"], CHALLENGE
    )
    assert signed == (
        b"honnin-xid-consent-v1\nregistration_id=reg-xid-0001\nterms_version=2026-10\n"
        b"terms_sha256=" + b"e" * 64 + b"\nchallenge=" + CHALLENGE.encode() + b"\n"
    )


def test_another_certificate_than_the_one_read_may_not_sign() -> None:
    reg = step(None, start()).registration
    reg = step(
        reg,
        xid(
            "xid.certificate_read", {"facts": factory.CERTIFICATE_FACTS, "certificate_fingerprint": "b" * 64}
        ),
    ).registration
    reg = step(reg, xid("xid.consent_given")).registration
    rejection = refused(reg, xid("xid.signature_submitted", signature()))
    assert (rejection.code, rejection.message) == ("certificate_changed", words.CERTIFICATE_CHANGED)


def test_id_enabled_registers_the_device_key_and_finds_the_municipality() -> None:
    reg = step(verified(), xid("xid.activation_requested")).registration
    assert reg.state is State.ID_ENABLED
    assert reg.xid.device_key.sha256 == "c" * 64
    assert (reg.xid.municipality.status, reg.xid.municipality.code, reg.xid.municipality.name) == (
        "resolved",
        "131091",
        "東京都品川区",
    )


def test_an_address_no_municipality_matches_is_recorded_as_unknown() -> None:
    reg = step(None, start()).registration
    facts = {"facts": {**factory.CERTIFICATE_FACTS, "address": "日本国外"}, "certificate_fingerprint": PRINT}
    reg = step(reg, xid("xid.certificate_read", facts)).registration
    reg = step(reg, xid("xid.consent_given")).registration
    reg = step(reg, xid("xid.signature_submitted", signature())).registration
    reg = step(reg, xid("verification.completed", {"attempt": 1, "outcome": "pass"})).registration
    reg = step(reg, xid("xid.activation_requested")).registration
    assert reg.state is State.ID_ENABLED
    assert (reg.xid.municipality.status, reg.xid.municipality.code) == ("unknown", None)


def test_id_enabled_before_the_verification_passed_says_why() -> None:
    reg = step(None, start()).registration
    assert refused(reg, xid("xid.activation_requested")).code == "not_yet_accepted"
    reg = step(
        reg,
        xid("xid.certificate_read", {"facts": factory.CERTIFICATE_FACTS, "certificate_fingerprint": PRINT}),
    ).registration
    reg = step(reg, xid("xid.consent_given")).registration
    reg = step(reg, xid("xid.signature_submitted", signature())).registration
    reg = step(
        reg, xid("verification.completed", {"attempt": 1, "outcome": "fail", "code": "23"})
    ).registration
    rejection = refused(reg, xid("xid.activation_requested"))
    assert rejection.message == "失効済みのマイナンバーカードの可能性があります。(Code: 23)"


def test_entering_an_address_queues_the_mail_and_a_carrier_address_is_warned_about() -> None:
    plain = entered()
    assert plain.state is State.EMAIL_PENDING
    assert (plain.xid.email.attempt, plain.xid.email.delivery, plain.xid.email.warning) == (
        1,
        "pending",
        None,
    )
    assert plain.xid.email.link_expires_at == factory.NOW + timedelta(hours=24)
    assert plain.xid.email.retry_at == factory.NOW + timedelta(minutes=2), "asked again if never answered"
    assert plain.next_deadline() == plain.xid.email.retry_at
    carrier = entered("hanako@docomo.ne.jp")
    assert carrier.xid.email.warning == words.CARRIER_MAIL_WARNING


def test_the_queued_mail_request_carries_no_address() -> None:
    reg = step(verified(), xid("xid.activation_requested")).registration
    payload = {"email": "hanako@example.jp", "link_id": "link-0000000000000001", "link_sha256": "d" * 64}
    [request] = step(reg, xid("xid.email_entered", payload)).emitted
    assert request.type == "email.confirmation_requested"
    assert "hanako" not in request.model_dump_json()


@pytest.mark.parametrize(
    ("domain", "carrier"),
    [
        ("docomo.ne.jp", True),
        ("ezweb.ne.jp", True),
        ("biz.ezweb.ne.jp", True),
        ("au.com", True),
        ("softbank.ne.jp", True),
        ("i.softbank.jp", True),
        ("ymobile.ne.jp", True),
        ("DoCoMo.NE.JP", True),
        ("gmail.com", False),
        ("icloud.com", False),
        ("notdocomo.ne.jp", False),
        ("docomo.ne.jp.example.com", False),
    ],
)
def test_carrier_domains_are_data_and_match_subdomains_only(domain: str, carrier: bool) -> None:
    assert is_carrier_address(f"hanako@{domain}") is carrier


def test_delivery_sent_clears_the_schedule() -> None:
    reg = entered()
    sent = step(reg, delivered(reg, "sent")).registration
    assert (sent.xid.email.delivery, sent.xid.email.retry_at) == ("sent", None)
    assert sent.next_deadline() == sent.expires_at


def test_a_temporary_failure_backs_off_with_jitter_then_fails_at_the_limit() -> None:
    reg = entered()
    low = step(reg, delivered(reg, "temporary_failure", "mail_deferred", smtp_code=451), ctx(jitter=0.0))
    high = step(reg, delivered(reg, "temporary_failure", "mail_deferred"), ctx(jitter=0.999))
    assert low.registration.xid.email.retry_at == factory.NOW + timedelta(seconds=15)
    assert high.registration.xid.email.retry_at - factory.NOW > timedelta(seconds=29)
    waiting = low.registration
    assert (waiting.xid.email.delivery, waiting.xid.email.retries, waiting.xid.email.smtp_code) == (
        "retrying",
        1,
        451,
    )
    due = waiting.xid.email.retry_at
    again = step(waiting, deadline(due), ctx(now=due))
    assert [e.type for e in again.emitted] == ["email.confirmation_requested"]
    retried = again.registration
    retried = step(
        retried, delivered(retried, "temporary_failure", "mail_deferred"), ctx(now=due)
    ).registration
    due = retried.xid.email.retry_at
    assert due - factory.NOW > timedelta(seconds=30), "2^1 × 30 s"
    retried = step(retried, deadline(due), ctx(now=due)).registration
    failed = step(
        retried, delivered(retried, "temporary_failure", "mail_deferred"), ctx(now=due)
    ).registration
    assert (failed.xid.email.delivery, failed.xid.email.message) == ("failed", words.MAIL_GAVE_UP)
    assert failed.xid.email.retry_at is None


def test_a_permanent_failure_is_recorded_for_the_person() -> None:
    reg = entered()
    failed = step(reg, delivered(reg, "permanent_failure", "mail_rejected", smtp_code=550)).registration
    email = failed.xid.email
    assert (email.delivery, email.code, email.smtp_code, email.message) == (
        "failed",
        "mail_rejected",
        550,
        words.MAIL_REJECTED,
    )
    assert failed.next_deadline() == failed.expires_at, "nothing more is scheduled"


def test_an_answer_for_an_earlier_link_is_stale() -> None:
    reg = entered()
    payload = {"email": "hanako@example.jp", "link_id": "link-0000000000000002", "link_sha256": "f" * 64}
    again = step(reg, xid("xid.email_entered", payload)).registration
    assert again.xid.email.attempt == 2
    assert again.xid.email.voided == ("d" * 64,)
    stale = xid("email.delivery_completed", {"attempt": 1, "outcome": "sent"})
    assert refused(again, stale).code == "stale_delivery"


def test_the_current_link_confirms_before_it_expires() -> None:
    reg = entered()
    confirmed = step(reg, xid("xid.email_confirmed")).registration
    assert confirmed.state is State.EMAIL_CONFIRMED
    assert confirmed.xid.email.confirmed_at == factory.NOW
    assert confirmed.xid.email.retry_at is None
    late = ctx(now=factory.NOW + timedelta(hours=24))
    assert refused(reg, xid("xid.email_confirmed"), late).code == "link_expired"
    assert refused(reg, xid("xid.email_confirmed", {"link_sha256": "0" * 64})).code == "link_unknown"
    assert refused(confirmed, xid("xid.email_confirmed")).code == "event_not_accepted", "used"


def test_a_voided_link_is_told_apart_from_an_unknown_one() -> None:
    reg = entered()
    payload = {"email": "hanako@example.jp", "link_id": "link-0000000000000002", "link_sha256": "f" * 64}
    again = step(reg, xid("xid.email_entered", payload)).registration
    assert refused(again, xid("xid.email_confirmed")).code == "link_voided"
    assert (
        step(again, xid("xid.email_confirmed", {"link_sha256": "f" * 64})).registration.state
        is State.EMAIL_CONFIRMED
    )


def test_start_using_only_after_the_address_is_confirmed() -> None:
    enabled = step(verified(), xid("xid.activation_requested")).registration
    assert refused(enabled, xid("xid.use_started")).code == "not_yet_accepted"
    reg = entered()
    rejection = refused(reg, xid("xid.use_started"))
    assert (rejection.code, rejection.message) == ("email_not_confirmed", words.EMAIL_NOT_CONFIRMED)
    confirmed = step(reg, xid("xid.email_confirmed")).registration
    done = step(confirmed, xid("xid.use_started"))
    assert done.registration.state is State.ACTIVATED
    assert [e.type for e in done.emitted] == ["registration.activated"]
    assert done.emitted[0].payload.facility_id == "xid-ios"
    assert done.registration.terminal


def test_the_activation_timeout_covers_the_email_step_too() -> None:
    reg = entered()
    late = reg.expires_at
    expired = step(reg, deadline(late), ctx(now=late)).registration
    assert expired.state is State.EXPIRED


# --- no body can carry PIN1, PIN2 or a password -------------------------------------------------------------


def _fields(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name.lower())
        annotation = info.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= _fields(candidate)
    return names


REQUESTS = [
    api_xid.XidStartRequest,
    api_xid.CertificateRequest,
    api_xid.ConsentRequest,
    api_xid.XidSignatureRequest,
    api_xid.ActivationRequest,
    api_xid.EmailRequest,
    api_xid.EmptyRequest,
]


@pytest.mark.parametrize("model", REQUESTS, ids=lambda m: m.__name__)
def test_no_request_model_has_a_field_for_a_pin_or_a_password(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert not {n for n in _fields(model) if "pin" in n or "pass" in n or "secret" in n}
