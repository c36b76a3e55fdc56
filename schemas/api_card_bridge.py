"""Bodies of the card bridge's HTTP API (the phone app's side); the OpenAPI document reuses them.

Requests reuse the event payloads' own constraints (`CardFacts`, base64 limits, algorithms), so
the API cannot accept what the event would refuse. Every model forbids unknown fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.payloads import CardInfoReadPayload, SignatureSubmittedPayload
from schemas.privacy import refuse_individual_number_anywhere

CARD_READ_SUCCEEDED = "マイナンバーカードの読み込みに成功しました。"
SIGNATURE_SUCCEEDED = "電子署名処理に成功しました。"

LinkStep = Literal["card_read", "sign"]


class _RefusesIndividualNumber(BaseModel):
    """A request body: the individual number is refused wherever it hides, before field checks."""

    @model_validator(mode="before")
    @classmethod
    def _no_individual_number(cls, data: Any) -> Any:
        return refuse_individual_number_anywhere(data)


class CardInfoRequest(CardInfoReadPayload, _RefusesIndividualNumber):
    """Step 2: the four facts the app read with the 4-digit PIN (券面事項入力補助用), never the 個人番号."""


class SignatureRequest(SignatureSubmittedPayload):
    """Step 5: certificate and signature; no anywhere-check, base64 may hold 12 digits by chance."""


class _Response(BaseModel):
    """Answers are as strict as requests: the document says exactly what the app receives."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkInfo(_Response):
    """Which step a link serves, so the app opens the right screen; `sign` adds the challenge."""

    step: LinkStep
    registration_id: str
    expires_at: AwareDatetime
    challenge: str | None = Field(default=None, description="base64; sign links only")
    attempt: int | None = Field(default=None, ge=1, description="the challenge's attempt; sign links only")


class CardInfoAccepted(_Response):
    """The card read is recorded; the app shows the seed's success message as it is."""

    state: Literal["card_read"] = "card_read"
    message: str = CARD_READ_SUCCEEDED


class ChallengeResponse(_Response):
    """The bytes the card must sign (base64) and which attempt they belong to."""

    challenge: str
    attempt: int = Field(ge=1)


class SignatureAccepted(_Response):
    """The signature is taken and verification runs in the background; the web page shows the result."""

    state: Literal["confirmed"] = "confirmed"
    verification: Literal["pending"] = "pending"
    message: str = SIGNATURE_SUCCEEDED
