"""Before the first event: only registration.started creates a registration."""

from __future__ import annotations

from orchestrator import messages_xid
from orchestrator.model import Applied, Context, Registration, Rejection, State
from orchestrator.model_xid import XidRecord
from orchestrator.states.rules import Rule
from schemas.events import Envelope, RegistrationStarted

STATE = State.NEW


def unaccepted(_: Registration | None, event: Envelope) -> Rejection:
    """Anything else may simply have overtaken its registration.started: retry it later."""
    return Rejection(
        code="unknown_registration",
        message=f"no registration {event.registration_id} (yet) for {event.type}",
        retryable=True,
    )


def _known_profile(_: Registration | None, event: RegistrationStarted, ctx: Context) -> Rejection | None:
    if event.payload.profile not in ctx.profiles:
        return Rejection("unknown_profile", f"profile {event.payload.profile!r} is not configured")
    terms = event.payload.terms
    if terms is not None and terms not in ctx.profiles[event.payload.profile].terms:
        return Rejection("terms_outdated", messages_xid.TERMS_OUTDATED)
    return None


def _start(_: Registration | None, event: RegistrationStarted, ctx: Context, state: State) -> Applied:
    profile = ctx.profiles[event.payload.profile]
    registration = Registration(
        id=event.registration_id,
        reference=event.payload.reference or event.registration_id,
        profile=profile.name,
        facility_id=event.payload.facility_id,
        state=state,
        created_at=ctx.now,
        updated_at=ctx.now,
        expires_at=ctx.now + profile.activation_timeout,
        applicant=event.payload.applicant,
        xid=XidRecord(terms=event.payload.terms) if event.payload.terms else None,
    )
    return Applied(registration)


RULES = [
    Rule("registration.started", _start, dest=State.INFO_ENTERED, guard=_known_profile),
]
