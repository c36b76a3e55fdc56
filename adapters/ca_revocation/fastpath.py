"""The fast path for JPKI's one-tier hierarchy: a signing certificate issued directly by an anchor.

`check_card` is the CPU-bound part of one verification, a plain synchronous function over
picklable inputs (`CardCheck`, `TrustAnchors`, a frozenset of policies) returning a picklable
`CardCheckResult`, so it can run inline or in a worker process. It does what pyhanko-certvalidator
does for such a path, each public-key operation once, in pyhanko's order. cryptography reads the
DER, the key, the signature and the validity; the extensions and names are read from the raw DER
by `certview` (cryptography would build Python objects for them that cost more than both RSA
verifications together):

1. the certificate parses (33) and its key signed the challenge (50);
2. the JPKI signing profile: the signing policy (34; the test-environment policy only when
   accepted) and not a CA certificate (34);
3. the issuer: same-named anchors, narrowed by authorityKeyIdentifier = subjectKeyIdentifier
   (none: 30), the first whose signature on the certificate verifies (none: 31; MD5, SHA-1 and
   RSA keys under 2048 bits never verify, as pyhanko's default policy);
4. validity at the verification time with pyhanko's one-second tolerance (21 expired, 22 not yet);
5. no critical extension beyond those pyhanko processes (31);
6. key usage digitalSignature and nonRepudiation (32);
7. the four facts are read for the identity step (a fault there is that step's 34, after
   revocation, as on the reference path).

What it returns on success is the revocation question (`RevocationQuery`); the index or the OCSP
cache that answers it stays in the one process that holds it (`pipeline.RevocationStep`).
Trust anchors themselves are not checked for validity, as in RFC 5280 §6.1 and pyhanko.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from adapters.ca_revocation import chain
from adapters.ca_revocation.certificates import (
    CODE_MALFORMED,
    CODE_NOT_JPKI_SIGNING,
    CertificateError,
    identity_from,
)
from adapters.ca_revocation.certview import CardFields, oid_content, read_fields
from adapters.ca_revocation.issuers import UNDERSTOOD_CRITICAL_CONTENTS, Issuer, TrustAnchors, signed_tbs_by
from adapters.ca_revocation.jpki import IDENTITY_OIDS, POLICY_SIGNING_TEST
from adapters.ca_revocation.signatures import public_key_of, verify_with_key
from adapters.ca_revocation.status import TOLERANCE, RevocationQuery
from orchestrator.identity import CardIdentity

CODE_BAD_SIGNATURE = "50"
TEST_POLICY_REFUSED = (
    "a JPKI test-environment certificate (policy 1.2.392.200149.8.5.1.0.20): "
    "accepted only with HONNIN_ACCEPT_TEST_CERTIFICATES=true"
)


@dataclass(frozen=True)
class CardCheck:
    """One verification's inputs, as bytes: what crosses into a worker process."""

    certificate: bytes
    signature: bytes
    algorithm: str
    challenge: bytes
    at: datetime


@dataclass(frozen=True)
class CardCheckResult:
    code: str
    reason: str
    query: RevocationQuery | None = None  # set when the checks passed
    identity: CardIdentity | None = None
    identity_error: tuple[str, str] | None = None  # (code, reason) for the identity step

    @property
    def ok(self) -> bool:
        return self.code == chain.CODE_OK


def _failed(code: str, reason: str) -> CardCheckResult:
    return CardCheckResult(code, reason)


def signing_profile(cert: x509.Certificate, policies: frozenset[str]) -> tuple[str, str] | None:
    """Both paths check this first: the JPKI signing policy, and an end-entity certificate."""
    try:
        declared = {
            policy.policy_identifier.dotted_string
            for policy in cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        }
    except x509.ExtensionNotFound:
        declared = set()
    if not declared & policies:
        if POLICY_SIGNING_TEST in declared:
            return CODE_NOT_JPKI_SIGNING, TEST_POLICY_REFUSED
        return CODE_NOT_JPKI_SIGNING, "not a JPKI signing certificate (certificate policy)"
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        return CODE_NOT_JPKI_SIGNING, "a CA certificate is not a signing certificate"
    return None


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _read(der: bytes) -> CardFields:
    """Raises CertificateError (33) for anything cryptography or the raw reader cannot read."""
    try:
        read = read_fields(der, _IDENTITY_OIDS)
        _ = (read.cert.not_valid_before_utc, read.cert.not_valid_after_utc, read.cert.serial_number)
    except Exception as exc:  # cryptography's ValueError, DerError, IndexError on missing parts
        raise CertificateError("not a DER X.509 certificate", code=CODE_MALFORMED) from exc
    return read


_IDENTITY_OIDS = {oid_content(oid): oid for oid in IDENTITY_OIDS}
_TEST_POLICY = oid_content(POLICY_SIGNING_TEST)
_SIGNS = 0b11  # digitalSignature (bit 0) and nonRepudiation (bit 1)


@functools.lru_cache(maxsize=8)
def _policy_contents(policies: frozenset[str]) -> frozenset[bytes]:
    return frozenset(oid_content(policy) for policy in policies)


def check_card(check: CardCheck, anchors: TrustAnchors, policies: frozenset[str]) -> CardCheckResult:
    """Everything but revocation, in the order of the module docstring; never raises on bad input."""
    try:
        read = _read(check.certificate)
    except CertificateError as exc:
        return _failed(exc.code, exc.message)
    cert = read.cert
    if not verify_with_key(public_key_of(cert), check.challenge, check.signature, check.algorithm):
        return _failed(CODE_BAD_SIGNATURE, "the signature is not over this registration's challenge")
    if not read.policies & _policy_contents(policies):
        if _TEST_POLICY in read.policies:
            return _failed(CODE_NOT_JPKI_SIGNING, TEST_POLICY_REFUSED)
        return _failed(CODE_NOT_JPKI_SIGNING, "not a JPKI signing certificate (certificate policy)")
    if read.is_ca:
        return _failed(CODE_NOT_JPKI_SIGNING, "a CA certificate is not a signing certificate")
    candidates = anchors.named_raw(read.issuer, read.authority_key_id)
    if candidates is None:  # spelt otherwise than any anchor's subject: compare parsed names
        try:
            candidates = anchors.named(cert.issuer, read.authority_key_id)
        except ValueError:
            return _failed(CODE_MALFORMED, "not a DER X.509 certificate")
    if not candidates:
        return _failed(
            chain.CODE_UNTRUSTED, "no path leads from the certificate to a configured trust anchor"
        )
    issuer = next((each for each in candidates if _issued(read, each)), None)
    if issuer is None:
        return _failed(chain.CODE_PATH_INVALID, "a certificate signature in the path does not verify")
    return _after_issuer(read, issuer, _aware(check.at))


def _issued(read: CardFields, issuer: Issuer) -> bool:
    return issuer.signs_certificates and signed_tbs_by(
        read.cert, read.tbs, read.signature_algorithm, read.signature, issuer
    )


def _after_issuer(read: CardFields, issuer: Issuer, at: datetime) -> CardCheckResult:
    cert = read.cert
    if at + TOLERANCE < cert.not_valid_before_utc:
        return _failed(chain.CODE_NOT_YET_VALID, "the certificate was not yet valid at the validation time")
    if at - TOLERANCE > cert.not_valid_after_utc:
        return _failed(chain.CODE_EXPIRED, "the certificate had expired at the validation time")
    if read.critical - UNDERSTOOD_CRITICAL_CONTENTS:
        return _failed(chain.CODE_PATH_INVALID, "the certificate path failed RFC 5280 validation")
    if read.key_usage & _SIGNS != _SIGNS:
        return _failed(
            chain.CODE_KEY_USAGE, "the key usage does not allow signing (digitalSignature and nonRepudiation)"
        )
    try:
        identity, identity_error = identity_from(read.other_names), None
    except CertificateError as exc:
        identity, identity_error = None, (exc.code, exc.message)
    query = RevocationQuery(issuer.fingerprint, cert.serial_number, read.points, read.indirect, read.is_ca)
    return CardCheckResult(
        chain.CODE_OK,
        "the certificate is valid (revocation is checked next)",
        query,
        identity,
        identity_error,
    )


def _aware(at: datetime) -> datetime:
    """Honnin's clock is UTC, so a naive time is taken as UTC (as on the reference path)."""
    return at if at.utcoffset() is not None else at.replace(tzinfo=UTC)
