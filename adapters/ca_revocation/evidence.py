"""Raw revocation evidence (OCSP responses, CRLs) judged once per distinct DER, for the fast path.

An OCSP-backed source hands the same cached response back until its nextUpdate; the response is
verified the first time (RFC 6960 as pyhanko-certvalidator reads it: a successful response whose
CertID names this certificate and issuer, signed by the issuer itself or by a responder
certificate the issuer signed for OCSP signing) and what it says is kept. Freshness and the
revocation time are judged against each verification's own time.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapters.ca_revocation.crl_index import CrlRejectedError, RevocationIndex, VerifiedCrl, verify_crl
from adapters.ca_revocation.issuers import (
    Issuer,
    TrustAnchors,
    certificate_signed_by,
    signed_with_oid,
    unknown_critical,
)
from adapters.ca_revocation.revocation import RevocationEvidence
from adapters.ca_revocation.status import (
    GOOD,
    MISSING,
    REASON_CODES,
    STALE,
    TOLERANCE,
    RevocationQuery,
    RevocationStatus,
    combined,
    fresh_at,
)

MAX_ENTRIES = 10_000
MAX_CRLS = 16
_STATUS = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class _Single:
    """What one verified SingleResponse says about our certificate."""

    state: Literal["good", "revoked", "unknown"]
    reason: int
    revoked_at: datetime | None
    this_update: datetime
    next_update: datetime | None
    responder_from: datetime | None  # a delegated responder's validity, checked at each use
    responder_until: datetime | None

    def status(self, at: datetime, source: str) -> RevocationStatus:
        if self.responder_from is not None and not self.responder_from - TOLERANCE <= at:
            return MISSING
        if self.responder_until is not None and not at - TOLERANCE <= self.responder_until:
            return MISSING
        if not fresh_at(self.this_update, self.next_update, at):
            return STALE
        if self.state == "good":
            return GOOD
        if self.state == "revoked" and self.revoked_at is not None and self.revoked_at <= at:
            return RevocationStatus("revoked", self.reason, source)
        return MISSING  # unknown, or revoked only after `at`: neither good nor revoked (as pyhanko)


class EvidenceJudge:
    """Verifies each distinct piece of evidence once; bounded, so many serials cannot grow memory."""

    def __init__(self, issuers: TrustAnchors, max_entries: int = MAX_ENTRIES) -> None:
        self._issuers = issuers
        self._max = max_entries
        self._ocsp: OrderedDict[tuple[bytes, bytes, int], tuple[_Single, ...]] = OrderedDict()
        self._crls: OrderedDict[bytes, VerifiedCrl | None] = OrderedDict()

    def status(
        self,
        evidence: RevocationEvidence,
        query: RevocationQuery,
        leaf: x509.Certificate,
        issuer: Issuer,
        at: datetime,
    ) -> RevocationStatus:
        found = [self._crl_status(der, query, at) for der in evidence.crls]
        for der in evidence.ocsp_responses:
            found += [single.status(at, "ocsp") for single in self._singles(der, leaf, issuer)]
        return combined(found)

    def _singles(self, der: bytes, leaf: x509.Certificate, issuer: Issuer) -> tuple[_Single, ...]:
        key = (hashlib.sha256(der).digest(), issuer.fingerprint, leaf.serial_number)
        cached = self._ocsp.get(key)
        if cached is None:
            cached = _judge_ocsp(der, leaf, issuer)
            self._ocsp[key] = cached
            while len(self._ocsp) > self._max:
                self._ocsp.popitem(last=False)
        return cached

    def _crl_status(self, der: bytes, query: RevocationQuery, at: datetime) -> RevocationStatus:
        key = hashlib.sha256(der).digest()
        if key not in self._crls:
            try:
                self._crls[key] = verify_crl(der, self._issuers, source="evidence", keep_der=False)
            except CrlRejectedError:
                self._crls[key] = None
            while len(self._crls) > MAX_CRLS:
                self._crls.popitem(last=False)
        crl = self._crls[key]
        return MISSING if crl is None else RevocationIndex([crl]).status(query, at)


def _judge_ocsp(der: bytes, leaf: x509.Certificate, issuer: Issuer) -> tuple[_Single, ...]:
    """Every SingleResponse about our certificate, if the response is authentic; else nothing."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return ()
        responder = _authorised_responder(response, issuer)
        if responder is None:
            return ()
        key, valid_from, valid_until = responder
        if not signed_with_oid(
            key,
            response.signature,
            response.tbs_response_bytes,
            response.signature_algorithm_oid,
            response.signature_hash_algorithm,
        ):
            return ()
        return tuple(
            _single(single, valid_from, valid_until)
            for single in response.responses
            if _names_our_certificate(single, leaf, issuer)
        )
    except Exception:  # a malformed response, or a part cryptography cannot read: no evidence
        return ()


def _single(
    single: ocsp.OCSPSingleResponse, valid_from: datetime | None, valid_until: datetime | None
) -> _Single:
    reason = single.revocation_reason
    return _Single(
        state=_STATUS[single.certificate_status],  # type: ignore[arg-type]
        reason=REASON_CODES[reason] if reason is not None else 0,
        revoked_at=single.revocation_time_utc,
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
        responder_from=valid_from,
        responder_until=valid_until,
    )


def _names_our_certificate(single: ocsp.OCSPSingleResponse, leaf: x509.Certificate, issuer: Issuer) -> bool:
    """The CertID's issuer name hash, issuer key hash and serial, in the response's own hash."""
    if single.serial_number != leaf.serial_number:
        return False
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer.cert, single.hash_algorithm).build()
    return (request.issuer_name_hash, request.issuer_key_hash) == (
        single.issuer_name_hash,
        single.issuer_key_hash,
    )


def _authorised_responder(
    response: ocsp.OCSPResponse, issuer: Issuer
) -> tuple[CertificatePublicKeyTypes, datetime | None, datetime | None] | None:
    """The issuer itself, or a certificate in the response the issuer signed for OCSP signing."""
    included = list(response.certificates)
    for candidate in [*included, issuer.cert]:
        if not _is_responder_id(response, candidate):
            continue
        if candidate == issuer.cert:
            return issuer.key, None, None
        if _delegated(candidate, issuer):
            return candidate.public_key(), candidate.not_valid_before_utc, candidate.not_valid_after_utc
        return None  # the first responder named is the one that signed: pyhanko takes it too
    return None


def _is_responder_id(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # SHA-1 of the key
        return key_hash == response.responder_key_hash
    return response.responder_name == cert.subject


def _delegated(cert: x509.Certificate, issuer: Issuer) -> bool:
    """RFC 6960 §4.2.2.2: issued directly by the CA, with id-kp-OCSPSigning, no unknown critical part."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages or unknown_critical(cert):
        return False
    return cert.issuer == issuer.cert.subject and certificate_signed_by(cert, issuer)
