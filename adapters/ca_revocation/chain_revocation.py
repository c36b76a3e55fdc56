"""Revocation checks after pyhanko has validated the path: the leaf, every CA, and CRL signers.

See `chain`'s module docstring for the rules (RFC 5280 §6.3 as Honnin applies it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator import errors as pv
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.revinfo.validate_crl import verify_crl
from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response

from adapters.ca_revocation.chain_outcome import (
    CODE_OK,
    CODE_ON_HOLD,
    CODE_REVOCATION_MISSING,
    CODE_REVOCATION_STALE,
    CODE_REVOKED,
    ChainResult,
    Evidence,
    result,
)


async def leaf_revocation(
    leaf: asn1_x509.Certificate, path: ValidationPath, context: ValidationContext
) -> ChainResult:
    """Both kinds of evidence are read: JPKI leaves have no AIA, so pyhanko would skip OCSP."""
    try:
        evidence = [
            await _evidence(verify_crl, leaf, path, context, pv.CRLValidationError),
            await _evidence(verify_ocsp_response, leaf, path, context, pv.OCSPValidationError),
        ]
    except pv.RevokedError as exc:
        if on_hold(exc):
            return result(CODE_ON_HOLD, "the certificate is on hold (certificateHold)")
        return result(CODE_REVOKED, "the certificate is revoked")
    if Evidence.GOOD in evidence:
        return result(CODE_OK, "the certificate is valid and not revoked")
    if Evidence.STALE in evidence:
        return result(CODE_REVOCATION_STALE, "the revocation information had passed its next update")
    return result(CODE_REVOCATION_MISSING, "no usable CRL or OCSP response covers the certificate")


async def _evidence(
    verify: Callable[[asn1_x509.Certificate, ValidationPath, ValidationContext], Awaitable[None]],
    leaf: asn1_x509.Certificate,
    path: ValidationPath,
    context: ValidationContext,
    failure: type[Exception],
) -> Evidence:
    """What one kind of revocation data says; RevokedError goes up, since revoked always wins."""
    try:
        await verify(leaf, path, context)
    except (pv.CRLValidationIndeterminateError, pv.OCSPValidationIndeterminateError) as exc:
        return Evidence.STALE if exc.suspect_stale is not None else Evidence.MISSING
    except (failure, ValueError):
        return Evidence.MISSING
    return Evidence.GOOD


async def _ca_status(
    cert: asn1_x509.Certificate, path: ValidationPath, context: ValidationContext
) -> Evidence | None:
    """A CA certificate against the evidence its issuer supplied; None when it supplied none."""
    found = []
    for verify, unmatched in (
        (verify_crl, pv.CRLNoMatchesError),
        (verify_ocsp_response, pv.OCSPNoMatchesError),
    ):
        try:
            await verify(cert, path, context)
            found.append(Evidence.GOOD)
        except unmatched:
            continue
        except (pv.CRLValidationIndeterminateError, pv.OCSPValidationIndeterminateError) as exc:
            found.append(Evidence.STALE if exc.suspect_stale is not None else Evidence.MISSING)
        except (pv.CRLValidationError, pv.OCSPValidationError, ValueError):
            found.append(Evidence.MISSING)
    for evidence in (Evidence.GOOD, Evidence.STALE, Evidence.MISSING):
        if evidence in found:
            return evidence
    return None


async def ca_revocation(
    cert: asn1_x509.Certificate, path: ValidationPath, context: ValidationContext
) -> ChainResult | None:
    """RFC 5280 §6.3 for an intermediate CA, whether or not it declares a distribution point."""
    try:
        evidence = await _ca_status(cert, path, context)
    except pv.RevokedError as exc:
        code = CODE_ON_HOLD if on_hold(exc) else CODE_REVOKED
        return result(code, "an issuing CA certificate is revoked or on hold")
    if evidence is Evidence.STALE:
        return result(CODE_REVOCATION_STALE, "revocation information for an issuing CA is out of date")
    if evidence is Evidence.MISSING:
        return result(CODE_REVOCATION_MISSING, "the revocation information for an issuing CA is unusable")
    return None


async def crls_of_revoked_signers(path: ValidationPath, context: ValidationContext) -> set[bytes]:
    """A CRL signed by a separate key counts only while that key's certificate is good: the signers
    pyhanko finds for the leaf's CRLs are checked like CAs; the DER of each CRL whose signer is not."""
    manager = context.revinfo_manager
    with contextlib.suppress(pv.RevokedError, pv.CRLValidationError, ValueError):
        await verify_crl(path.last, path, context)  # records each CRL's signer, as the real check will
    own_keys = {authority.public_key.dump() for authority in path.iter_authorities()}
    tainted = set()
    for crl in manager.crls:
        signer = manager.check_crl_issuer(crl)
        if signer is None or signer.public_key.dump() in own_keys:
            continue
        try:
            evidence = await _ca_status(signer, path.truncate_to_issuer_and_append(signer), context)
        except (LookupError, pv.RevokedError):
            evidence = Evidence.MISSING
        if evidence not in (None, Evidence.GOOD):
            tainted.add(crl.dump())
    return tainted


def on_hold(exc: pv.RevokedError) -> bool:
    """certificateHold is reversible, so it gets its own code (25), apart from revoked (23)."""
    return bool(exc.reason.native == "certificate_hold")
