"""Bodies of the facility web API (the reservation system's side); the OpenAPI document reuses them.

Requests reuse the event payloads' own constraints (`ApplicantInfo`, `RegistrationConfirmedPayload`),
so the API cannot accept what the event would refuse. Every model forbids unknown fields (a
`password` is refused), and a request refuses the 12-digit individual number wherever it hides.
Answers carry states, deadlines and the seed's messages; personal facts only in `ReflectResponse`,
which exists to fill the facility's own form.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.events import RegistrationId
from schemas.payloads import (
    ApplicantInfo,
    CancelRequestedPayload,
    CardFacts,
    RegistrationConfirmedPayload,
)
from schemas.privacy import refuse_id_digits, refuse_individual_number_anywhere

RegistrationState = Literal[
    "info_entered",
    "card_read",
    "confirmed",
    "signature_verified",
    "id_enabled",  # xID profile only, as the two below
    "email_pending",
    "email_confirmed",
    "activated",
    "expired",
    "cancelled",
]
VerificationState = Literal["pending", "retrying", "passed", "failed", "parked"]

RequestId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
    AfterValidator(refuse_id_digits),
]
"""The caller's idempotency key for a start: the same key is the same registration (11 digits at most)."""


class _Request(BaseModel):
    """A request body: the individual number is refused wherever it hides, before field checks."""

    @model_validator(mode="before")
    @classmethod
    def _no_individual_number(cls, data: Any) -> Any:
        return refuse_individual_number_anywhere(data)


class _Answer(BaseModel):
    """An answer body: strict too, so the document and the code cannot drift apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StartRegistrationRequest(_Request):
    """必要事項を入力 and 【アプリを起動する】: the form as typed; a password is refused (unknown field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    applicant: ApplicantInfo
    registration_id: RegistrationId | None = Field(
        default=None,
        description="the caller's own id, unique within this facility (another facility may use the"
        " same one); generated (reg-…) when absent",
    )
    request_id: RequestId | None = Field(
        default=None, description="idempotency key: a retried POST with it answers the same registration"
    )


class ConfirmRequest(RegistrationConfirmedPayload, _Request):
    """【マイナンバーカードの確認へ】: the notice checkbox was ticked; phone and e-mail may be corrected."""


class CancelRequest(CancelRequestedPayload, _Request):
    """Cancelling a registration (optional body): the facility may say why, in its own words."""


class OsLink(_Answer):
    """One OS's way to the app: the PC/tablet page shows `qr_svg_url` (it encodes `url`, the link
    with `?os=ios|android`); a phone's page links `url` (the landing page) or `deep_link`."""

    url: str = Field(
        description="the link with ?os=: what this OS's QR code encodes; a browser gets the landing page"
    )
    deep_link: str = Field(
        description=(
            "opens the app: honnin-jpki://open?link=… on iOS,"
            " intent://open?link=…#Intent;scheme=honnin-jpki;end on Android"
        )
    )
    qr_svg_url: str
    qr_png_url: str


class Link(_Answer):
    """A one-time link for the phone app: iPhone/Android open `deep_link`, a PC/tablet shows the QR code
    (one per OS: `ios` and `android`, as the seed's PC page does)."""

    url: str
    deep_link: str
    qr_svg_url: str
    qr_png_url: str
    expires_at: AwareDatetime
    ios: OsLink
    android: OsLink


class StartRegistrationResponse(_Answer):
    """The registration exists: the page opens the app (or shows the QR code) with the card-read link."""

    registration_id: str
    state: RegistrationState
    expires_at: AwareDatetime
    card_read_link: Link


class RemedyText(_Answer):
    """Seed 000 §3's 原因・対処法 for the error `message` shows, verbatim: shown under it."""

    cause: str | None = Field(default=None, description="原因, when the seed names one")
    remedy: str = Field(description="対処法: what the person does next")
    note: str | None = Field(default=None, description="the seed's ※ note (where to renew the card)")


class VerificationStatus(_Answer):
    """Where the signature's verification stands; `message` is the seed's text, shown as it is."""

    attempt: int
    status: VerificationState
    code: str | None = None
    message: str | None = None
    retries: int = 0
    retry_at: AwareDatetime | None = None
    remedy: RemedyText | None = Field(default=None, description="after a failure: the seed's 原因・対処法")


class RegistrationStatus(_Answer):
    """A registration as the facility may see it: states and deadlines, no personal facts."""

    registration_id: str
    state: RegistrationState
    created_at: AwareDatetime
    updated_at: AwareDatetime
    expires_at: AwareDatetime
    challenge_attempt: int
    verification: VerificationStatus | None = None
    activated_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None


class ReflectResponse(_Answer):
    """【情報を反映する】: the card's four facts fill the form, with the seed's success message."""

    card: CardFacts
    message: str


class SignLinkResponse(_Answer):
    """The link the app signs with, bound to the registration's current challenge attempt."""

    registration_id: str
    state: RegistrationState
    attempt: int
    sign_link: Link


class CompleteResponse(_Answer):
    """【完了する】 succeeded: the account is activated (the facility queue hears it once)."""

    registration_id: str
    state: Literal["activated"]
    activated_at: AwareDatetime


class CancelResponse(_Answer):
    """The registration is cancelled: nothing it held may be used any more."""

    registration_id: str
    state: Literal["cancelled"]
