"""Before the first event: only registration.started creates a registration."""

from __future__ import annotations

from orchestrator.model import Applied, Context, Registration, Rejection, State
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
    return None


def _start(_: Registration | None, event: RegistrationStarted, ctx: Context, state: State) -> Applied:
    profile = ctx.profiles[event.payload.profile]
    registration = Registration(
        id=event.registration_id,
        profile=profile.name,
        facility_id=event.payload.facility_id,
        state=state,
        created_at=ctx.now,
        updated_at=ctx.now,
        expires_at=ctx.now + profile.activation_timeout,
        applicant=event.payload.applicant,
    )
    return Applied(registration)


RULES = [
    Rule("registration.started", _start, dest=State.INFO_ENTERED, guard=_known_profile),
]
