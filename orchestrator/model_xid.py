"""What an xID registration keeps beyond the shared states: facts, device key, municipality, e-mail.

Everything here sits in the sealed registration document. The confirmation link's secret is
not here, only its SHA-256: the secret derives from `link_id` with a server key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.payloads import AcceptedTerms
from schemas.payloads_xid import CertificateFacts, DeviceKey

VOIDED_KEPT = 10  # digests of earlier links kept, so an old link is told apart from a made-up one


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class MunicipalityRecord(_Record):
    """お住まいの自治体, from the certificate's address at ID有効化; `unknown` is not a failure."""

    status: Literal["resolved", "unknown"]
    code: str | None = None  # 全国地方公共団体コード, six digits with the check digit
    name: str | None = None
    resolved_at: AwareDatetime


class EmailConfirmation(_Record):
    """The address being confirmed, its current link and the mail's delivery schedule."""

    address: str
    attempt: int  # 1 for the first address, one more for each 再入力する
    link_id: str
    link_sha256: str
    link_expires_at: AwareDatetime
    voided: tuple[str, ...] = ()  # digests of links 再入力する replaced
    warning: str | None = None  # a carrier address (the seed advises against it)
    delivery: Literal["pending", "retrying", "sent", "failed"] = "pending"
    retries: int = 0
    retry_at: AwareDatetime | None = None
    code: str | None = None
    smtp_code: int | None = None
    message: str | None = None
    sent_at: AwareDatetime | None = None
    confirmed_at: AwareDatetime | None = None


class XidRecord(_Record):
    terms: AcceptedTerms
    facts: CertificateFacts | None = None
    certificate_fingerprint: str | None = None  # the certificate whose facts were shown
    device_key: DeviceKey | None = None
    enabled_at: AwareDatetime | None = None
    municipality: MunicipalityRecord | None = None
    email: EmailConfirmation | None = None
