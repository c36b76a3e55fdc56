"""The configured issuers (trust anchors, and for CRLs also intermediates), parsed once at start-up.

Every JPKI root generation has the same subject DN, so an issuer is chosen by name, then by key
identifier (the certificate's authorityKeyIdentifier against the issuer's subjectKeyIdentifier),
then by a signature that verifies. `TrustAnchors` pickles as the DER it was built from and parses
again on the other side, so a worker process (issue 15) gets it in one message and parses it once.

The algorithm rule mirrors pyhanko-certvalidator's default (`DisallowWeakAlgorithmsPolicy`): no
MD5 or SHA-1 digests, no RSA key under 2048 bits; both paths then refuse the same signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID

from adapters.ca_revocation.certview import oid_content, subject_of

MIN_RSA_BITS = 2048
# The critical extensions pyhanko-certvalidator processes (validate.SUPPORTED_EXTENSIONS): the fast
# path refuses the same others, so both paths agree on "unknown critical extension" (31).
UNDERSTOOD_CRITICAL = frozenset(
    x509.ObjectIdentifier(oid)
    for oid in (
        "1.3.6.1.5.5.7.1.1",  # authorityInfoAccess
        "2.5.29.35",  # authorityKeyIdentifier
        "2.5.29.19",  # basicConstraints
        "2.5.29.31",  # cRLDistributionPoints
        "2.5.29.37",  # extKeyUsage
        "2.5.29.46",  # freshestCRL
        "2.5.29.14",  # subjectKeyIdentifier
        "2.5.29.15",  # keyUsage
        "1.3.6.1.5.5.7.48.1.5",  # id-pkix-ocsp-nocheck
        "2.5.29.32",  # certificatePolicies
        "2.5.29.33",  # policyMappings
        "2.5.29.36",  # policyConstraints
        "2.5.29.54",  # inhibitAnyPolicy
        "2.5.29.30",  # nameConstraints
        "2.5.29.17",  # subjectAltName
        "1.3.6.1.5.5.7.1.6",  # aaControls
        "1.3.6.1.5.5.7.1.3",  # qcStatements
    )
)
_WEAK_HASHES = (hashes.MD5, hashes.SHA1)
_RSA_PKCS1 = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA224,
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)
_ECDSA = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA224,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)


@dataclass(frozen=True, eq=False)
class Issuer:
    """One configured CA certificate and what the checks need from it, read once."""

    der: bytes
    fingerprint: bytes  # SHA-256 of the DER: how revocation data names its issuer
    subject: bytes  # the raw subject Name DER, compared byte for byte with certificates' issuers
    cert: x509.Certificate
    key: CertificatePublicKeyTypes
    key_id: bytes | None  # subjectKeyIdentifier
    is_ca: bool  # basicConstraints cA
    key_usage: x509.KeyUsage | None

    @classmethod
    def of(cls, der: bytes) -> Issuer:
        """Raises ValueError when the DER is not a certificate cryptography can use."""
        cert = x509.load_der_x509_certificate(der)
        extensions = cert.extensions
        key_id = _extension(extensions, x509.SubjectKeyIdentifier)
        constraints = _extension(extensions, x509.BasicConstraints)
        usage = _extension(extensions, x509.KeyUsage)
        return cls(
            der=der,
            fingerprint=hashlib.sha256(der).digest(),
            subject=subject_of(der),
            cert=cert,
            key=cert.public_key(),
            key_id=key_id.digest if isinstance(key_id, x509.SubjectKeyIdentifier) else None,
            is_ca=isinstance(constraints, x509.BasicConstraints) and constraints.ca,
            key_usage=usage if isinstance(usage, x509.KeyUsage) else None,
        )

    @property
    def signs_certificates(self) -> bool:
        return self.is_ca and (self.key_usage is None or self.key_usage.key_cert_sign)

    @property
    def signs_crls(self) -> bool:
        return self.key_usage is None or self.key_usage.crl_sign


def _extension(extensions: x509.Extensions, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


class TrustAnchors:
    """Issuers by subject name; built once, looked up per verification without parsing anything."""

    def __init__(self, ders: Iterable[bytes]) -> None:
        self._ders = tuple(dict.fromkeys(ders))  # the same root configured twice is one root
        self._build()

    def _build(self) -> None:
        self.issuers = [Issuer.of(der) for der in self._ders]
        self._by_subject: dict[x509.Name, list[Issuer]] = {}
        for issuer in self.issuers:
            self._by_subject.setdefault(issuer.cert.subject, []).append(issuer)
        self._by_fingerprint = {issuer.fingerprint: issuer for issuer in self.issuers}
        self._by_raw_subject: dict[bytes, list[Issuer]] = {}
        for issuer in self.issuers:
            self._by_raw_subject.setdefault(issuer.subject, []).append(issuer)

    def __getstate__(self) -> tuple[bytes, ...]:
        return self._ders

    def __setstate__(self, ders: tuple[bytes, ...]) -> None:
        self._ders = ders
        self._build()

    def __len__(self) -> int:
        return len(self.issuers)

    @property
    def ders(self) -> tuple[bytes, ...]:
        return self._ders

    def by_fingerprint(self, fingerprint: bytes) -> Issuer | None:
        return self._by_fingerprint.get(fingerprint)

    def named(self, name: x509.Name, key_id: bytes | None) -> list[Issuer]:
        """Same-named issuers, narrowed to the one key the authorityKeyIdentifier names, if any."""
        return _with_key(self._by_subject.get(name, []), key_id)

    def named_raw(self, name: bytes, key_id: bytes | None) -> list[Issuer] | None:
        """`named` by the issuer's DER bytes (no Name objects); None when no anchor's subject has
        those bytes, and the caller compares names as cryptography does."""
        found = self._by_raw_subject.get(name)
        return None if found is None else _with_key(found, key_id)


def _with_key(found: list[Issuer], key_id: bytes | None) -> list[Issuer]:
    return list(found) if key_id is None else [issuer for issuer in found if issuer.key_id == key_id]


UNDERSTOOD_CRITICAL_CONTENTS = frozenset(oid_content(oid.dotted_string) for oid in UNDERSTOOD_CRITICAL)
SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b0500")  # AlgorithmIdentifier contents, NULL params
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def signed_tbs_by(
    cert: x509.Certificate, tbs: bytes, algorithm: bytes, signature: bytes, issuer: Issuer
) -> bool:
    """`certificate_signed_by` from the raw DER: JPKI's algorithm (sha256WithRSAEncryption, the
    same in the signed and outer fields) goes straight to one RSA verification; any other to
    cryptography's reading of the certificate."""
    key = issuer.key
    if algorithm != SHA256_WITH_RSA or not isinstance(key, rsa.RSAPublicKey):
        return certificate_signed_by(cert, issuer)
    if key.key_size < MIN_RSA_BITS:
        return False
    try:
        key.verify(signature, tbs, _PKCS1V15, _SHA256)
    except Exception:  # InvalidSignature: not issued by this key
        return False
    return True


def unknown_critical(cert: x509.Certificate) -> list[str]:
    """Critical extensions no check here understands: such a certificate must not be used."""
    return sorted(
        ext.oid.dotted_string
        for ext in cert.extensions
        if ext.critical and ext.oid not in UNDERSTOOD_CRITICAL
    )


def signature_allowed(hash_algorithm: hashes.HashAlgorithm | None, key: CertificatePublicKeyTypes) -> bool:
    """pyhanko's default policy: weak digests and short RSA keys are refused."""
    if isinstance(hash_algorithm, _WEAK_HASHES):
        return False
    return not (isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS)


def certificate_signed_by(cert: x509.Certificate, issuer: Issuer) -> bool:
    """One public-key operation on the signed bytes; False for any failure, weak or unknown algorithm."""
    try:
        hash_algorithm = cert.signature_hash_algorithm
        if not signature_allowed(hash_algorithm, issuer.key):
            return False
        return _verify(
            issuer.key,
            cert.signature,
            cert.tbs_certificate_bytes,
            hash_algorithm,
            cert.signature_algorithm_parameters,
        )
    except Exception:  # InvalidSignature, UnsupportedAlgorithm, a key type that cannot sign: not issued
        return False


def signed_with_oid(
    key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    algorithm: x509.ObjectIdentifier,
    hash_algorithm: hashes.HashAlgorithm | None,
) -> bool:
    """For OCSP responses, which cryptography gives no padding parameters for: PKCS#1 v1.5 or ECDSA."""
    try:
        if not signature_allowed(hash_algorithm, key) or hash_algorithm is None:
            return False
        if algorithm in _RSA_PKCS1:
            return _verify(key, signature, data, hash_algorithm, padding.PKCS1v15())
        if algorithm in _ECDSA:
            return _verify(key, signature, data, hash_algorithm, ec.ECDSA(hash_algorithm))
    except Exception:  # noqa: S110 - any failure means "not signed by this key"
        pass
    return False


def _verify(
    key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    parameters: object,
) -> bool:
    """Raises on a bad signature (InvalidSignature) or a key that cannot verify this algorithm."""
    if isinstance(key, rsa.RSAPublicKey):
        if not isinstance(parameters, padding.PSS | padding.PKCS1v15) or hash_algorithm is None:
            return False
        key.verify(signature, data, parameters, hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(parameters, ec.ECDSA):
            return False
        key.verify(signature, data, parameters)
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key.verify(signature, data)
    else:
        return False
    return True
