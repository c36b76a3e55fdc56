"""What the xID routes check before anything is submitted: the certificate's facts, the device key,
and that the signature is over this registration's consent message."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from adapters.ca_revocation import CertificateError, fingerprint, parse_identity
from adapters.card_bridge.signing import check_signature
from adapters.http.common import HttpError
from orchestrator.messages import possibly_revoked
from schemas.api_card_bridge import SignatureRequest
from schemas.api_xid import XidSignatureRequest
from schemas.payloads_xid import CertificateFacts, DeviceKey

RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096


def certificate_facts(certificate_b64: str) -> tuple[CertificateFacts, str]:
    """The four facts and the fingerprint of a JPKI signing certificate; 400 with the seed's code."""
    der = base64.b64decode(certificate_b64)
    try:
        identity = parse_identity(der)
    except CertificateError as exc:
        raise HttpError(400, "unusable_certificate", possibly_revoked(exc.code)) from None
    try:
        facts = CertificateFacts(
            name=identity.name,
            sex=identity.sex,  # parse_identity checked it is 1, 2 or 3
            birth_date=identity.birth_date,
            address=identity.address,
            address_substituted=identity.address_substituted,
        )
    except ValidationError:  # a fact Honnin refuses (too long, an individual number): not echoed
        raise HttpError(400, "unusable_certificate", possibly_revoked("34")) from None
    return facts, fingerprint(der)


def device_key(public_key_b64: str) -> DeviceKey:
    """An EC P-256 or RSA (2048-4096 bit) public key as SubjectPublicKeyInfo DER, exactly."""
    der = base64.b64decode(public_key_b64)
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise _bad_key("not a DER SubjectPublicKeyInfo") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ec-p256"
    elif isinstance(key, rsa.RSAPublicKey) and RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
        algorithm = "rsa"
    else:
        raise _bad_key("an EC P-256 or RSA 2048-4096 bit key is required")
    canonical = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if canonical != der:
        raise _bad_key("not a canonical DER SubjectPublicKeyInfo")
    return DeviceKey(
        public_key=base64.b64encode(der).decode(),
        algorithm=algorithm,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def check_consent_signature(body: XidSignatureRequest, signed: bytes) -> None:
    """400 unless the certificate's key signed exactly the consent message (the bridge's own check)."""
    request = SignatureRequest(
        certificate=body.certificate, signature=body.signature, algorithm=body.algorithm
    )
    check_signature(request, base64.b64encode(signed).decode())


def _bad_key(why: str) -> HttpError:
    return HttpError(422, "invalid_device_key", f"device_public_key: {why}")
