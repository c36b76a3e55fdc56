"""The fast path against the reference (pyhanko-certvalidator): one generated corpus, the same code.

Every case runs through both pipelines as `honnin.verification` builds them — the fast one
(CardCheckStep ▸ RevocationStep ▸ IdentityStep, CRLs from the index) and the reference one
(SignatureStep ▸ ChainStep ▸ IdentityStep, the same CRL files handed to pyhanko as DER) — and
both must give the code the case is about.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.ca_revocation import jpki
from adapters.ca_revocation.devca import Card, DevCA, Person, new_key
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
from adapters.ca_revocation.revocation import RevocationEvidence
from adapters.ca_revocation.revocation_crl import CrlFileSource
from adapters.clock import FakeClock
from schemas.payloads import CardFacts

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FRESH = NOW - timedelta(hours=1)
CHALLENGE = b"a challenge for this registration"
POLICIES = jpki.signing_policies(accept_test_certificates=True)
FACTS = CardFacts(name="公的 花子", address="東京都千代田区千代田1-1", birth_date=Person().birth_date, sex=2)
REASONS = [reason for reason in x509.ReasonFlags if reason is not x509.ReasonFlags.remove_from_crl]


@dataclass
class Pki:
    ca: DevCA
    other: DevCA  # the same subject DN, another key: as every JPKI root generation
    key: object  # one card key for every certificate: key generation is the slow part
    outsider: object


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki(
        DevCA.create(now=NOW - timedelta(days=30)),
        DevCA.create(now=NOW - timedelta(days=30)),
        new_key(),
        new_key(),
    )


@dataclass
class Case:
    name: str
    card: Card
    expected: str
    crls: Sequence[bytes] = ()
    ocsp: Sequence[bytes] = ()
    signature: bytes | None = None
    facts: CardFacts | None = FACTS
    policies: frozenset[str] = field(default=POLICIES)


class FixedEvidence:
    """A revocation source that hands over the same DER every time, and counts the calls."""

    name = "fixed"

    def __init__(self, crls: Sequence[bytes], ocsp: Sequence[bytes]) -> None:
        self.given = RevocationEvidence(tuple(crls), tuple(ocsp))
        self.calls = 0

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        self.calls += 1
        return self.given

    async def close(self) -> None:
        return None


def issue(pki: Pki, ca: DevCA | None = None, **changes: object) -> Card:
    options: dict[str, object] = {"now": NOW - timedelta(days=1), "key": pki.key} | changes
    return (ca or pki.ca).issue(Person(), **options)  # type: ignore[arg-type]


def revoked_crl(pki: Pki, card: Card, reason: x509.ReasonFlags, **crl: object) -> bytes:
    ca = DevCA(pki.ca.certificate, pki.ca.key)
    ca.revoke(card, at=NOW - timedelta(hours=2), reason=reason)
    return ca.crl(this_update=FRESH, **crl)  # type: ignore[arg-type]


def clean_crl(pki: Pki, **crl: object) -> bytes:
    return DevCA(pki.ca.certificate, pki.ca.key).crl(this_update=FRESH, **crl)  # type: ignore[arg-type]


def tampered(der: bytes) -> bytes:
    return der[:-1] + bytes([der[-1] ^ 0x01])


def corpus(pki: Pki) -> list[Case]:
    good = issue(pki)
    unknown_critical = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    cases = [
        Case("valid", good, "ok", [clean_crl(pki)]),
        Case(
            "expired",
            issue(pki, not_before=NOW - timedelta(days=60), valid_for=timedelta(days=30)),
            "21",
            [clean_crl(pki)],
        ),
        Case("not yet valid", issue(pki, not_before=NOW + timedelta(days=1)), "22", [clean_crl(pki)]),
        Case("digitalSignature only", issue(pki, key_usage=("digital_signature",)), "32", [clean_crl(pki)]),
        Case("nonRepudiation only", issue(pki, key_usage=("content_commitment",)), "32", [clean_crl(pki)]),
        Case(
            "digitalSignature and keyEncipherment",
            issue(pki, key_usage=("digital_signature", "key_encipherment")),
            "32",
            [clean_crl(pki)],
        ),
        Case("no key usage at all", issue(pki, key_usage=()), "32", [clean_crl(pki)]),
        Case("another policy", issue(pki, policy="1.2.392.200149.8.5.1.3.30"), "34", [clean_crl(pki)]),
        Case("test policy in production", good, "34", [clean_crl(pki)], policies=jpki.SIGNING_POLICIES),
        Case("production policy", issue(pki, policy=jpki.POLICY_SIGNING), "ok", [clean_crl(pki)]),
        Case(
            "unknown critical extension",
            issue(pki, extra_extensions=[(unknown_critical, True)]),
            "31",
            [clean_crl(pki)],
        ),
        Case(
            "unknown non-critical extension",
            issue(pki, extra_extensions=[(unknown_critical, False)]),
            "ok",
            [clean_crl(pki)],
        ),
        Case(
            "a CA certificate",
            issue(pki, extra_extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)]),
            "34",
            [clean_crl(pki)],
        ),
        Case("another same-named CA", issue(pki, ca=pki.other), "30", [pki.other.crl(this_update=FRESH)]),
        Case(
            "signed by a key the AKI does not name",
            issue(pki, signing_key=pki.other.key),
            "31",
            [clean_crl(pki)],
        ),
        Case(
            "tampered signature",
            Card(x509.load_der_x509_certificate(tampered(good.der)), good.key),
            "31",
            [clean_crl(pki)],
        ),
        Case(
            "signature over another challenge", good, "50", [clean_crl(pki)], signature=good.sign(b"another")
        ),
        Case(
            "another person's facts",
            good,
            "identity_mismatch",
            [clean_crl(pki)],
            facts=FACTS.model_copy(update={"sex": 1}),
        ),
        Case("no card facts read", good, "identity_mismatch", [clean_crl(pki)], facts=None),
        Case("no CRL", good, "40", []),
        Case(
            "stale CRL",
            good,
            "41",
            [DevCA(pki.ca.certificate, pki.ca.key).crl(this_update=NOW - timedelta(days=3))],
        ),
        Case("CRL from the other same-named CA", good, "40", [pki.other.crl(this_update=FRESH)]),
        Case("tampered CRL", good, "40", [tampered(clean_crl(pki))]),
        Case(
            "partition of the card's municipality",
            good,
            "ok",
            [clean_crl(pki, partition=("東京都", "千代田区"))],
        ),
        Case(
            "partition of another municipality only",
            good,
            "40",
            [clean_crl(pki, partition=("大阪府", "大阪市"))],
        ),
        Case(
            "stale own partition",
            good,
            "41",
            [
                DevCA(pki.ca.certificate, pki.ca.key).crl(
                    this_update=NOW - timedelta(days=3), partition=("東京都", "千代田区")
                )
            ],
        ),
    ]
    cases += [
        Case("CRL of another trusted generation only", good, "40", [pki.other.crl(this_update=FRESH)]),
        Case(
            "a card of the other trusted generation",
            issue(pki, ca=pki.other),
            "ok",
            [pki.other.crl(this_update=FRESH)],
        ),
    ]
    for reason in REASONS:
        card = issue(pki)
        expected = "25" if reason is x509.ReasonFlags.certificate_hold else "23"
        cases.append(Case(f"revoked: {reason.value}", card, expected, [revoked_crl(pki, card, reason)]))
    partitioned = issue(pki)
    cases.append(
        Case(
            "revoked in its partition",
            partitioned,
            "23",
            [revoked_crl(pki, partitioned, x509.ReasonFlags.superseded, partition=("東京都", "千代田区"))],
        )
    )
    listed_elsewhere = issue(pki, prefecture="大阪府", city="大阪市")
    cases.append(
        Case(
            "revoked, but the CRL is another partition's",
            listed_elsewhere,
            "40",
            [
                revoked_crl(
                    pki, listed_elsewhere, x509.ReasonFlags.superseded, partition=("東京都", "千代田区")
                )
            ],
        )
    )
    return cases + ocsp_cases(pki)


def ocsp_cases(pki: Pki) -> list[Case]:
    good, revoked, held = issue(pki), issue(pki), issue(pki)
    ca = DevCA(pki.ca.certificate, pki.ca.key)
    ca.revoke(revoked, at=NOW - timedelta(hours=2), reason=x509.ReasonFlags.key_compromise)
    ca.revoke(held, at=NOW - timedelta(hours=2), reason=x509.ReasonFlags.certificate_hold)
    answer = NOW - timedelta(minutes=5)
    return [
        Case("OCSP good", good, "ok", ocsp=[ca.ocsp_response(good.certificate, this_update=answer)]),
        Case("OCSP revoked", revoked, "23", ocsp=[ca.ocsp_response(revoked.certificate, this_update=answer)]),
        Case("OCSP on hold", held, "25", ocsp=[ca.ocsp_response(held.certificate, this_update=answer)]),
        Case(
            "OCSP stale",
            good,
            "41",
            ocsp=[ca.ocsp_response(good.certificate, this_update=NOW - timedelta(hours=3))],
        ),
        Case(
            "OCSP about another certificate",
            good,
            "40",
            ocsp=[ca.ocsp_response(revoked.certificate, this_update=answer)],
        ),
        Case(
            "OCSP by the other same-named CA",
            good,
            "40",
            ocsp=[pki.other.ocsp_response(good.certificate, this_update=answer)],
        ),
        Case(
            "OCSP revoked beats a clean CRL",
            revoked,
            "23",
            [clean_crl(pki)],
            [ca.ocsp_response(revoked.certificate, this_update=answer)],
        ),
        Case("OCSP garbage", good, "40", ocsp=[b"\x30\x03\x0a\x01\x00"]),
    ]


async def both(pki: Pki, case: Case, folder: Path) -> tuple[str, str]:
    """The code each pipeline gives, the fast one first."""
    anchors = [pki.ca.der, pki.other.der] if "same-named" not in case.name else [pki.ca.der]
    issuers = TrustAnchors(anchors)
    if case.ocsp:
        fast_source: object = FixedEvidence(case.crls, case.ocsp)
        reference_source: object = FixedEvidence(case.crls, case.ocsp)
    else:
        folder.mkdir()
        paths = []
        for number, der in enumerate(case.crls):
            (path := folder / f"{number}.crl").write_bytes(der)
            paths.append(path)
        fast_source = reference_source = CrlFileSource(paths, clock=FakeClock(NOW), issuers=issuers)
    fast = Pipeline(
        [
            CardCheckStep(issuers, policies=case.policies),
            RevocationStep(fast_source, issuers),  # type: ignore[arg-type]
            IdentityStep(),
        ]
    )
    chain = ChainStep(anchors, revocation=reference_source, policies=case.policies)  # type: ignore[arg-type]
    reference = Pipeline([SignatureStep(), chain, IdentityStep()])
    signature = case.signature if case.signature is not None else case.card.sign(CHALLENGE)
    subject = Subject(case.card.der, signature, "rsa-pkcs1v15-sha256", CHALLENGE, case.facts, NOW)
    return (await fast.verify(subject)).code, (await reference.verify(subject)).code


async def test_both_paths_give_every_case_its_code(pki: Pki, tmp_path: Path) -> None:
    cases = corpus(pki)
    results = {
        case.name: (case.expected, *await both(pki, case, tmp_path / str(i))) for i, case in enumerate(cases)
    }
    wrong = {name: codes for name, codes in results.items() if len(set(codes)) != 1}
    assert not wrong, f"(expected, fast, reference) where they differ: {wrong}"
    assert len(cases) >= 40
    assert {expected for expected, *_ in results.values()} >= {
        "ok",
        "21",
        "22",
        "23",
        "25",
        "30",
        "31",
        "32",
        "34",
        "40",
        "41",
        "50",
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(min_value=-90, max_value=2),
    days=st.integers(min_value=1, max_value=120),
    usage=st.sets(st.sampled_from(["digital_signature", "content_commitment", "key_encipherment"])),
    reason=st.none() | st.sampled_from(REASONS),
    revoked_hours_ago=st.integers(min_value=-3, max_value=48),
    crl_age_hours=st.integers(min_value=0, max_value=60),
)
async def test_both_paths_agree_on_generated_certificates(
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
    start: int,
    days: int,
    usage: set[str],
    reason: x509.ReasonFlags | None,
    revoked_hours_ago: int,
    crl_age_hours: int,
) -> None:
    card = issue(
        pki,
        not_before=NOW + timedelta(days=start),
        valid_for=timedelta(days=days),
        key_usage=tuple(sorted(usage)),
    )
    ca = DevCA(pki.ca.certificate, pki.ca.key)
    if reason is not None:
        ca.revoke(card, at=NOW - timedelta(hours=revoked_hours_ago), reason=reason)
    crl = ca.crl(this_update=NOW - timedelta(hours=crl_age_hours), next_update=timedelta(days=1))
    fast, reference = await both(
        pki, Case("generated", card, "", [crl]), tmp_path_factory.mktemp("crl") / "files"
    )
    assert fast == reference


def test_the_cpu_part_crosses_a_process_boundary(pki: Pki) -> None:
    """What issue 15's process pool will send and get back pickles, and means the same there."""
    card = issue(pki)
    anchors = TrustAnchors([pki.ca.der, pki.other.der])
    request = CardCheck(card.der, card.sign(CHALLENGE), "rsa-pkcs1v15-sha256", CHALLENGE, NOW)
    copied = pickle.loads(pickle.dumps((request, anchors, POLICIES)))
    result = check_card(*copied)
    assert result.ok
    assert pickle.loads(pickle.dumps(result)) == result
    assert result.query is not None
    assert result.query.issuer == anchors.issuers[0].fingerprint


async def test_an_ocsp_response_is_verified_once_however_often_it_is_used(pki: Pki) -> None:
    card = issue(pki)
    issuers = TrustAnchors([pki.ca.der])
    source = FixedEvidence(
        [], [pki.ca.ocsp_response(card.certificate, this_update=NOW - timedelta(minutes=5))]
    )
    step = RevocationStep(source, issuers)
    pipeline = Pipeline([CardCheckStep(issuers, policies=POLICIES), step, IdentityStep()])
    subject = Subject(card.der, card.sign(CHALLENGE), "rsa-pkcs1v15-sha256", CHALLENGE, FACTS, NOW)
    for _ in range(3):
        assert (await pipeline.verify(subject)).code == "ok"
    assert source.calls == 3
    assert len(step._judge._ocsp) == 1  # one verified answer kept, used three times
