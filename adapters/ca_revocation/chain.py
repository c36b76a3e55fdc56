"""RFC 5280 path validation of a JPKI signing certificate and its revocation status (pyhanko-certvalidator).

`validate_chain` never raises on bad input: every outcome is a `ChainResult` with one of these codes.

| code | constant                    | meaning                                                            |
| ---- | --------------------------- | ------------------------------------------------------------------ |
| ok   | CODE_OK                     | a valid path to a trust anchor, usable for signing, not revoked    |
| 21   | CODE_EXPIRED                | the certificate had expired at `at`                                |
| 22   | CODE_NOT_YET_VALID          | the certificate was not yet valid at `at`                          |
| 23   | CODE_REVOKED                | revoked for any reason but certificateHold (or an issuing CA was)  |
| 25   | CODE_ON_HOLD                | suspended: revoked with reason certificateHold                     |
| 30   | CODE_UNTRUSTED              | no path to a configured trust anchor (path building failed)        |
| 31   | CODE_PATH_INVALID           | a path exists but fails validation: a signature that does not      |
|      |                             | verify (also a tampered leaf), name chaining, basic constraints,   |
|      |                             | path length, an unknown critical extension, a disallowed algorithm |
|      |                             | or an issuing CA outside its own validity period                   |
| 32   | CODE_KEY_USAGE              | key usage lacks digitalSignature or nonRepudiation                 |
| 33   | CODE_MALFORMED              | the certificate, a trust anchor or an intermediate is not DER X.509|
| 40   | CODE_REVOCATION_MISSING     | no usable CRL or OCSP response covers the certificate              |
| 41   | CODE_REVOCATION_STALE       | a covering CRL or OCSP response had passed its nextUpdate at `at`  |
| 42   | CODE_REVOCATION_UNAVAILABLE | reserved: the revocation source was unreachable; the revocation    |
|      |                             | sources report it, validate_chain never does                       |
| 44   | CODE_STEP_FAILED            | an unexpected exception inside validation (a bug, logged as an     |
|      |                             | error): retry later, never a verdict shown to the person           |

A tampered signature is 31, not 33: the bytes are well-formed DER, it is the path that fails.
Unparseable CRLs or OCSP responses are not 33 either: they are no evidence, so the result is 40.

Revocation (`check_revocation=True`): JPKI certificates name their CRL distribution point as a
directoryName and carry no OCSP URL (no AIA), and pyhanko only consults OCSP responses for a
certificate whose AIA lists a responder. So pyhanko checks the issuing CA certificates in hard-fail
mode during path validation, and the leaf is checked here, after the path and key usage, against
both the given CRLs (`verify_crl`) and OCSP responses (`verify_ocsp_response`): any source saying
revoked wins, else any source saying good passes, else 41 if a covering one was stale, else 40.

RFC 5280 §6.3: every certificate of the path whose issuer's revocation data is supplied is checked,
not only those that declare a distribution point. pyhanko's hard-fail mode skips an intermediate CA
that declares none, and the certificate of a separate CRL-signing key (a CRL issuer path's end
entity); so after path validation each intermediate is checked here against the same evidence
(revoked: 23/25, stale: 41, supplied but unusable: 40; no data from its issuer at all: nothing to
check), and a CRL whose signer's certificate is revoked (or cannot be confirmed) is dropped before
the leaf is judged, which then usually has no evidence left (40).
A devca CRL has no IssuingDistributionPoint, and pyhanko then matches it to the leaf by issuer name
and signature alone (RFC 5280 §6.3.3 b.2 only applies when the CRL has that extension).
With `check_revocation=False` no revocation data is consulted at all (pyhanko's "none" mode).

Revocation data issued after `at` is used as well (pyhanko's `retroactive_revinfo`): Honnin passes
`at` = now and fetches the evidence for this very check, and a responder whose clock runs a few
seconds ahead would otherwise make every answer "too new" (40, retried for ever). A revocation counts
only when its date is before `at`; a CRL or response whose nextUpdate is before `at` is stale (41).

Issuers are chosen by key and signature, not by name alone: every JPKI root generation has the same
subject DN. pyhanko keeps only the same-named anchors whose subjectKeyIdentifier matches the leaf's
authorityKeyIdentifier (none left: 30), and tries each remaining candidate path until a signature
verifies (none does: 31). A leaf without an AKI is matched by name only, so a wrong key gives 31.

Threading: `validate_chain` runs the coroutine with `asyncio.run` when the thread has no running
loop (the usual case: `asyncio.to_thread(validate_chain, ...)`). Called from inside a running loop,
it runs `asyncio.run` in a one-off worker thread and blocks the caller until done (a few ms): async
code should rather await `validate_chain_async` or use `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509 import ocsp
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as pv
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from adapters.ca_revocation import chain_outcome
from adapters.ca_revocation.chain_outcome import result as _result
from adapters.ca_revocation.chain_revocation import (
    ca_revocation,
    crls_of_revoked_signers,
    leaf_revocation,
    on_hold,
)

log = structlog.get_logger("honnin.chain")

# The codes of the table above and the result type live in `chain_outcome` (shared with
# `chain_revocation`); callers keep reading them here.
CODE_OK = chain_outcome.CODE_OK
CODE_EXPIRED = chain_outcome.CODE_EXPIRED
CODE_NOT_YET_VALID = chain_outcome.CODE_NOT_YET_VALID
CODE_REVOKED = chain_outcome.CODE_REVOKED
CODE_ON_HOLD = chain_outcome.CODE_ON_HOLD
CODE_UNTRUSTED = chain_outcome.CODE_UNTRUSTED
CODE_PATH_INVALID = chain_outcome.CODE_PATH_INVALID
CODE_KEY_USAGE = chain_outcome.CODE_KEY_USAGE
CODE_MALFORMED = chain_outcome.CODE_MALFORMED
CODE_REVOCATION_MISSING = chain_outcome.CODE_REVOCATION_MISSING
CODE_REVOCATION_STALE = chain_outcome.CODE_REVOCATION_STALE
CODE_REVOCATION_UNAVAILABLE = chain_outcome.CODE_REVOCATION_UNAVAILABLE
CODE_STEP_FAILED = chain_outcome.CODE_STEP_FAILED
ChainResult = chain_outcome.ChainResult

SIGNING_KEY_USAGE = frozenset({"digital_signature", "non_repudiation"})

_CA_HARD_FAIL_ONLY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.NO_CHECK,  # the leaf: _leaf_revocation below
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,  # "hard-fail"
    ),
    retroactive_revinfo=True,  # evidence fetched after `at` counts: see the module docstring
)
_NO_REVOCATION = CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy("none"))


class _Malformed(Exception):
    """One of the inputs is not DER X.509; carries the reason to report."""


# -- input ------------------------------------------------------------------------------------


def _certificate(der: bytes, what: str) -> asn1_x509.Certificate:
    """Strict parse with both libraries, so pyhanko never meets bytes it would choke on later."""
    try:
        x509.load_der_x509_certificate(der).extensions  # noqa: B018 - parsing extensions is the point
        cert = asn1_x509.Certificate.load(der, strict=True)
        cert.native  # noqa: B018 - force asn1crypto's lazy parse now
    except Exception as exc:
        raise _Malformed(f"{what} is not a well-formed DER X.509 certificate") from exc
    return cert


T = TypeVar("T")


def _parsed(ders: Sequence[bytes], check: Callable[[bytes], object], load: Callable[[bytes], T]) -> list[T]:
    """Unparseable CRLs or OCSP responses are dropped: they cover nothing, which 40 then reports.
    `check` is cryptography's stricter parser, `load` the asn1crypto form pyhanko takes."""
    parsed = []
    for der in ders:
        try:
            check(der)
            parsed.append(load(der))
        except Exception:  # noqa: S112 - broken revocation data is no evidence, not an error
            continue
    return parsed


def _crls(ders: Sequence[bytes]) -> list[asn1_crl.CertificateList]:
    return _parsed(ders, x509.load_der_x509_crl, lambda der: asn1_crl.CertificateList.load(der, strict=True))


def _ocsps(ders: Sequence[bytes]) -> list[asn1_ocsp.OCSPResponse]:
    return _parsed(
        ders, ocsp.load_der_ocsp_response, lambda der: asn1_ocsp.OCSPResponse.load(der, strict=True)
    )


def aware(at: datetime) -> datetime:
    """pyhanko refuses naive datetimes; Honnin's clock is UTC, so a naive one is taken as UTC."""
    return at if at.utcoffset() is not None else at.replace(tzinfo=UTC)


# -- validation -------------------------------------------------------------------------------


def validate_chain(
    leaf_der: bytes,
    *,
    intermediates: Sequence[bytes],
    trust_anchors: Sequence[bytes],
    at: datetime,
    crls: Sequence[bytes] = (),
    ocsp_responses: Sequence[bytes] = (),
    check_revocation: bool = True,
) -> ChainResult:
    """The stable sync entry point: callable from plain code, a worker thread, or (blocking) a loop."""
    validation = functools.partial(
        validate_chain_async,
        leaf_der,
        intermediates=intermediates,
        trust_anchors=trust_anchors,
        at=at,
        crls=crls,
        ocsp_responses=ocsp_responses,
        check_revocation=check_revocation,
    )

    def run() -> ChainResult:
        return asyncio.run(validation())

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual case
        return run()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="honnin-chain") as worker:
        return worker.submit(run).result()


async def validate_chain_async(
    leaf_der: bytes,
    *,
    intermediates: Sequence[bytes],
    trust_anchors: Sequence[bytes],
    at: datetime,
    crls: Sequence[bytes] = (),
    ocsp_responses: Sequence[bytes] = (),
    check_revocation: bool = True,
) -> ChainResult:
    """The async form of `validate_chain`, for callers already on an event loop."""
    try:
        leaf = _certificate(leaf_der, "the certificate")
        anchors = [_certificate(der, "a trust anchor") for der in trust_anchors]
        others = [_certificate(der, "an intermediate certificate") for der in intermediates]
    except _Malformed as exc:
        return _result(CODE_MALFORMED, str(exc))
    try:
        build = functools.partial(
            _context, anchors, others, at=at, ocsps=ocsp_responses, revocation=check_revocation
        )
        return await _validate(leaf, build, crls, check_revocation=check_revocation)
    except pv.PathError:  # path building: no issuer, by name, key and signature, leads to an anchor
        return _result(CODE_UNTRUSTED, "no path leads from the certificate to a configured trust anchor")
    except pv.ValidationError as exc:
        return _classified(exc)
    except Exception as exc:  # a bug, not a verdict: the person must not be told the card failed
        log.error("chain.unexpected_error", error=type(exc).__name__)
        return _result(CODE_STEP_FAILED, "the certificate path could not be validated (internal error)")


def _context(
    anchors: list[asn1_x509.Certificate],
    others: list[asn1_x509.Certificate],
    *,
    at: datetime,
    crls: Sequence[bytes],
    ocsps: Sequence[bytes],
    revocation: bool,
) -> ValidationContext:
    """Offline by construction: only the anchors, intermediates and evidence given, at `at`."""
    return ValidationContext(
        trust_roots=anchors,
        other_certs=others,
        moment=aware(at),
        allow_fetching=False,
        crls=_crls(crls) if revocation else [],
        ocsps=_ocsps(ocsps) if revocation else [],
        revinfo_policy=_CA_HARD_FAIL_ONLY if revocation else _NO_REVOCATION,
    )


_Build = Callable[..., ValidationContext]  # _context with all but `crls` bound


async def _validate(
    leaf: asn1_x509.Certificate, build: _Build, crls: Sequence[bytes], *, check_revocation: bool
) -> ChainResult:
    """Path first, then key usage, then revocation (CAs, then the leaf): permanent failures before
    retryable ones."""
    context = build(crls=crls)
    validator = CertificateValidator(leaf, validation_context=context)
    try:
        path = await validator.async_validate_path()
    except pv.InvalidCertificateError:  # pyhanko's word for a self-signed leaf with no path
        return _result(CODE_UNTRUSTED, "the certificate is self-signed and not a trust anchor")
    try:
        await validator.async_validate_usage(set(SIGNING_KEY_USAGE))  # type: ignore[no-untyped-call]
    except pv.InvalidCertificateError:
        return _result(
            CODE_KEY_USAGE, "the key usage does not allow signing (digitalSignature and nonRepudiation)"
        )
    if not check_revocation:
        return _result(CODE_OK, "the certificate is valid (revocation not checked)")
    for ca in list(path.iter_certs(include_root=False))[:-1]:
        refused = await ca_revocation(ca, path, context)
        if refused is not None:
            return refused
    tainted = await crls_of_revoked_signers(path, context)
    if tainted:
        log.warning("chain.crl_signer_not_good", crls=len(tainted))
        context = build(crls=[der for der in crls if der not in tainted])
    return await leaf_revocation(leaf, path, context)


def _classified(exc: pv.ValidationError) -> ChainResult:
    """pyhanko's exception, as one of our codes; its message names the subject, so it is not reused."""
    if isinstance(exc, pv.RevokedError):
        code = CODE_ON_HOLD if on_hold(exc) else CODE_REVOKED
        return _result(code, "an issuing CA certificate is revoked or on hold")
    if isinstance(exc, pv.StaleRevinfoError):
        return _result(CODE_REVOCATION_STALE, "revocation information for an issuing CA is out of date")
    if isinstance(exc, pv.InsufficientRevinfoError):
        return _result(CODE_REVOCATION_MISSING, "no revocation information covers an issuing CA certificate")
    if isinstance(exc, pv.ExpiredError):
        if exc.is_ee_cert:
            return _result(CODE_EXPIRED, "the certificate had expired at the validation time")
        return _result(CODE_PATH_INVALID, "an issuing CA certificate had expired at the validation time")
    if isinstance(exc, pv.NotYetValidError):
        if exc.is_ee_cert:
            return _result(CODE_NOT_YET_VALID, "the certificate was not yet valid at the validation time")
        return _result(
            CODE_PATH_INVALID, "an issuing CA certificate was not yet valid at the validation time"
        )
    if isinstance(exc, pv.DisallowedAlgorithmError):
        return _result(CODE_PATH_INVALID, "a certificate in the path uses a disallowed algorithm")
    if isinstance(exc, pv.PathValidationError) and "signature" in exc.failure_msg:
        return _result(CODE_PATH_INVALID, "a certificate signature in the path does not verify")
    return _result(CODE_PATH_INVALID, "the certificate path failed RFC 5280 validation")
