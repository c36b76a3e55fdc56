"""The platform operator's API as a revocation source (contract in `revocation` and docs/platform-api.md)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.ca_revocation.revocation import (
    JSON_TYPE,
    MAX_CACHE_ENTRIES,
    PLATFORM_PATH,
    PLATFORM_STATUSES,
    REASON_NAMES,
    CertId,
    ExpiringCache,
    HttpClient,
    OcspAnswer,
    RevocationEvidence,
    RevocationUnavailableError,
    cached_or_fetched,
    cert_id,
    parse_ocsp,
)
from orchestrator.errors import ConfigurationError
from orchestrator.ports import Clock


@dataclass(frozen=True)
class _PlatformClaim:
    """What the platform says in words; only its OCSP response is evidence."""

    status: str
    reason: str | None
    checked_at: datetime
    ocsp_der: bytes


def _parse_platform_answer(body: bytes) -> _PlatformClaim:
    """The JSON contract of the module docstring; anything else is a malformed answer."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nesting bombs
        raise RevocationUnavailableError("the platform's answer is not JSON") from exc
    if not isinstance(data, dict):
        raise RevocationUnavailableError("the platform's answer is not a JSON object")
    return _PlatformClaim(
        status=_field_status(data),
        reason=_field_reason(data),
        checked_at=_field_checked_at(data),
        ocsp_der=_field_ocsp_response(data),
    )


def _field_status(data: Mapping[str, Any]) -> str:
    status = data.get("status")
    if not isinstance(status, str) or status not in PLATFORM_STATUSES.values():
        raise RevocationUnavailableError("the platform's status is not good, revoked or unknown")
    return str(status)


def _field_reason(data: Mapping[str, Any]) -> str | None:
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or reason not in REASON_NAMES):
        raise RevocationUnavailableError("the platform's reason is not an RFC 5280 CRLReason name")
    return None if reason is None else str(reason)


def _field_checked_at(data: Mapping[str, Any]) -> datetime:
    raw = data.get("checked_at")
    try:
        checked_at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        checked_at = None
    if checked_at is None or checked_at.tzinfo is None:
        raise RevocationUnavailableError("the platform's checked_at is not an RFC 3339 timestamp")
    return checked_at


def _field_ocsp_response(data: Mapping[str, Any]) -> bytes:
    raw = data.get("ocsp_response")
    try:
        der = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except (binascii.Error, ValueError):
        der = b""
    if not der:
        raise RevocationUnavailableError("the platform's ocsp_response is not base64 DER")
    return der


def _check_agreement(claim: _PlatformClaim, answer: OcspAnswer) -> None:
    """Words that contradict the signed response mean the platform is broken: do not guess."""
    if claim.status != PLATFORM_STATUSES[answer.status]:
        raise RevocationUnavailableError(
            f"the platform says {claim.status} but its OCSP response says {PLATFORM_STATUSES[answer.status]}"
        )
    if claim.reason is not None and answer.reason is not None and claim.reason != answer.reason.value:
        raise RevocationUnavailableError("the platform's reason disagrees with its OCSP response")


class PlatformApiSource:
    """Asks a licensed platform operator over HTTPS, as most service providers must."""

    name = "platform"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        clock: Clock,
        max_entries: int = MAX_CACHE_ENTRIES,
    ) -> None:
        if not token:
            raise ConfigurationError("the platform API needs a bearer token")
        self._endpoint = base_url.rstrip("/") + PLATFORM_PATH
        self._token = token
        self._http = HttpClient(timeout)
        self._cache = ExpiringCache(clock, max_entries)

    def __repr__(self) -> str:
        return f"PlatformApiSource({self._endpoint!r}, token=***)"

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        key = cert_id(leaf, issuer)
        return await cached_or_fetched(
            self._cache, self.name, leaf.serial_number, key, lambda: self._fetch(leaf, key)
        )

    async def _fetch(self, leaf: x509.Certificate, key: CertId) -> OcspAnswer:
        leaf_b64 = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode("ascii")
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": JSON_TYPE,
            "Accept": JSON_TYPE,
        }
        body = json.dumps({"certificate": leaf_b64}).encode()
        reply = await self._http.post(self._endpoint, body, headers)
        claim = _parse_platform_answer(reply.expect(JSON_TYPE))
        answer = parse_ocsp(claim.ocsp_der, key)
        _check_agreement(claim, answer)
        return answer

    async def close(self) -> None:
        await self._http.close()
