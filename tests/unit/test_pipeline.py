"""The pipeline's own rules: first verdict wins, crashes are nobody's fault but ours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.ca_revocation.devca import DevCA, Person
from adapters.ca_revocation.pipeline import Pipeline, Subject, Verdict, Work


@pytest.fixture(scope="module")
def subject() -> Subject:
    card = DevCA.create().issue(Person())
    return Subject(card.der, b"sig", "rsa-pkcs1v15-sha256", b"challenge", None, datetime.now(UTC))


class Crashing:
    name = "crashing"

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        raise TypeError("unhashable type: 'list' with 公的 花子 in it")


class Refusing:
    name = "refusing"

    def __init__(self, reason: str = "no") -> None:
        self.reason = reason
        self.calls = 0

    async def check(self, subject: Subject, work: Work) -> Verdict | None:
        self.calls += 1
        return Verdict("fail", "31", self.reason)


async def test_a_crashing_step_is_a_retry_later_44_without_its_text(subject: Subject) -> None:
    after = Refusing()
    verdict = await Pipeline([Crashing(), after]).verify(subject)
    assert (verdict.outcome, verdict.code, verdict.step) == ("retry_later", "44", "crash")
    assert "公的" not in verdict.reason
    assert after.calls == 0


async def test_the_first_verdict_wins_and_carries_the_fingerprint(subject: Subject) -> None:
    first, second = Refusing(), Refusing()
    verdict = await Pipeline([first, second]).verify(subject)
    assert (verdict.outcome, verdict.code, verdict.step) == ("fail", "31", "refusing")
    assert (first.calls, second.calls) == (1, 0)
    assert verdict.fingerprint is not None
    assert len(verdict.fingerprint) == 64


async def test_a_reason_is_cut_short_and_never_carries_twelve_digits(subject: Subject) -> None:
    verdict = await Pipeline([Refusing("serial 1234 5678 9012 " + "x" * 500)]).verify(subject)
    assert "1234 5678 9012" not in verdict.reason
    assert len(verdict.reason) <= 200


async def test_no_step_is_a_pass(subject: Subject) -> None:
    verdict = await Pipeline([]).verify(subject)
    assert (verdict.outcome, verdict.code) == ("pass", "ok")
