"""The bridge's own check of a signature before anything is submitted: over this challenge, by this key.

The verifier checks it again with the chain, revocation and identity; this check only keeps a
signature over someone else's challenge (or garbage) from ever reaching the orchestrator.
"""

from __future__ import annotations

import base64

from adapters.ca_revocation.certificates import CODE_MALFORMED, CertificateError, load_certificate
from adapters.ca_revocation.pipeline import CODE_BAD_SIGNATURE
from adapters.ca_revocation.signatures import public_key_der_of, verify_signature
from adapters.http.common import HttpError
from orchestrator.messages import possibly_revoked
from schemas.api_card_bridge import SignatureRequest


def check_signature(body: SignatureRequest, challenge_b64: str) -> None:
    """400 unless the certificate parses and its key signed exactly `challenge_b64`'s bytes."""
    try:
        certificate = load_certificate(base64.b64decode(body.certificate))
    except CertificateError:
        raise HttpError(400, "malformed_certificate", possibly_revoked(CODE_MALFORMED)) from None
    signed = verify_signature(
        public_key_der_of(certificate),
        base64.b64decode(challenge_b64),
        base64.b64decode(body.signature),
        body.algorithm,
    )
    if not signed:
        raise HttpError(400, "signature_not_over_challenge", possibly_revoked(CODE_BAD_SIGNATURE))
