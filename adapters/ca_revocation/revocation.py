"""Revocation evidence for a JPKI signing certificate: platform API, OCSP responder or CRL files.

JPKI certificates carry no OCSP URL and a directoryName CRL distribution point, so where the
evidence comes from is configuration: `OcspSource` here, `PlatformApiSource` in
`revocation_platform`, `CrlFileSource` in `revocation_crl`, each a `RevocationSource`. A
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
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import aiohttp
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from orchestrator.errors import ConfigurationError, PermanentError, RetryableError, failure_reason
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


class ExpiringCache:
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
class OcspAnswer:
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


def parse_ocsp(der: bytes, wanted: CertId) -> OcspAnswer:
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


def _answer_for(response: ocsp.OCSPResponse, der: bytes, wanted: CertId) -> OcspAnswer:
    """Picks the single response naming our CertID; a response about another certificate is useless."""
    for single in response.responses:
        if (single.issuer_key_hash, single.serial_number) == wanted:
            return OcspAnswer(
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


class HttpClient:
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


def logged_failure(
    source: str, serial: int, exc: RevocationUnavailableError | RevocationSourceRejectedError
) -> None:
    """Operators see which source failed and why; never a name, an address or a certificate."""
    level = log.error if isinstance(exc, RevocationSourceRejectedError) else log.warning
    level(
        "revocation.failed", source=source, outcome=exc.code, reason=failure_reason(exc), serial=f"{serial:x}"
    )


def logged_answer(source: str, serial: int, outcome: str, answer: OcspAnswer | None = None) -> None:
    status = PLATFORM_STATUSES.get(answer.status) if answer else None
    log.info("revocation.evidence", source=source, outcome=outcome, status=status, serial=f"{serial:x}")


# -- OCSP responder -----------------------------------------------------------------------------


async def cached_or_fetched(
    cache: ExpiringCache,
    source: str,
    serial: int,
    key: CertId,
    fetch: Callable[[], Awaitable[OcspAnswer]],
) -> RevocationEvidence:
    """An OCSP response kept until its nextUpdate, else a fresh one (both OCSP-backed sources)."""
    cached = cache.get(key)
    if cached is not None:
        logged_answer(source, serial, "cached")
        return RevocationEvidence(ocsp_responses=(cached,))
    try:
        answer = await fetch()
    except (RevocationUnavailableError, RevocationSourceRejectedError) as exc:
        logged_failure(source, serial, exc)
        raise
    cache.put(key, answer.der, answer.next_update)
    logged_answer(source, serial, "fetched", answer)
    return RevocationEvidence(ocsp_responses=(answer.der,))


class OcspSource:
    """Asks an OCSP responder (RFC 6960) directly, as a registered signature verifier may."""

    name = "ocsp"

    def __init__(
        self, url: str, *, timeout: float = 5.0, clock: Clock, max_entries: int = MAX_CACHE_ENTRIES
    ) -> None:
        self._url = url
        self._http = HttpClient(timeout)
        self._cache = ExpiringCache(clock, max_entries)

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        nonce = secrets.token_bytes(NONCE_BYTES)
        request = _ocsp_request(leaf, issuer, nonce)
        key = (request.issuer_key_hash, request.serial_number)
        return await cached_or_fetched(
            self._cache, self.name, leaf.serial_number, key, lambda: self._fetch(request, key, nonce)
        )

    async def _fetch(self, request: ocsp.OCSPRequest, key: CertId, nonce: bytes) -> OcspAnswer:
        """A fresh answer must echo our nonce when it carries one: otherwise it may be a replay."""
        headers = {"Content-Type": OCSP_REQUEST_TYPE, "Accept": OCSP_RESPONSE_TYPE}
        reply = await self._http.post(self._url, request.public_bytes(serialization.Encoding.DER), headers)
        answer = parse_ocsp(reply.expect(OCSP_RESPONSE_TYPE), key)
        if answer.nonce is not None and answer.nonce != nonce:
            raise RevocationUnavailableError("the OCSP response's nonce is not ours (replayed or misrouted)")
        return answer

    async def close(self) -> None:
        await self._http.close()
