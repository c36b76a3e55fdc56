"""Checking the card's signature over the challenge: a yes/no answer, whatever bytes arrive."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"
PSS_SALT_LENGTH = 32  # the SHA-256 digest length: RFC 4055/8017's usual profile, what test vectors expect
RSA_PSS_SHA256 = "rsa-pss-sha256"
ECDSA_SHA256 = "ecdsa-sha256"
ALGORITHMS = frozenset({RSA_PKCS1V15_SHA256, RSA_PSS_SHA256, ECDSA_SHA256})


def public_key_der_of(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo (DER); b"" when the key cannot be read, which never verifies."""
    try:
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:  # an unsupported or broken key: the signature step fails, it does not crash
        return b""


def public_key_of(cert: x509.Certificate) -> object | None:
    """The certificate's key, or None when cryptography cannot use it (that never verifies)."""
    try:
        return cert.public_key()
    except Exception:  # an unsupported or broken key: the signature step fails, it does not crash
        return None


def verify_signature(public_key_der: bytes, data: bytes, signature: bytes, algorithm: str) -> bool:
    """True only for a valid signature by this key with this algorithm; False for anything else."""
    try:
        key = serialization.load_der_public_key(public_key_der)
    except Exception:  # garbage, truncated or unsupported key bytes
        return False
    return verify_with_key(key, data, signature, algorithm)


def verify_with_key(key: object, data: bytes, signature: bytes, algorithm: str) -> bool:
    """`verify_signature` for a key already loaded (the certificate's): no DER round trip."""
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        return False
    try:
        if algorithm == ECDSA_SHA256:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(signature, data, _rsa_padding(algorithm), hashes.SHA256())
    except Exception:  # InvalidSignature, and ValueError/TypeError on malformed signatures or inputs
        return False
    return True


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH)
_PKCS1V15 = padding.PKCS1v15()


def _rsa_padding(algorithm: str) -> padding.AsymmetricPadding:
    """PSS with MGF1-SHA-256 and exactly a 32-byte salt: any other length is another profile."""
    return _PSS if algorithm == RSA_PSS_SHA256 else _PKCS1V15
