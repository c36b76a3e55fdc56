"""The verification pipeline: signature ▸ chain and revocation ▸ identity match.

Each step answers nothing (go on), or a verdict that ends the pipeline: fail with a code the
seed's messages know (21 expired, 23 revoked, identity_mismatch, any other code), or
retry_later when the outside world may answer better later (revocation source down, CRL stale).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from adapters.ca_revocation import chain
from adapters.ca_revocation.certificates import (
    CODE_NOT_JPKI_SIGNING,
    CertificateError,
    fingerprint,
    load_certificate,
    parse_identity,
)
from adapters.ca_revocation.jpki import SIGNING_POLICIES
from adapters.ca_revocation.revocation import (
    RevocationEvidence,
    RevocationSource,
    RevocationSourceRejectedError,
    RevocationUnavailableError,
)
from adapters.ca_revocation.signatures import public_key_der_of, verify_signature
from orchestrator.errors import failure_reason
from orchestrator.identity import match
from orchestrator.messages import CODE_IDENTITY_MISMATCH
from schemas.payloads import CardFacts
from schemas.privacy import mask_individual_numbers

log = structlog.get_logger("honnin.verifier")

CODE_BAD_SIGNATURE = "50"
CODE_STEP_FAILED = "44"
REASON_LIMIT = 200
RETRY_LATER_CODES = frozenset({chain.CODE_REVOCATION_MISSING, chain.CODE_REVOCATION_STALE})


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


class Step(Protocol):
    name: str

    async def check(self, subject: Subject, cert: x509.Certificate) -> Verdict | None: ...


def fail(code: str, reason: str) -> Verdict:
    return Verdict("fail", code, reason)


class SignatureStep:
    """The signature must be over this registration's own challenge, by the certificate's key."""

    name = "signature"

    async def check(self, subject: Subject, cert: x509.Certificate) -> Verdict | None:
        key = public_key_der_of(cert)
        if not verify_signature(key, subject.challenge, subject.signature, subject.algorithm):
            return fail(CODE_BAD_SIGNATURE, "the signature is not over this registration's challenge")
        return None


class ChainStep:
    """A path to the configured anchors only, valid now, with revocation evidence checked."""

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
        self._issuers = [x509.load_der_x509_certificate(der) for der in self._anchors + self._intermediates]

    async def check(self, subject: Subject, cert: x509.Certificate) -> Verdict | None:
        if not self._has_signing_policy(cert):
            return fail(CODE_NOT_JPKI_SIGNING, "not a JPKI signing certificate (certificate policy)")
        evidence = RevocationEvidence()
        if self._revocation is not None:
            issuer = self._issuer_of(cert)
            if issuer is None:
                return fail(chain.CODE_UNTRUSTED, "no configured trust anchor issued this certificate")
            try:
                evidence = await self._revocation.evidence(cert, issuer)
            except RevocationUnavailableError as exc:
                return Verdict("retry_later", exc.code, exc.message)
            except RevocationSourceRejectedError as exc:  # our misconfiguration, not the person's
                log.error("revocation.source_rejected", code=exc.code, reason=failure_reason(exc))
                return Verdict("retry_later", exc.code, exc.message)
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

    def _has_signing_policy(self, cert: x509.Certificate) -> bool:
        try:
            policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound:
            return False
        return any(p.policy_identifier.dotted_string in self._policies for p in policies)

    def _issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        """By signature, not by name: every JPKI root generation has the same subject."""
        for candidate in self._issuers:
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue  # not this issuer
            return candidate
        return None


class IdentityStep:
    """The certificate's four facts must be the card's read in step 2 (seed §3.2)."""

    name = "identity"

    async def check(self, subject: Subject, cert: x509.Certificate) -> Verdict | None:
        if subject.card is None:
            return fail(CODE_IDENTITY_MISMATCH, "no card facts were read for this registration")
        identity = parse_identity(subject.certificate)
        card = subject.card
        mismatch = match(card.name, card.address, card.birth_date, card.sex, identity)
        if mismatch is not None:
            return fail(CODE_IDENTITY_MISMATCH, "facts differ: " + ", ".join(mismatch.fields))
        return None


class Pipeline:
    """Runs the steps in order; the first verdict wins, and every decision is logged with its step."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    async def verify(self, subject: Subject) -> Verdict:
        print_ = fingerprint(subject.certificate)
        try:
            cert = load_certificate(subject.certificate)
            for step in self.steps:
                verdict = await step.check(subject, cert)
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


def _safe(reason: str) -> str:
    """Reasons travel in events and history: short, and never a 12-digit run."""
    return mask_individual_numbers(reason)[:REASON_LIMIT]


def _decided(verdict: Verdict, step: str, print_: str) -> Verdict:
    decided = Verdict(verdict.outcome, verdict.code, _safe(verdict.reason), step, print_)
    log.info(
        "verification.decided", outcome=decided.outcome, code=decided.code, step=step, fingerprint=print_
    )
    return decided
