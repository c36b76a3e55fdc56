"""Bodies of the xID app's API (seed 003, `/app/v1/xid`); the OpenAPI document reuses them.

Every request forbids unknown fields and none has a field for the app's PIN1 or PIN2 or the
signing password: they stay on the device (a test tries them in every body). Text bodies are
screened for the individual number wherever it hides; base64 bodies are not (12 digits may
appear in them by chance).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from schemas.api_card_bridge import SIGNATURE_SUCCEEDED, _RefusesIndividualNumber
from schemas.api_web import RegistrationState, VerificationStatus
from schemas.payloads import AcceptedTerms, Base64
from schemas.payloads_xid import XidSignaturePayload


def _sendable_address(value: str) -> str:
    """An address SMTP can carry (ASCII before the @), normalised; the library's words quote input."""
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError:
        raise ValueError(
            "not an e-mail address Honnin can send to (local@domain, ASCII before the @)"
        ) from None


class _Request(_RefusesIndividualNumber):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class XidStartRequest(_Request):
    """The app starts its own registration with the terms the person accepted (同意する)."""

    terms: AcceptedTerms
    request_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="a retry sends the same"
    )


class CertificateRequest(BaseModel):
    """The signing certificate the app read (署名用電子証明書), DER as base64."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: Base64 = Field(min_length=4, max_length=16_384)


class ConsentRequest(_Request):
    """本人確認に関する同意: 同意する."""

    consent: Literal[True]


class XidSignatureRequest(XidSignaturePayload):
    """The certificate again and the card's signature over `to_be_signed`."""


class ActivationRequest(BaseModel):
    """ID有効化: the public half of the key pair the app made (EC P-256 or RSA 2048+), SPKI DER."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device_public_key: Base64 = Field(min_length=4, max_length=2_048)


class EmailRequest(_Request):
    """メールアドレスの登録, and 再入力する: an address the person can read mail at."""

    email: Annotated[str, AfterValidator(_sendable_address)] = Field(min_length=3, max_length=254)


class EmptyRequest(_Request):
    """利用を開始する has nothing to say; the body may be left out."""


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class XidStarted(_Response):
    registration_id: str
    state: RegistrationState
    expires_at: AwareDatetime
    terms: AcceptedTerms


class FourFacts(_Response):
    """基本情報の確認: what the app shows before the person sends it."""

    name: str = Field(description="氏名")
    sex: Literal["1", "2", "3"] = Field(description="性別, the certificate's code")
    sex_label: str = Field(description="性別 as shown: 男性, 女性, 不明")
    birth_date: date | None = Field(description="生年月日; none when the certificate does not know it")
    address: str = Field(description="住所")


class FactsShown(_Response):
    state: RegistrationState
    facts: FourFacts
    message: str = Field(description="「これらの基本情報と、同意済みの利用規約への電子署名を送信します。…」")
    note: str = Field(description="what to do if a fact is wrong")
    certificate_fingerprint: str


class ChallengeToSign(_Response):
    """What the card signs: `to_be_signed` is the consent message (README: What the app signs)."""

    state: RegistrationState
    attempt: int = Field(ge=1)
    challenge: str = Field(description="base64, the server's challenge for this attempt")
    terms: AcceptedTerms
    to_be_signed: str = Field(description="base64 of the exact bytes the card signs")
    algorithm: Literal["rsa-pkcs1v15-sha256"] = "rsa-pkcs1v15-sha256"


class SignatureTaken(_Response):
    state: Literal["confirmed"] = "confirmed"
    verification: Literal["pending"] = "pending"
    message: str = SIGNATURE_SUCCEEDED


class MunicipalityAnswer(_Response):
    """お住まいの自治体: the code with its check digit and the name, or `unknown`."""

    status: Literal["resolved", "unknown"]
    code: str | None = None
    name: str | None = None
    note: str = Field(description="what to do if the name is wrong")


class EmailStatus(_Response):
    attempt: int = Field(ge=1)
    delivery: Literal["pending", "retrying", "sent", "failed"]
    code: str | None = None
    message: str | None = Field(default=None, description="why the mail did not go: 再入力する")
    warning: str | None = Field(default=None, description="the seed's words on carrier addresses")
    link_expires_at: AwareDatetime
    confirmed: bool


class EmailQueued(_Response):
    state: RegistrationState
    attempt: int = Field(ge=1)
    link_expires_at: AwareDatetime
    message: str
    warning: str | None = Field(
        default=None, description="a carrier address: accepted, with the seed's warning"
    )
    warning_code: Literal["carrier_mail"] | None = None


class Enabled(_Response):
    state: RegistrationState
    municipality: MunicipalityAnswer


class InUse(_Response):
    registration_id: str
    state: Literal["activated"] = "activated"
    activated_at: AwareDatetime


class XidStatus(_Response):
    registration_id: str
    state: RegistrationState
    expires_at: AwareDatetime
    verification: VerificationStatus | None = None
    device_registered: bool
    municipality: MunicipalityAnswer | None = None
    email: EmailStatus | None = None
    activated_at: AwareDatetime | None = None


class LinkAnswer(_Response):
    """The confirmation link's answer when asked for JSON (browsers get a page)."""

    code: str
    message: str
