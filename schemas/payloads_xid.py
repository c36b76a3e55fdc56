"""Payloads of the xID profile's events (seed 003): the app's steps and the mail worker's answers.

Nothing here can carry the app's PIN1 or PIN2, or the signing password: every payload forbids
unknown fields, and none has a field for them.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.payloads import SHA256_HEX, Base64, Payload
from schemas.privacy import Text

_MAX_CERT_B64 = 16_384
_MAX_KEY_B64 = 2_048


class CertificateFacts(Payload):
    """The basic four facts as the signing certificate writes them (sex 1, 2, 3; no era digit 0)."""

    name: Text = Field(min_length=1, max_length=100, description="氏名")
    sex: Literal["1", "2", "3"] = Field(description="性別: 1 male, 2 female, 3 unknown")
    birth_date: date | None = Field(description="生年月日; none when the certificate's era digit is 0")
    address: Text = Field(min_length=1, max_length=200, description="住所")
    address_substituted: str = Field(
        default="", pattern=r"^[01]*$", max_length=200, description="代替文字 flags, one per character"
    )


class CertificateReadPayload(Payload):
    """The app sent its signing certificate: its facts and fingerprint, never the certificate itself."""

    facts: CertificateFacts
    certificate_fingerprint: str = Field(pattern=SHA256_HEX)


class ConsentGivenPayload(Payload):
    """本人確認に関する同意: the person agreed; a challenge to sign follows."""

    consent: Literal[True]


class XidSignaturePayload(Payload):
    certificate: Base64 = Field(min_length=4, max_length=_MAX_CERT_B64, description="署名用電子証明書, DER")
    signature: Base64 = Field(min_length=4, max_length=2_048, description="over the consent message")
    algorithm: Literal["rsa-pkcs1v15-sha256", "rsa-pss-sha256", "ecdsa-sha256"] = "rsa-pkcs1v15-sha256"


class DeviceKey(Payload):
    """The app's own key pair, made on the device (ID有効化); only the public half reaches Honnin."""

    public_key: Base64 = Field(min_length=4, max_length=_MAX_KEY_B64, description="SubjectPublicKeyInfo, DER")
    algorithm: Literal["ec-p256", "rsa"]
    sha256: str = Field(pattern=SHA256_HEX, description="SHA-256 of the DER")


class ActivationRequestedPayload(Payload):
    device_key: DeviceKey


class EmailEnteredPayload(Payload):
    """メールアドレスの登録 (or 再入力する): the address, and the digest of the link mailed to it.

    `link_id` names the link; the link's secret derives from it with a server key and is never
    stored: `link_sha256` lets the orchestrator recognise it when it comes back."""

    email: Text = Field(min_length=3, max_length=254)
    link_id: str = Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")
    link_sha256: str = Field(pattern=SHA256_HEX)


class EmailConfirmedPayload(Payload):
    """メールアドレス確認: the person opened the link; only its digest travels."""

    link_sha256: str = Field(pattern=SHA256_HEX)


class EmailConfirmationRequestedPayload(Payload):
    """For the mail worker: which link to mail. The address stays in the store."""

    attempt: int = Field(ge=1)


MailOutcome = Literal["sent", "temporary_failure", "permanent_failure"]


class EmailDeliveryCompletedPayload(Payload):
    attempt: int = Field(ge=1)
    outcome: MailOutcome
    code: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$")
    smtp_code: int | None = Field(default=None, ge=200, le=599)
    sent_at: AwareDatetime | None = None
