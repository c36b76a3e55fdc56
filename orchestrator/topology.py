"""Which queue hears which event: the same topology on RabbitMQ and on the in-process bus."""

from __future__ import annotations

from schemas.events import (
    INBOUND_TYPES,
    ChallengeIssued,
    EmailConfirmationRequested,
    EventRejected,
    RegistrationActivated,
    RegistrationCancelled,
    RegistrationExpired,
    SignatureVerified,
    VerificationFailed,
    VerificationRequested,
    event_type,
)

ORCHESTRATOR_QUEUE = "honnin.orchestrator"
VERIFIER_QUEUE = "honnin.verifier"
FACILITY_QUEUE = "honnin.facility"
MAIL_QUEUE = "honnin.mail"

QUEUES: dict[str, tuple[str, ...]] = {
    ORCHESTRATOR_QUEUE: tuple(sorted(INBOUND_TYPES)),
    VERIFIER_QUEUE: (event_type(VerificationRequested),),
    MAIL_QUEUE: (event_type(EmailConfirmationRequested),),  # xID: the mail worker sends the link
    FACILITY_QUEUE: tuple(
        event_type(c)
        for c in (
            ChallengeIssued,
            RegistrationActivated,
            SignatureVerified,
            VerificationFailed,
            RegistrationExpired,
            RegistrationCancelled,
            EventRejected,
        )
    ),
}
"""Every outbound event has a queue, so a mandatory publish of it is never returned. The phone
app reads its challenge from the card bridge's HTTP API; the facility hears that one was issued."""
