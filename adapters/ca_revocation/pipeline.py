"""The verification pipeline: signature ▸ chain and revocation ▸ identity match.

Each step answers nothing (go on), or a verdict that ends the pipeline: fail with a code the
seed's messages know (21 expired, 23 revoked, identity_mismatch, any other code), or
retry_later when the outside world may answer better later (revocation source down, CRL stale).

Two shapes (chosen by `honnin.verification`):
- the fast path, for JPKI's one-tier hierarchy (no intermediates configured):
  `CardCheckStep` (signature, profile, issuer, validity, extensions, key usage: one CPU-bound
  function, `fastpath.check_card`) ▸ `RevocationStep` (the CRL index, or a verified-once OCSP
  response) ▸ `IdentityStep`;
- the reference path, pyhanko-certvalidator, for anything else (intermediates):
  `SignatureStep` ▸ `ChainStep` ▸ `IdentityStep`.
A differential test runs both over the same corpus and they must agree on every code.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import structlog
from cryptography import x509

from adapters.ca_revocation import chain
from adapters.ca_revocation.certificates import (
    CODE_MALFORMED,
    CertificateError,
    fingerprint,
    identity_of,
    load_certificate,
)
from adapters.ca_revocation.evidence import EvidenceJudge
from adapters.ca_revocation.fastpath import CODE_BAD_SIGNATURE as CODE_BAD_SIGNATURE
from adapters.ca_revocation.fastpath import (
    CardCheck,
    CardCheckResult,
    authority_key_id,
    check_card,
    signing_profile,
)
from adapters.ca_revocation.issuers import Issuer, TrustAnchors, certificate_signed_by
from adapters.ca_revocation.jpki import SIGNING_POLICIES
from adapters.ca_revocation.revocation import (
    RevocationEvidence,
    RevocationSource,
    RevocationSourceRejectedError,
    RevocationUnavailableError,
)
from adapters.ca_revocation.signatures import public_key_of, verify_with_key
from adapters.ca_revocation.status import RevocationQuery, RevocationStatus
from orchestrator.errors import failure_reason
from orchestrator.identity import CardIdentity, match
from orchestrator.messages import CODE_IDENTITY_MISMATCH
from schemas.payloads import CardFacts
from schemas.privacy import mask_individual_numbers

log = structlog.get_logger("honnin.verifier")

CODE_STEP_FAILED = chain.CODE_STEP_FAILED  # "44"
REASON_LIMIT = 200
RETRY_LATER_CODES = frozenset(
    {chain.CODE_REVOCATION_MISSING, chain.CODE_REVOCATION_STALE, chain.CODE_STEP_FAILED}
)
T = TypeVar("T")


@dataclass(frozen=True)
class Subject:
    """What one verification attempt checks: the card's signature over the server's challenge."""

    certificate: bytes
    signature: bytes
    algorithm: str
    challenge: bytes
    card: CardFacts | None
    at: datetime


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["pass", "fail", "retry_later"]
    code: str
    reason: str
    step: str = ""
    fingerprint: str | None = None


class Work:
    """One verification's parsed certificate and results, shared by its steps: nothing is parsed twice."""

    __slots__ = ("_cert", "checked", "subject")

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self._cert: x509.Certificate | None = None
        self.checked: CardCheckResult | None = None

    @property
    def cert(self) -> x509.Certificate:
        """Parsed on first use; raises CertificateError (33) for bytes that are not a certificate."""
        if self._cert is None:
            self._cert = load_certificate(self.subject.certificate)
        return self._cert


class Step(Protocol):
    name: str

    async def check(self, subject: Subject, work: Work) -> Verdict | None: ...


class CpuRunner(Protocol):
    """Where CPU-bound checks run: inline by default; a process pool can take its place."""

    async def __call__(self, function: Callable[..., T], /, *args: Any) -> T: ...


async def inline(function: Callable[..., T], /, *args: Any) -> T:
    """A fraction of a millisecond of work: cheaper run here than handed to a thread."""
    return function(*args)


@runtime_checkable
class StatusSource(Protocol):
    """A source that answers a `RevocationQuery` itself (the CRL index), with no DER to judge."""

    async def status(self, query: RevocationQuery, at: datetime) -> RevocationStatus: ...


def fail(code: str, reason: str) -> Verdict:
    return Verdict("fail", code, reason)


# -- the reference path ---------------------------------------------------------------------------


class SignatureStep:
    """The signature must be over this registration's own challenge, by the certificate's key."""

    name = "signature"

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        if not verify_with_key(
            public_key_of(work.cert), subject.challenge, subject.signature, subject.algorithm
        ):
            return fail(CODE_BAD_SIGNATURE, "the signature is not over this registration's challenge")
        return None


class ChainStep:
    """pyhanko-certvalidator: a path to the configured anchors only, valid now, revocation checked."""

    name = "chain"

    def __init__(
        self,
        trust_anchors: Sequence[bytes],
        *,
        revocation: RevocationSource | None,
        intermediates: Sequence[bytes] = (),
        policies: frozenset[str] = SIGNING_POLICIES,
    ) -> None:
        self._anchors = list(trust_anchors)
        self._intermediates = list(intermediates)
        self._revocation = revocation
        self._policies = policies
        self._issuers = TrustAnchors(self._anchors + self._intermediates)

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        problem = signing_profile(work.cert, self._policies)
        if problem is not None:
            return fail(*problem)
        evidence = RevocationEvidence()
        if self._revocation is not None:
            issuer = self._issuer_of(work.cert)
            if issuer is None:
                return fail(chain.CODE_UNTRUSTED, "no configured trust anchor issued this certificate")
            try:
                evidence = await self._revocation.evidence(work.cert, issuer.cert)
            except (RevocationUnavailableError, RevocationSourceRejectedError) as exc:
                return _source_failed(exc)
        result = await asyncio.to_thread(
            chain.validate_chain,
            subject.certificate,
            intermediates=self._intermediates,
            trust_anchors=self._anchors,
            at=subject.at,
            crls=list(evidence.crls),
            ocsp_responses=list(evidence.ocsp_responses),
            check_revocation=self._revocation is not None,
        )
        if result.ok:
            return None
        outcome: Literal["fail", "retry_later"] = (
            "retry_later" if result.code in RETRY_LATER_CODES else "fail"
        )
        return Verdict(outcome, result.code, result.reason)

    def _issuer_of(self, cert: x509.Certificate) -> Issuer | None:
        """By name and key identifier (every JPKI root generation has the same subject), preferring
        the one whose signature verifies; a bad signature is then the validator's 31 to give."""
        candidates = self._issuers.named(cert.issuer, authority_key_id(cert))
        signed = next((issuer for issuer in candidates if certificate_signed_by(cert, issuer)), None)
        return signed or (candidates[0] if candidates else None)


def _source_failed(exc: RevocationUnavailableError | RevocationSourceRejectedError) -> Verdict:
    if isinstance(exc, RevocationSourceRejectedError):  # our misconfiguration, not the person's
        log.error("revocation.source_rejected", code=exc.code, reason=failure_reason(exc))
    return Verdict("retry_later", exc.code, exc.message)


# -- the fast path --------------------------------------------------------------------------------


class CardCheckStep:
    """Everything but revocation, in one CPU-bound call over bytes (`fastpath.check_card`)."""

    name = "card"

    def __init__(self, anchors: TrustAnchors, *, policies: frozenset[str], run: CpuRunner = inline) -> None:
        self._anchors = anchors
        self._policies = policies
        self._run = run

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        request = CardCheck(
            subject.certificate, subject.signature, subject.algorithm, subject.challenge, subject.at
        )
        checked = work.checked = await self._run(check_card, request, self._anchors, self._policies)
        if checked.code == CODE_MALFORMED:  # reported as the pipeline reports unreadable bytes
            raise CertificateError(checked.reason, code=CODE_MALFORMED)
        return None if checked.ok else fail(checked.code, checked.reason)


class RevocationStep:
    """Answers the card check's question from the process that holds the index and caches."""

    name = "revocation"

    def __init__(self, source: RevocationSource, anchors: TrustAnchors) -> None:
        self._source = source
        self._anchors = anchors
        self._lookup = source.status if isinstance(source, StatusSource) else None
        self._judge = EvidenceJudge(anchors)

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        query = work.checked.query if work.checked is not None else None
        if query is None:
            raise RuntimeError("the revocation step runs after a passed card check")
        try:
            if self._lookup is not None:
                status = await self._lookup(query, subject.at)
            else:
                status = await self._judged(subject, query)
        except (RevocationUnavailableError, RevocationSourceRejectedError) as exc:
            return _source_failed(exc)
        return _revocation_verdict(status)

    async def _judged(self, subject: Subject, query: RevocationQuery) -> RevocationStatus:
        """OCSP-backed sources give DER: judged once per distinct response, then remembered."""
        issuer = self._anchors.by_fingerprint(query.issuer)
        if issuer is None:
            raise RuntimeError("the card check named an issuer that is not configured")
        leaf = x509.load_der_x509_certificate(subject.certificate)
        evidence = await self._source.evidence(leaf, issuer.cert)
        return self._judge.status(evidence, query, leaf, issuer, chain.aware(subject.at))


def _revocation_verdict(status: RevocationStatus) -> Verdict | None:
    if status.state == "good":
        return None
    if status.on_hold:
        return fail(chain.CODE_ON_HOLD, "the certificate is on hold (certificateHold)")
    if status.state == "revoked":
        return fail(chain.CODE_REVOKED, "the certificate is revoked")
    if status.state == "stale":
        return Verdict(
            "retry_later",
            chain.CODE_REVOCATION_STALE,
            "the revocation information had passed its next update",
        )
    return Verdict(
        "retry_later", chain.CODE_REVOCATION_MISSING, "no usable CRL or OCSP response covers the certificate"
    )


# -- both -----------------------------------------------------------------------------------------


class IdentityStep:
    """The certificate's four facts must be the card's read in step 2 (seed §3.2)."""

    name = "identity"

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        if subject.card is None:
            return fail(CODE_IDENTITY_MISMATCH, "no card facts were read for this registration")
        card = subject.card
        mismatch = match(card.name, card.address, card.birth_date, card.sex, _identity(work))
        if mismatch is not None:
            return fail(CODE_IDENTITY_MISMATCH, "facts differ: " + ", ".join(mismatch.fields))
        return None


def _identity(work: Work) -> CardIdentity:
    """The fast path read the facts already; raises CertificateError (34) when they are malformed."""
    checked = work.checked
    if checked is not None and checked.identity_error is not None:
        raise CertificateError(checked.identity_error[1], code=checked.identity_error[0])
    if checked is not None and checked.identity is not None:
        return checked.identity
    return identity_of(work.cert)


class Pipeline:
    """Runs the steps in order; the first verdict wins, and every decision is logged with its step."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    async def verify(self, subject: Subject) -> Verdict:
        print_ = fingerprint(subject.certificate)
        work = Work(subject)
        try:
            for step in self.steps:
                verdict = await step.check(subject, work)
                if verdict is not None:
                    return _decided(verdict, step.name, print_)
        except CertificateError as exc:
            return _decided(fail(exc.code, exc.message), "certificate", print_)
        except Exception as exc:  # a step's bug or an outside answer nobody foresaw: not the person's fault
            log.error("verification.step_crashed", error=type(exc).__name__, fingerprint=print_)
            return _decided(
                Verdict("retry_later", CODE_STEP_FAILED, "a verification step failed"), "crash", print_
            )
        return _decided(Verdict("pass", "ok", "every check passed"), "all", print_)


@functools.lru_cache(maxsize=512)
def _safe(reason: str) -> str:
    """Reasons travel in events and history: short, and never a 12-digit run."""
    return mask_individual_numbers(reason)[:REASON_LIMIT]


def _decided(verdict: Verdict, step: str, print_: str) -> Verdict:
    decided = Verdict(verdict.outcome, verdict.code, _safe(verdict.reason), step, print_)
    log.info(
        "verification.decided", outcome=decided.outcome, code=decided.code, step=step, fingerprint=print_
    )
    return decided
