"""The xID profile's steps in the states it shares with the facility flow (seed 003, STEP 1).

INFO_ENTERED and CARD_READ take the signing certificate's facts (再読み取り replaces them), CARD_READ
the consent (本人確認に関する同意, a challenge is issued), CONFIRMED the signature over the consent
message, SIGNATURE_VERIFIED the ID有効化 with the device key; the verifier's rules are the facility's.
"""

from __future__ import annotations

import base64
import hashlib

from orchestrator import messages_xid as words
from orchestrator.model import Applied, Context, Registration, Rejection, Signature, State
from orchestrator.model_xid import MunicipalityRecord, XidRecord
from orchestrator.municipality import resolve
from orchestrator.states.card_read import issue_challenge
from orchestrator.states.confirmed import _not_while_verifying, _why_not_complete, verify
from orchestrator.states.rules import Rule, existing, refuse
from orchestrator.xid import consent_message
from schemas.events import ActivationRequested, CertificateRead, ConsentGiven, XidSignatureSubmitted


def record(reg: Registration) -> XidRecord:
    """Every xID registration has its record from the start; say so once for the type checker."""
    if reg.xid is None:
        raise AssertionError("an xID step on a registration without its xID record")
    return reg.xid


def _read_certificate(
    registration: Registration | None, event: CertificateRead, ctx: Context, state: State
) -> Applied:
    """Keep the four facts and which certificate they came from; a re-read replaces both."""
    reg = existing(registration)
    xid = record(reg).model_copy(
        update={
            "facts": event.payload.facts,
            "certificate_fingerprint": event.payload.certificate_fingerprint,
        }
    )
    return Applied(reg.model_copy(update={"state": state, "xid": xid, "updated_at": ctx.now}))


def _consent(registration: Registration | None, event: ConsentGiven, ctx: Context, state: State) -> Applied:
    reg = existing(registration)
    consented = reg.model_copy(update={"state": state, "updated_at": ctx.now})
    consented, challenge = issue_challenge(consented, event, ctx)
    return Applied(consented, [challenge])


def signed_message(reg: Registration) -> bytes:
    """What this registration's current signature must be over (see `orchestrator.xid`)."""
    assert reg.challenge is not None
    terms = record(reg).terms
    return consent_message(reg.id, terms.version, terms.sha256, reg.challenge)


def _same_certificate(
    registration: Registration | None, event: XidSignatureSubmitted, ctx: Context
) -> Rejection | None:
    """The certificate that signs must be the one whose facts the person saw and sent."""
    reg = existing(registration)
    busy = _not_while_verifying(registration, event, ctx)
    if busy is not None:
        return busy
    der = base64.b64decode(event.payload.certificate)
    if hashlib.sha256(der).hexdigest() != record(reg).certificate_fingerprint:
        return Rejection("certificate_changed", words.CERTIFICATE_CHANGED)
    return None


def _submit(
    registration: Registration | None, event: XidSignatureSubmitted, ctx: Context, state: State
) -> Applied:
    reg = existing(registration)
    signature = Signature(
        certificate=event.payload.certificate,
        signature=event.payload.signature,
        algorithm=event.payload.algorithm,
        challenge=base64.b64encode(signed_message(reg)).decode(),  # the bytes the card signed
        attempt=reg.challenge_attempt,
        submitted_at=ctx.now,
    )
    return verify(reg, signature, event, ctx)


def _enable(
    registration: Registration | None, event: ActivationRequested, ctx: Context, state: State
) -> Applied:
    """ID有効化: the device key is registered and お住まいの自治体 found from the certificate's address."""
    reg = existing(registration)
    xid = record(reg)
    assert xid.facts is not None  # the certificate was read before anything could be signed
    found = resolve(xid.facts.address, xid.facts.address_substituted)
    municipality = (
        MunicipalityRecord(status="resolved", code=found.code, name=found.name, resolved_at=ctx.now)
        if found
        else MunicipalityRecord(status="unknown", resolved_at=ctx.now)
    )
    enabled = xid.model_copy(
        update={"device_key": event.payload.device_key, "enabled_at": ctx.now, "municipality": municipality}
    )
    return Applied(reg.model_copy(update={"state": state, "xid": enabled, "updated_at": ctx.now}))


RULES: dict[State, list[Rule]] = {
    State.INFO_ENTERED: [Rule("xid.certificate_read", _read_certificate, dest=State.CARD_READ)],
    State.CARD_READ: [
        Rule("xid.certificate_read", _read_certificate),
        Rule("xid.consent_given", _consent, dest=State.CONFIRMED),
    ],
    State.CONFIRMED: [
        Rule("xid.signature_submitted", _submit, guard=_same_certificate),
        refuse("xid.activation_requested", _why_not_complete),
    ],
    State.SIGNATURE_VERIFIED: [Rule("xid.activation_requested", _enable, dest=State.ID_ENABLED)],
}
