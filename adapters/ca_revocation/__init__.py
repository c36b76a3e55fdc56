"""Certificate work for JPKI signing certificates: the stable public API outside checks call.

- `verify_signature(public_key_der, data, signature, algorithm) -> bool`
- `validate_chain(leaf_der, *, intermediates, trust_anchors, at, crls=(), ocsp_responses=(),
  check_revocation=True) -> ChainResult` with `.ok`, `.code` ("ok", "21" expired, "23" revoked,
  or another code documented in `chain`) and `.reason`
- `parse_identity(cert_der) -> CardIdentity` (name, address, birth date, sex, substitute flags)
"""

from __future__ import annotations

from adapters.ca_revocation.certificates import CertificateError, fingerprint, parse_identity
from adapters.ca_revocation.chain import ChainResult, validate_chain
from adapters.ca_revocation.signatures import verify_signature
from orchestrator.identity import CardIdentity

__all__ = [
    "CardIdentity",
    "CertificateError",
    "ChainResult",
    "fingerprint",
    "parse_identity",
    "validate_chain",
    "verify_signature",
]
