"""Payloads of every event of the facility flow; the envelope in `events` wraps them."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.privacy import IdText, MultilineText, Text, refuse_id_digits

_MAX_CERT_B64 = 16_384
_MAX_SIG_B64 = 2_048


class Payload(BaseModel):
    """Strict on purpose: an unknown field is a caller's mistake, or a leak, and is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _is_base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be standard base64") from exc
    return value


Base64 = Annotated[str, AfterValidator(_is_base64)]
SHA256_HEX = r"^[0-9a-f]{64}$"
TERMS_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
FacilityId = Annotated[IdText, Field(min_length=1, max_length=64)]
"""A facility's own id (from HONNIN_FACILITY_TOKENS): 11 digits at most, like every chosen id."""
Reference = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$"), AfterValidator(refuse_id_digits)
]
"""A facility's own id for a registration: shaped like a registration id (schemas.references)."""
Fingerprint = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""SHA-256, hex: a fixed form, not screened (hex holds 12 decimal digits in a row by chance)."""


class ApplicantInfo(Payload):
    """What the person typed into the facility's form (必要事項); never a password."""

    login_id: Text = Field(min_length=1, max_length=64, description="ログインID")
    user_type: Text = Field(min_length=1, max_length=32, description="利用者種別, e.g. 勤労者")
    user_category: Text = Field(min_length=1, max_length=32, description="利用者区分, e.g. 個人")
    name: Text = Field(min_length=1, max_length=100, description="氏名")
    name_kana: Text | None = Field(default=None, max_length=100, description="氏名(フリガナ)")
    postal_code: Text | None = Field(default=None, max_length=10, description="郵便番号")
    address: Text = Field(min_length=1, max_length=200, description="住所")
    phone: Text | None = Field(default=None, max_length=20, description="連絡先電話番号")
    email: Text | None = Field(default=None, max_length=254, description="メールアドレス")
    identity_document: Literal["my_number_card"] = Field(default="my_number_card", description="本人確認書類")


class AcceptedTerms(Payload):
    """The terms of use the person accepted on the xID app's first screen (利用規約とプライバシーポリシー)."""

    version: str = Field(pattern=TERMS_VERSION, description="the terms' version, as the operator names it")
    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 of the terms document, lowercase hex")


class RegistrationStartedPayload(Payload):
    """Which flow, and what it starts with: the facility's form, or (xID) the terms the app showed.

    `profile` comes last so that its check sees the rest: a payload that does not fit its
    profile is refused at `profile`."""

    facility_id: FacilityId = Field(description="the facility, or the xID app client")
    reference: Reference | None = Field(
        default=None,
        description="the facility's own id for it; the registration_id is then derived from"
        " (facility_id, reference). Without it the registration_id is the reference too",
    )
    applicant: ApplicantInfo | None = Field(default=None, description="facility profile only")
    terms: AcceptedTerms | None = Field(default=None, description="xid profile only")
    profile: Literal["facility", "xid"] = "facility"

    @field_validator("profile")
    @classmethod
    def _fits_profile(cls, profile: str, info: ValidationInfo) -> str:
        data = info.data
        if profile == "facility" and data.get("terms") is not None:
            raise ValueError("the facility profile starts with the applicant's form, not with terms")
        if profile == "facility" and "applicant" in data and data["applicant"] is None:
            raise ValueError("the facility profile needs the applicant's form")
        if profile == "xid" and data.get("applicant") is not None:
            raise ValueError("the xid profile is started by the app with accepted terms, not a form")
        if profile == "xid" and "terms" in data and data["terms"] is None:
            raise ValueError("the xid profile needs the terms the person accepted")
        return profile


class CardFacts(Payload):
    """The card-info application's four facts (券面事項入力補助AP); sex is ISO 5218 as on the card."""

    name: Text = Field(min_length=1, max_length=100)
    address: Text = Field(min_length=1, max_length=200)
    birth_date: date
    sex: Literal[1, 2, 9]


class CardInfoReadPayload(Payload):
    card: CardFacts


class RegistrationConfirmedPayload(Payload):
    """【マイナンバーカードの確認へ】: the notice was acknowledged; contact info may be corrected."""

    notice_acknowledged: Literal[True]
    phone: Text | None = Field(default=None, max_length=20)
    email: Text | None = Field(default=None, max_length=254)


class SignatureSubmittedPayload(Payload):
    certificate: Base64 = Field(
        min_length=4, max_length=_MAX_CERT_B64, description="署名用電子証明書, DER, base64"
    )
    signature: Base64 = Field(
        min_length=4, max_length=_MAX_SIG_B64, description="signature over the challenge"
    )
    algorithm: Literal["rsa-pkcs1v15-sha256", "rsa-pss-sha256", "ecdsa-sha256"] = "rsa-pkcs1v15-sha256"


Outcome = Literal["pass", "fail", "retry_later"]


class VerificationCompletedPayload(Payload):
    attempt: int = Field(ge=1)
    outcome: Outcome
    code: Text | None = Field(default=None, max_length=32)
    message: MultilineText | None = Field(default=None, max_length=500)
    certificate_fingerprint: Fingerprint | None = None

    @model_validator(mode="after")
    def _code_explains_failure(self) -> VerificationCompletedPayload:
        if self.outcome != "pass" and not self.code:
            raise ValueError("a failed or retry_later outcome needs a code")
        return self


class EmptyPayload(Payload):
    pass


class CancelRequestedPayload(Payload):
    reason: MultilineText | None = Field(default=None, max_length=200)


class ReplayRequestedPayload(Payload):
    reason: MultilineText | None = Field(default=None, max_length=200)


class DeadlineReachedPayload(Payload):
    deadline: AwareDatetime


class ChallengeIssuedPayload(Payload):
    challenge: Base64
    attempt: int = Field(ge=1)


class VerificationRequestedPayload(Payload):
    attempt: int = Field(ge=1)


class SignatureVerifiedPayload(Payload):
    attempt: int = Field(ge=1)
    certificate_fingerprint: Fingerprint | None = None


class RegistrationActivatedPayload(Payload):
    facility_id: FacilityId
    activated_at: AwareDatetime


class VerificationFailedPayload(Payload):
    attempt: int = Field(ge=1)
    code: Text
    message: MultilineText
    may_sign_again: bool


class RegistrationEndedPayload(Payload):
    facility_id: FacilityId
    reason: MultilineText  # a cancel's reason, as the facility wrote it


class EventRejectedPayload(Payload):
    rejected_event_id: uuid.UUID
    rejected_type: Text
    code: Text
    message: MultilineText
