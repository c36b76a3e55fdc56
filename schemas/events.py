"""The one versioned envelope and every event type of both flows (facility, xID).

Nothing else in Honnin defines a wire format: adapters parse with `parse_event` and
serialise with `Event.model_dump_json()`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from schemas import payloads as p
from schemas import payloads_xid as x
from schemas import strict_json
from schemas.privacy import mask_individual_numbers, refuse_id_digits
from schemas.references import namespaced_id

Source = Literal["web", "app", "verifier", "orchestrator", "operator", "mailer"]
SCHEMA_VERSION: Literal[1] = 1

RegistrationId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$"), AfterValidator(refuse_id_digits)
]
"""8-64 characters of A-Z a-z 0-9 _ -, and at most 11 digits: an id never carries an individual number."""


class EnvelopeError(ValueError):
    """Bad input on the wire; `details` never carries the input value back (it may be personal)."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class Envelope(BaseModel):
    """Fields every event carries; subclasses fix `type`, the payload and who may send it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sources: ClassVar[frozenset[str]] = frozenset()

    type: str
    event_id: uuid.UUID
    registration_id: RegistrationId
    occurred_at: AwareDatetime
    source: Source
    schema_version: Literal[1] = SCHEMA_VERSION

    @model_validator(mode="after")
    def _source_may_send(self) -> Envelope:
        if self.sources and self.source not in self.sources:
            allowed = ", ".join(sorted(self.sources))
            raise ValueError(f"source {self.source!r} may not send this event (allowed: {allowed})")
        return self


_WEB = frozenset({"web", "operator"})
_APP = frozenset({"app"})
_VERIFIER = frozenset({"verifier"})
_ORCHESTRATOR = frozenset({"orchestrator"})
_MAILER = frozenset({"mailer"})


class RegistrationStarted(Envelope):
    """The facility's web page starts a facility registration; the xID app starts its own."""

    sources: ClassVar[frozenset[str]] = _WEB | _APP
    type: Literal["registration.started"]
    payload: p.RegistrationStartedPayload

    @model_validator(mode="after")
    def _profile_source(self) -> RegistrationStarted:
        allowed = _APP if self.payload.profile == "xid" else _WEB
        if self.source not in allowed:
            names = ", ".join(sorted(allowed))
            raise ValueError(f"source {self.source!r} may not send this event (allowed: {names})")
        reference = self.payload.reference
        if reference is not None and self.registration_id != namespaced_id(
            self.payload.facility_id, reference
        ):
            raise ValueError("with a reference, registration_id is derived from facility_id and reference")
        return self


class CardInfoRead(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["card.info_read"]
    payload: p.CardInfoReadPayload


class RegistrationConfirmed(Envelope):
    sources: ClassVar[frozenset[str]] = _WEB
    type: Literal["registration.confirmed"]
    payload: p.RegistrationConfirmedPayload


class SignatureSubmitted(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["card.signature_submitted"]
    payload: p.SignatureSubmittedPayload


class VerificationCompleted(Envelope):
    sources: ClassVar[frozenset[str]] = _VERIFIER
    type: Literal["verification.completed"]
    payload: p.VerificationCompletedPayload


class RegistrationCompleteRequested(Envelope):
    sources: ClassVar[frozenset[str]] = _WEB
    type: Literal["registration.complete_requested"]
    payload: p.EmptyPayload = p.EmptyPayload()


class RegistrationCancelRequested(Envelope):
    sources: ClassVar[frozenset[str]] = _WEB
    type: Literal["registration.cancel_requested"]
    payload: p.CancelRequestedPayload = p.CancelRequestedPayload()


class VerificationReplayRequested(Envelope):
    """An operator asks for a parked verification to be tried again with the kept signature."""

    sources: ClassVar[frozenset[str]] = frozenset({"operator"})
    type: Literal["verification.replay_requested"]
    payload: p.ReplayRequestedPayload = p.ReplayRequestedPayload()


class DeadlineReached(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.deadline_reached"]
    payload: p.DeadlineReachedPayload


class ChallengeIssued(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.challenge_issued"]
    payload: p.ChallengeIssuedPayload


class VerificationRequested(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["verification.requested"]
    payload: p.VerificationRequestedPayload


class VerificationFailed(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.verification_failed"]
    payload: p.VerificationFailedPayload


class SignatureVerified(Envelope):
    """The verifier passed the signature: the facility may offer 【完了する】."""

    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.signature_verified"]
    payload: p.SignatureVerifiedPayload


class RegistrationActivated(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.activated"]
    payload: p.RegistrationActivatedPayload


class RegistrationExpired(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.expired"]
    payload: p.RegistrationEndedPayload


class RegistrationCancelled(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.cancelled"]
    payload: p.RegistrationEndedPayload


class EventRejected(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["registration.event_rejected"]
    payload: p.EventRejectedPayload


# --- the xID profile (seed 003) ------------------------------------------------------------------


class CertificateRead(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.certificate_read"]
    payload: x.CertificateReadPayload


class ConsentGiven(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.consent_given"]
    payload: x.ConsentGivenPayload


class XidSignatureSubmitted(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.signature_submitted"]
    payload: x.XidSignaturePayload


class ActivationRequested(Envelope):
    """ID有効化: the app registers its device key."""

    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.activation_requested"]
    payload: x.ActivationRequestedPayload


class EmailEntered(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.email_entered"]
    payload: x.EmailEnteredPayload


class EmailConfirmed(Envelope):
    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.email_confirmed"]
    payload: x.EmailConfirmedPayload


class UseStarted(Envelope):
    """利用を開始する: the registration is done; `registration.activated` follows."""

    sources: ClassVar[frozenset[str]] = _APP
    type: Literal["xid.use_started"]
    payload: p.EmptyPayload = p.EmptyPayload()


class EmailDeliveryCompleted(Envelope):
    sources: ClassVar[frozenset[str]] = _MAILER
    type: Literal["email.delivery_completed"]
    payload: x.EmailDeliveryCompletedPayload


class EmailConfirmationRequested(Envelope):
    sources: ClassVar[frozenset[str]] = _ORCHESTRATOR
    type: Literal["email.confirmation_requested"]
    payload: x.EmailConfirmationRequestedPayload


INBOUND: tuple[type[Envelope], ...] = (
    RegistrationStarted,
    CardInfoRead,
    RegistrationConfirmed,
    SignatureSubmitted,
    VerificationCompleted,
    RegistrationCompleteRequested,
    RegistrationCancelRequested,
    VerificationReplayRequested,
    CertificateRead,
    ConsentGiven,
    XidSignatureSubmitted,
    ActivationRequested,
    EmailEntered,
    EmailConfirmed,
    UseStarted,
    EmailDeliveryCompleted,
)
"""What the outside world sends the orchestrator."""

INTERNAL: tuple[type[Envelope], ...] = (DeadlineReached,)
"""What the orchestrator sends itself (persisted deadlines)."""

OUTBOUND: tuple[type[Envelope], ...] = (
    ChallengeIssued,
    VerificationRequested,
    VerificationFailed,
    SignatureVerified,
    RegistrationActivated,
    RegistrationExpired,
    RegistrationCancelled,
    EventRejected,
    EmailConfirmationRequested,
)
"""What the orchestrator emits through the outbox."""

ALL_EVENTS = INBOUND + INTERNAL + OUTBOUND
AnyEvent = Annotated[
    RegistrationStarted
    | CardInfoRead
    | RegistrationConfirmed
    | SignatureSubmitted
    | VerificationCompleted
    | RegistrationCompleteRequested
    | RegistrationCancelRequested
    | VerificationReplayRequested
    | DeadlineReached
    | ChallengeIssued
    | VerificationRequested
    | VerificationFailed
    | SignatureVerified
    | RegistrationActivated
    | RegistrationExpired
    | RegistrationCancelled
    | EventRejected
    | CertificateRead
    | ConsentGiven
    | XidSignatureSubmitted
    | ActivationRequested
    | EmailEntered
    | EmailConfirmed
    | UseStarted
    | EmailDeliveryCompleted
    | EmailConfirmationRequested,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_type(cls: type[Envelope]) -> str:
    """The routing key of an envelope class (its `type` literal)."""
    (literal,) = get_args(cls.model_fields["type"].annotation)
    assert isinstance(literal, str)
    return literal


INBOUND_TYPES = frozenset(event_type(c) for c in INBOUND)
OUTBOUND_TYPES = frozenset(event_type(c) for c in OUTBOUND)


_OWN_WORDS = {
    "extra_forbidden": "unknown field (refused)",
    "union_tag_invalid": "unknown event type",
    "union_tag_not_found": "the event type is missing",
}


def _loc(err: Any) -> str:
    """The path to the error. An unknown field's name is the caller's own words, so it is never
    repeated (an address or an e-mail may stand there, or a `trace_id`: all read `<unknown>`)."""
    parts = [str(x) for x in err["loc"]]
    if err["type"] == "extra_forbidden" and parts:
        parts[-1] = "<unknown>"
    return mask_individual_numbers(".".join(parts))


def error_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and why, in words that never quote the input (it may be personal)."""
    return [
        {
            "loc": _loc(err),
            "type": err["type"],
            "msg": _OWN_WORDS.get(err["type"]) or mask_individual_numbers(err["msg"]),
        }
        for err in exc.errors(include_input=False, include_url=False, include_context=False)
    ]


def _explain(exc: ValidationError) -> EnvelopeError:
    """Pydantic quotes some input (unknown field names, union tags): those get our own words."""
    details = error_details(exc)
    summary = "; ".join(f"{d['loc'] or '(envelope)'}: {d['msg']}" for d in details[:5])
    return EnvelopeError(f"invalid event: {summary}", details)


def parse_event(raw: bytes | str | dict[str, Any]) -> AnyEvent:
    """Parse and validate one envelope from the wire; raise EnvelopeError with a safe message.

    Text is read by `strict_json.loads`: UTF-8 only, and a key given twice is refused."""
    try:
        data = raw if isinstance(raw, dict) else strict_json.loads(raw)
        return _ADAPTER.validate_python(data)
    except strict_json.JsonTextError as exc:
        detail = {"loc": "", "type": exc.code, "msg": exc.message}
        raise EnvelopeError(f"invalid event: {exc.message}", [detail]) from None
    except ValidationError as exc:
        raise _explain(exc) from None


def new_event_id() -> uuid.UUID:
    return uuid.uuid4()


def derived_event_id(*parts: str) -> uuid.UUID:
    """A stable id for an event the orchestrator derives, so a retried derivation deduplicates."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "honnin:" + ":".join(parts))
