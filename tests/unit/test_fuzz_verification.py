"""Mutated and random DER fed to the verifier, the CRL index and the OCSP judge: always a clear code.

Bounded (max_examples, no deadline) so the suite stays fast; the seeds are valid DER from the
development CA, mutated the ways a broken card, platform or file would break them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.ca_revocation import jpki
from adapters.ca_revocation.crl_index import CrlRejectedError, RevocationIndex, verify_crl
from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.ca_revocation.evidence import EvidenceJudge
from adapters.ca_revocation.fastpath import CardCheck, check_card
from adapters.ca_revocation.issuers import TrustAnchors
from adapters.ca_revocation.pipeline import (
    CardCheckStep,
    ChainStep,
    IdentityStep,
    Pipeline,
    RevocationStep,
    SignatureStep,
    Subject,
)
from adapters.ca_revocation.query import query_of
from adapters.ca_revocation.revocation import (
    RevocationEvidence,
    RevocationSourceRejectedError,
    RevocationUnavailableError,
    cert_id,
    parse_ocsp,
)
from schemas.payloads import CardFacts

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHALLENGE = b"challenge"
POLICIES = jpki.signing_policies(accept_test_certificates=True)
FACTS = CardFacts(name="公的 花子", address="東京都千代田区千代田1-1", birth_date=Person().birth_date, sex=2)
CODES = {"ok", "21", "22", "23", "25", "30", "31", "32", "33", "34", "40", "41", "50", "identity_mismatch"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Pki:
    def __init__(self) -> None:
        self.ca = DevCA.create(now=NOW - timedelta(days=30))
        self.card: Card = self.ca.issue(Person(), now=NOW - timedelta(days=1))
        self.ca.revoke(self.ca.issue(Person(), now=NOW - timedelta(days=1), key=self.card.key), at=NOW)
        self.crl = self.ca.crl(this_update=NOW - timedelta(hours=1), partition=("東京都", "千代田区"))
        self.ocsp = self.ca.ocsp_response(self.card.certificate, this_update=NOW - timedelta(minutes=5))
        self.anchors = TrustAnchors([self.ca.der])


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Flipped bytes, cuts and insertions anywhere in a valid encoding, or random bytes."""
    flips = st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(1, 255)), min_size=1, max_size=4)

    def flip(changes: list[tuple[int, int]]) -> bytes:
        data = bytearray(seed)
        for where, mask in changes:
            data[where] ^= mask
        return bytes(data)

    cut = st.integers(0, len(seed) - 1).map(lambda end: seed[:end])
    insert = st.tuples(st.integers(0, len(seed)), st.binary(min_size=1, max_size=8)).map(
        lambda pair: seed[: pair[0]] + pair[1] + seed[pair[0] :]
    )
    return st.one_of(flips.map(flip), cut, insert, st.binary(max_size=300))


class Fixed:
    name = "fixed"

    def __init__(self, evidence: RevocationEvidence) -> None:
        self.evidence_given = evidence

    async def evidence(self, leaf, issuer) -> RevocationEvidence:
        return self.evidence_given

    async def close(self) -> None:
        return None


@FUZZ
@given(data=st.data())
async def test_a_mutated_certificate_gets_a_clear_code_on_both_paths(pki: Pki, data: st.DataObject) -> None:
    der = data.draw(mutated(pki.card.der))
    source = Fixed(RevocationEvidence(crls=(pki.crl,)))
    fast = Pipeline(
        [CardCheckStep(pki.anchors, policies=POLICIES), RevocationStep(source, pki.anchors), IdentityStep()]
    )
    reference = Pipeline(
        [SignatureStep(), ChainStep([pki.ca.der], revocation=source, policies=POLICIES), IdentityStep()]
    )
    subject = Subject(der, pki.card.sign(CHALLENGE), "rsa-pkcs1v15-sha256", CHALLENGE, FACTS, NOW)
    fast_code = (await fast.verify(subject)).code
    assert fast_code in CODES
    assert (await reference.verify(subject)).code in CODES
    result = check_card(
        CardCheck(der, subject.signature, subject.algorithm, CHALLENGE, NOW), pki.anchors, POLICIES
    )
    assert result.code in CODES


@FUZZ
@given(data=st.data())
def test_a_mutated_crl_is_verified_or_refused_and_never_raises_anything_else(
    pki: Pki, data: st.DataObject
) -> None:
    der = data.draw(mutated(pki.crl))
    try:
        crl = verify_crl(der, pki.anchors, source="fuzz")
    except CrlRejectedError:
        return
    status = RevocationIndex([crl]).status(
        query_of(pki.card.certificate, pki.anchors.issuers[0].fingerprint), NOW
    )
    assert status.state in {"good", "revoked", "stale", "missing"}


@FUZZ
@given(data=st.data())
def test_a_mutated_ocsp_response_is_judged_without_raising(pki: Pki, data: st.DataObject) -> None:
    der = data.draw(mutated(pki.ocsp))
    issuer = pki.anchors.issuers[0]
    query = query_of(pki.card.certificate, issuer.fingerprint)
    judge = EvidenceJudge(pki.anchors)
    status = judge.status(RevocationEvidence(ocsp_responses=(der,)), query, pki.card.certificate, issuer, NOW)
    assert status.state in {"good", "revoked", "stale", "missing"}
    if status.state == "good":  # only the very bytes the CA signed may say good
        original = ocsp.load_der_ocsp_response(pki.ocsp).tbs_response_bytes
        assert ocsp.load_der_ocsp_response(der).tbs_response_bytes == original
    try:  # what the OCSP sources do with an answer: parse it, or say why the source is not usable
        answer = parse_ocsp(der, cert_id(pki.card.certificate, pki.ca.certificate))
    except (RevocationUnavailableError, RevocationSourceRejectedError):
        return
    assert answer.der == der


@FUZZ
@given(data=st.data())
async def test_a_mutated_crl_file_is_no_evidence_or_an_answer(
    pki: Pki, data: st.DataObject, tmp_path_factory
) -> None:
    from adapters.ca_revocation.revocation_crl import CrlFileSource
    from adapters.clock import FakeClock

    path = tmp_path_factory.mktemp("crl") / "fuzz.crl"
    path.write_bytes(data.draw(mutated(pki.crl)))
    source = CrlFileSource([path], clock=FakeClock(NOW), issuers=pki.anchors)
    status = await source.status(query_of(pki.card.certificate, pki.anchors.issuers[0].fingerprint), NOW)
    assert status.state in {"good", "revoked", "stale", "missing"}
