"""Which queue hears which event, and which events a facility hears: one topology for both buses."""

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

FACILITY_EVENTS: tuple[str, ...] = tuple(
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
)
"""What a facility hears: a commit writes each to its feed and, with a webhook, a delivery record.
They go to the bus only when the facility queue is enabled (a facility consuming AMQP)."""

QUEUES: dict[str, tuple[str, ...]] = {
    ORCHESTRATOR_QUEUE: tuple(sorted(INBOUND_TYPES)),
    VERIFIER_QUEUE: (event_type(VerificationRequested),),
    MAIL_QUEUE: (event_type(EmailConfirmationRequested),),  # xID: the mail worker sends the link
}
"""The queues Honnin itself consumes. Every event the outbox carries has one, so a mandatory publish
is never returned; the phone app reads its challenge from the card bridge's HTTP API."""


def queues(*, facility_queue: bool) -> dict[str, tuple[str, ...]]:
    """The queues to declare: Honnin's own, and the facility queue only when someone reads it."""
    if facility_queue:
        return {**QUEUES, FACILITY_QUEUE: FACILITY_EVENTS}
    return dict(QUEUES)
