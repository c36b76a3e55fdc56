"""Revocation evidence for a JPKI signing certificate: platform API, OCSP responder or CRL files.

JPKI certificates carry no OCSP URL and a directoryName CRL distribution point, so where the
evidence comes from is configuration: one of the sources below, each a `RevocationSource`. A
source only fetches raw DER (CRLs, OCSP responses) for the path validator, which checks their
signatures and freshness; no source is trusted blindly.

Outcomes: the evidence, or `RevocationUnavailableError` (code 42: unreachable, timeout, HTTP 408,
429 or 5xx, a malformed answer; retry later), or `RevocationSourceRejectedError` (code 43: HTTP
401, 403 or another 4xx, an OCSP "unauthorized"; our misconfiguration, retrying cannot help).

Platform API contract (for a licensed platform operator, プラットフォーム事業者; also in
docs/platform-api.md)::

    POST {base_url}/v1/revocation-status
    Authorization: Bearer <token>
    Content-Type: application/json

    {"certificate": "<base64 of the signing certificate's DER>"}

    200 OK, Content-Type: application/json
    {"status": "good" | "revoked" | "unknown",
     "reason": "<RFC 5280 CRLReason name, e.g. affiliationChanged>" | null,
     "checked_at": "<RFC 3339 timestamp with offset>",
     "ocsp_response": "<base64 of a DER OCSPResponse signed by the JPKI responder>"}

The evidence is `ocsp_response`; `status` and `reason` are for people and logs and must agree
with it, else the answer is treated as malformed (42). Answers are cached per certificate until
the OCSP response's nextUpdate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from orchestrator.errors import ConfigurationError, PermanentError, RetryableError
from orchestrator.ports import Clock

log = structlog.get_logger("honnin.revocation")

CODE_REVOCATION_UNAVAILABLE = "42"
CODE_SOURCE_REJECTED = "43"
MAX_CACHE_ENTRIES = 10_000
MAX_ANSWER_BYTES = 1 << 20  # an OCSP response or platform answer is a few KiB
NONCE_BYTES = 16  # RFC 8954: 1 to 32 octets
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
JSON_TYPE = "application/json"
PLATFORM_PATH = "/v1/revocation-status"
PLATFORM_STATUSES = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}
REASON_NAMES = frozenset(reason.value for reason in x509.ReasonFlags)
RETRY_LATER_HTTP = frozenset({408, 425, 429})
_REFUSED_OCSP = frozenset({ocsp.OCSPResponseStatus.UNAUTHORIZED, ocsp.OCSPResponseStatus.SIG_REQUIRED})

# RFC 6960 names a certificate by hashes; JPKI responders expect SHA-1 there (not a signature).
CERT_ID_HASH = hashes.SHA1()  # noqa: S303
CertId = tuple[bytes, int]  # (SHA-1 of the issuer's public key, serial number), as OCSP names it


@dataclass(frozen=True)
class RevocationEvidence:
    """Raw DER the path validator checks, so that a source vouches for nothing by itself."""

    crls: tuple[bytes, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()


class RevocationUnavailableError(RetryableError):
    """The source gave no usable answer now (unreachable, timeout, 5xx, malformed): retry later."""

    code = CODE_REVOCATION_UNAVAILABLE


class RevocationSourceRejectedError(PermanentError):
    """The source refused us (bad token, wrong URL): a misconfiguration that retrying cannot fix."""

    code = CODE_SOURCE_REJECTED


class RevocationSource(Protocol):
    """Where revocation evidence comes from; JPKI certificates do not say, configuration does."""

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        """Raises RevocationUnavailableError or RevocationSourceRejectedError."""
        ...

    async def close(self) -> None: ...


# -- caching ------------------------------------------------------------------------------------


class _ExpiringCache:
    """Answers kept until their nextUpdate, bounded so that many serials cannot grow memory."""

    def __init__(self, clock: Clock, max_entries: int = MAX_CACHE_ENTRIES) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[CertId, tuple[bytes, datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CertId) -> bytes | None:
        """The cached DER while the clock is before its nextUpdate; an expired entry is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock.now() >= entry[1]:
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: CertId, der: bytes, until: datetime | None) -> None:
        """No nextUpdate means the responder promises nothing: such an answer is not kept."""
        if until is None or self._clock.now() >= until:
            return
        self._entries[key] = (der, until)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


# -- OCSP parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OcspAnswer:
    """The parts of an OCSP response a source acts on; the validator re-reads the DER itself."""

    der: bytes
    status: ocsp.OCSPCertStatus
    reason: x509.ReasonFlags | None
    next_update: datetime | None
    nonce: bytes | None


def _ocsp_request(leaf: x509.Certificate, issuer: x509.Certificate, nonce: bytes) -> ocsp.OCSPRequest:
    """A SHA-1 CertID, the hash JPKI responders expect, and a nonce against replayed answers."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, CERT_ID_HASH)
    return builder.add_extension(x509.OCSPNonce(nonce), critical=False).build()


def cert_id(leaf: x509.Certificate, issuer: x509.Certificate) -> CertId:
    """The OCSP name of a certificate, so caches agree with what responders answer about."""
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, CERT_ID_HASH).build()
    return request.issuer_key_hash, request.serial_number


def _parse_ocsp(der: bytes, wanted: CertId) -> _OcspAnswer:
    """A successful response about exactly our certificate, or the source is not usable now."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        status = response.response_status
    except ValueError as exc:
        raise RevocationUnavailableError("the OCSP answer is not a DER OCSPResponse") from exc
    if status in _REFUSED_OCSP:
        raise RevocationSourceRejectedError(f"the OCSP responder refused the request: {status.name}")
    if status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationUnavailableError(f"the OCSP responder answered {status.name}")
    try:
        return _answer_for(response, der, wanted)
    except ValueError as exc:
        raise RevocationUnavailableError("the OCSP response is malformed") from exc


def _answer_for(response: ocsp.OCSPResponse, der: bytes, wanted: CertId) -> _OcspAnswer:
    """Picks the single response naming our CertID; a response about another certificate is useless."""
    for single in response.responses:
        if (single.issuer_key_hash, single.serial_number) == wanted:
            return _OcspAnswer(
                der=der,
                status=single.certificate_status,
                reason=single.revocation_reason,
                next_update=single.next_update_utc,
                nonce=_nonce_of(response.extensions),
            )
    raise RevocationUnavailableError("the OCSP response is not about the certificate asked for")


def _nonce_of(extensions: x509.Extensions) -> bytes | None:
    """The nonce extension's value, if the responder sent one (pre-produced answers do not)."""
    try:
        return extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int
    content_type: str
    body: bytes

    def expect(self, content_type: str) -> bytes:
        """Maps HTTP status to retry-later or misconfiguration before anything is parsed."""
        if self.status in (401, 403):
            raise RevocationSourceRejectedError(f"the source refused our credentials (HTTP {self.status})")
        if 400 <= self.status < 500 and self.status not in RETRY_LATER_HTTP:
            raise RevocationSourceRejectedError(f"the source rejected the request (HTTP {self.status})")
        if self.status != 200:
            raise RevocationUnavailableError(f"the source answered HTTP {self.status}")
        if self.content_type != content_type:
            raise RevocationUnavailableError(f"the source answered {self.content_type!r}, not {content_type}")
        return self.body


class _Http:
    """One aiohttp session per source, created on first use: never at import or in a default."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ConfigurationError("the revocation timeout must be positive")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Reply:
        """Every transport failure, the timeout included, becomes retry-later."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._post(url, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RevocationUnavailableError(f"the source is unreachable ({type(exc).__name__})") from exc

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> _Reply:
        async with self._client().post(url, data=body, headers=dict(headers)) as response:
            return _Reply(response.status, response.content_type, await _read_bounded(response))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """A hostile or broken source must not make us buffer an unbounded body."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise RevocationUnavailableError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
    return bytes(body)


# -- logging ------------------------------------------------------------------------------------


def _logged_failure(
    source: str, serial: int, exc: RevocationUnavailableError | RevocationSourceRejectedError
) -> None:
    """Operators see which source failed and why; never a name, an address or a certificate."""
    level = log.error if isinstance(exc, RevocationSourceRejectedError) else log.warning
    level("revocation.failed", source=source, outcome=exc.code, reason=exc.message, serial=f"{serial:x}")


def _logged_answer(source: str, serial: int, outcome: str, answer: _OcspAnswer | None = None) -> None:
    status = PLATFORM_STATUSES.get(answer.status) if answer else None
    log.info("revocation.evidence", source=source, outcome=outcome, status=status, serial=f"{serial:x}")


# -- OCSP responder -----------------------------------------------------------------------------


async def _cached_or_fetched(
    cache: _ExpiringCache,
    source: str,
    serial: int,
    key: CertId,
    fetch: Callable[[], Awaitable[_OcspAnswer]],
) -> RevocationEvidence:
    """An OCSP response kept until its nextUpdate, else a fresh one (both OCSP-backed sources)."""
    cached = cache.get(key)
    if cached is not None:
        _logged_answer(source, serial, "cached")
        return RevocationEvidence(ocsp_responses=(cached,))
    try:
        answer = await fetch()
    except (RevocationUnavailableError, RevocationSourceRejectedError) as exc:
        _logged_failure(source, serial, exc)
        raise
    cache.put(key, answer.der, answer.next_update)
    _logged_answer(source, serial, "fetched", answer)
    return RevocationEvidence(ocsp_responses=(answer.der,))


class OcspSource:
    """Asks an OCSP responder (RFC 6960) directly, as a registered signature verifier may."""

    name = "ocsp"

    def __init__(
        self, url: str, *, timeout: float = 5.0, clock: Clock, max_entries: int = MAX_CACHE_ENTRIES
    ) -> None:
        self._url = url
        self._http = _Http(timeout)
        self._cache = _ExpiringCache(clock, max_entries)

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        nonce = secrets.token_bytes(NONCE_BYTES)
        request = _ocsp_request(leaf, issuer, nonce)
        key = (request.issuer_key_hash, request.serial_number)
        return await _cached_or_fetched(
            self._cache, self.name, leaf.serial_number, key, lambda: self._fetch(request, key, nonce)
        )

    async def _fetch(self, request: ocsp.OCSPRequest, key: CertId, nonce: bytes) -> _OcspAnswer:
        """A fresh answer must echo our nonce when it carries one: otherwise it may be a replay."""
        headers = {"Content-Type": OCSP_REQUEST_TYPE, "Accept": OCSP_RESPONSE_TYPE}
        reply = await self._http.post(self._url, request.public_bytes(serialization.Encoding.DER), headers)
        answer = _parse_ocsp(reply.expect(OCSP_RESPONSE_TYPE), key)
        if answer.nonce is not None and answer.nonce != nonce:
            raise RevocationUnavailableError("the OCSP response's nonce is not ours (replayed or misrouted)")
        return answer

    async def close(self) -> None:
        await self._http.close()


# -- platform operator --------------------------------------------------------------------------


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


def _check_agreement(claim: _PlatformClaim, answer: _OcspAnswer) -> None:
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
        self._http = _Http(timeout)
        self._cache = _ExpiringCache(clock, max_entries)

    def __repr__(self) -> str:
        return f"PlatformApiSource({self._endpoint!r}, token=***)"

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        key = cert_id(leaf, issuer)
        return await _cached_or_fetched(
            self._cache, self.name, leaf.serial_number, key, lambda: self._fetch(leaf, key)
        )

    async def _fetch(self, leaf: x509.Certificate, key: CertId) -> _OcspAnswer:
        leaf_b64 = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode("ascii")
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": JSON_TYPE,
            "Accept": JSON_TYPE,
        }
        body = json.dumps({"certificate": leaf_b64}).encode()
        reply = await self._http.post(self._endpoint, body, headers)
        claim = _parse_platform_answer(reply.expect(JSON_TYPE))
        answer = _parse_ocsp(claim.ocsp_der, key)
        _check_agreement(claim, answer)
        return answer

    async def close(self) -> None:
        await self._http.close()


# -- CRL files ----------------------------------------------------------------------------------

_Stamp = tuple[int, int, int]  # inode, size, mtime in ns: a replaced or rewritten file differs


@dataclass(frozen=True)
class _LoadedCrl:
    der: bytes
    issuer: x509.Name
    next_update: datetime | None
    stamp: _Stamp


def _stamp(path: Path) -> _Stamp:
    """Raises RevocationUnavailableError: a CRL file that is not there is a retry-later outage."""
    try:
        info = path.stat()
    except OSError as exc:
        raise RevocationUnavailableError(f"the CRL file {path.name} cannot be read") from exc
    return info.st_ino, info.st_size, info.st_mtime_ns


def _load_crl(path: Path) -> _LoadedCrl:
    """Reads DER or PEM, stamping the file as opened so a concurrent replace is noticed next time."""
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            data = file.read()
    except OSError as exc:
        raise RevocationUnavailableError(f"the CRL file {path.name} cannot be read") from exc
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
        return _LoadedCrl(
            der=crl.public_bytes(serialization.Encoding.DER),
            issuer=crl.issuer,
            next_update=crl.next_update_utc,
            stamp=(info.st_ino, info.st_size, info.st_mtime_ns),
        )
    except ValueError as exc:
        raise RevocationUnavailableError(f"the CRL file {path.name} is not a DER or PEM CRL") from exc


class CrlFileSource:
    """Reads CRLs a signature verifier downloads daily; each is kept until its nextUpdate."""

    name = "crl"

    def __init__(self, paths: Sequence[Path], *, clock: Clock) -> None:
        """No paths is allowed: the evidence is then empty and the validator answers "missing" (40)."""
        self._paths = tuple(paths)
        self._clock = clock
        self._loaded: dict[Path, _LoadedCrl] = {}

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        try:
            crls = [await self._current(path) for path in self._paths]
        except RevocationUnavailableError as exc:
            _logged_failure(self.name, leaf.serial_number, exc)
            raise
        matching = tuple(crl.der for crl in crls if crl.issuer == leaf.issuer)
        outcome = "found" if matching else "no_crl_for_issuer"
        if any(self._expired(crl) for crl in crls if crl.issuer == leaf.issuer):
            outcome = "stale"  # the validator will say so too; the operator should fetch a new one
        _logged_answer(self.name, leaf.serial_number, outcome)
        return RevocationEvidence(crls=matching)

    async def _current(self, path: Path) -> _LoadedCrl:
        """The kept CRL while it is fresh and its file unchanged; otherwise the file read again."""
        stamp = await asyncio.to_thread(_stamp, path)
        loaded = self._loaded.get(path)
        if loaded is not None and loaded.stamp == stamp and not self._expired(loaded):
            return loaded
        loaded = await asyncio.to_thread(_load_crl, path)
        self._loaded[path] = loaded
        return loaded

    def _expired(self, crl: _LoadedCrl) -> bool:
        return crl.next_update is None or self._clock.now() >= crl.next_update

    async def close(self) -> None:
        self._loaded.clear()
