"""Bodies of the facility's outbound channel: its webhook endpoint and the event feed.

The events themselves are the envelopes of `schemas.events` (the feed and a webhook carry the same
body); `WebhookTest` is the one event made only for a facility, to try its receiver.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.events import (
    ChallengeIssued,
    EventRejected,
    RegistrationActivated,
    RegistrationCancelled,
    RegistrationExpired,
    SignatureVerified,
    VerificationFailed,
)
from schemas.privacy import refuse_individual_number_anywhere

EndpointState = Literal["active", "failing", "disabled"]
FACILITY_EVENT_MODELS = (
    ChallengeIssued,
    SignatureVerified,
    VerificationFailed,
    RegistrationActivated,
    RegistrationExpired,
    RegistrationCancelled,
    EventRejected,
)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PutWebhookRequest(BaseModel):
    """Where Honnin posts this facility's events: https, a public address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1, max_length=2048, description="https://… (http only to loopback in development)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_individual_number(cls, data: Any) -> Any:
        return refuse_individual_number_anywhere(data)


class WebhookSecret(_Answer):
    """The endpoint as registered, with its signing secret: shown this once, never again."""

    url: str
    state: EndpointState
    secret: str = Field(description="whsec_…: verify webhook-signature with it (Standard Webhooks)")
    previous_secret_valid_until: AwareDatetime | None = Field(
        None, description="after a rotation the old secret signs too, until then"
    )
    updated_at: AwareDatetime


class LastDelivery(_Answer):
    attempted_at: AwareDatetime
    status: int | None = Field(None, description="the receiver's HTTP status; none when it did not answer")
    error: str | None = None
    delivered_at: AwareDatetime | None = Field(None, description="the last 2xx")


class WebhookStatus(_Answer):
    """The endpoint without its secret: failing after the retry schedule ran out (an operator replays),
    disabled after the receiver answered 410 (a new PUT enables it)."""

    url: str
    state: EndpointState
    created_at: AwareDatetime
    updated_at: AwareDatetime
    previous_secret_valid_until: AwareDatetime | None = None
    pending: int = Field(description="deliveries not delivered yet")
    last_delivery: LastDelivery | None = None


class WebhookTestSent(_Answer):
    event_id: str = Field(description="the webhook-id the test delivery carries")


class WebhookTestPayload(_Answer):
    facility_id: str


class WebhookTest(_Answer):
    """A test event (POST /v1/webhook/test), delivered like every other event; never in the feed."""

    event_id: str
    type: Literal["webhook.test"]
    occurred_at: AwareDatetime
    source: Literal["orchestrator"]
    schema_version: Literal[1]
    payload: WebhookTestPayload


FacilityEventBody = Annotated[
    ChallengeIssued
    | SignatureVerified
    | VerificationFailed
    | RegistrationActivated
    | RegistrationExpired
    | RegistrationCancelled
    | EventRejected,
    Field(discriminator="type"),
]


class FeedPage(_Answer):
    """This facility's events after the cursor, in commit order; continue with `cursor`."""

    events: list[FacilityEventBody]
    cursor: str = Field(description="opaque: pass it as `after` to get the events that follow")
