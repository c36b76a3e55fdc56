"""Answers of the xID app API built from a registration: states, outcomes, never more facts than asked."""

from __future__ import annotations

from adapters.web.wire import state_of
from adapters.web.wire import status_of as web_status_of
from orchestrator import messages_xid as words
from orchestrator.model import Registration
from orchestrator.model_xid import EmailConfirmation, MunicipalityRecord, XidRecord
from schemas.api_xid import EmailStatus, FourFacts, MunicipalityAnswer, XidStatus
from schemas.payloads_xid import CertificateFacts


def four_facts(facts: CertificateFacts) -> FourFacts:
    return FourFacts(
        name=facts.name,
        sex=facts.sex,
        sex_label=words.SEX_LABELS[facts.sex],
        birth_date=facts.birth_date,
        address=facts.address,
    )


def municipality_of(record: MunicipalityRecord) -> MunicipalityAnswer:
    return MunicipalityAnswer(
        status=record.status, code=record.code, name=record.name, note=words.MUNICIPALITY_WRONG
    )


def email_status(email: EmailConfirmation) -> EmailStatus:
    """The delivery as the app shows it; the address is the app's own and not sent back."""
    return EmailStatus(
        attempt=email.attempt,
        delivery=email.delivery,
        code=email.code,
        message=email.message,
        warning=email.warning,
        link_expires_at=email.link_expires_at,
        confirmed=email.confirmed_at is not None,
    )


def xid_of(registration: Registration) -> XidRecord:
    assert registration.xid is not None  # the routes open xID registrations only
    return registration.xid


def status_of(registration: Registration) -> XidStatus:
    xid = xid_of(registration)
    return XidStatus(
        registration_id=registration.id,
        state=state_of(registration.state),
        expires_at=registration.expires_at,
        verification=web_status_of(registration).verification,
        device_registered=xid.device_key is not None,
        municipality=municipality_of(xid.municipality) if xid.municipality else None,
        email=email_status(xid.email) if xid.email else None,
        activated_at=registration.activated_at,
    )
