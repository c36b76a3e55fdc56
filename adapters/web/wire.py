"""The facility API's wire: optional bodies in, answers built from a registration out.

`read_json` answers 415, 413, 400 and 422 without the input, unknown field names included
(`schemas.events.error_details`).
"""

from __future__ import annotations

from typing import TypeVar, get_args

from aiohttp import web
from pydantic import BaseModel

from adapters.card_bridge.links import IssuedLink
from adapters.http.common import read_json
from orchestrator import messages
from orchestrator.model import Registration, State, Verification
from schemas.api_web import (
    Link,
    OsLink,
    RegistrationState,
    RegistrationStatus,
    RemedyText,
    VerificationStatus,
)

Model = TypeVar("Model", bound=BaseModel)
_STATES: dict[str, RegistrationState] = {s: s for s in get_args(RegistrationState)}


async def read_optional_body(request: web.Request, model: type[Model]) -> Model:
    """For routes whose body may be left out (DELETE): the model's defaults then."""
    if not request.body_exists:
        return model()
    return await read_json(request, model)


def state_of(state: State) -> RegistrationState:
    """The state as the API's literal; a state the API does not know fails loudly here."""
    return _STATES[state.value]


def link_of(issued: IssuedLink) -> Link:
    """A link as the page gets it (the token is inside the URL, not repeated)."""
    return Link(
        url=issued.url,
        deep_link=issued.deep_link,
        qr_svg_url=issued.qr_svg_url,
        qr_png_url=issued.qr_png_url,
        expires_at=issued.expires_at,
        ios=OsLink(**vars(issued.ios)),
        android=OsLink(**vars(issued.android)),
    )


def status_of(registration: Registration) -> RegistrationStatus:
    """States, deadlines and outcomes only: no applicant or card facts."""
    verification = registration.verification
    return RegistrationStatus(
        registration_id=registration.reference,  # the facility's own id (schemas.references)
        state=state_of(registration.state),
        created_at=registration.created_at,
        updated_at=registration.updated_at,
        expires_at=registration.expires_at,
        challenge_attempt=registration.challenge_attempt,
        verification=_verification(verification) if verification else None,
        activated_at=registration.activated_at,
        ended_at=registration.ended_at,
    )


def _verification(verification: Verification) -> VerificationStatus:
    """While it runs, Honnin's own words; once decided, the seed's message for the code."""
    message = verification.message or (messages.VERIFICATION_PENDING if verification.in_progress else None)
    found = messages.remedy_for(message) if message and not verification.in_progress else None
    remedy = RemedyText(cause=found.cause, remedy=found.remedy, note=found.note) if found else None
    return VerificationStatus(
        remedy=remedy,
        attempt=verification.attempt,
        status=verification.status,
        code=verification.code,
        message=message,
        retries=verification.retries,
        retry_at=verification.retry_at,
    )
