"""The verifier's process pool (issue 15): the same verdicts as in process, on the fast path's whole
corpus of dev-CA certificates; a worker built from settings verifies through it; it shuts down."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.ca_revocation.devca import DevCA, new_key
from adapters.ca_revocation.fastpath import CardCheck, check_card
from adapters.ca_revocation.issuers import TrustAnchors
from adapters.ca_revocation.pipeline import inline
from adapters.ca_revocation.processes import ProcessRunner
from adapters.clock import FakeClock
from honnin import verification
from tests.integration.harness import settings, start
from tests.integration.test_fast_path import CHALLENGE, NOW, POLICIES, Pki, corpus
from tests.integration.test_outbound_isolation import NOW as TODAY
from tests.integration.test_outbound_isolation import activate_all


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki(
        DevCA.create(now=NOW - timedelta(days=30)),
        DevCA.create(now=NOW - timedelta(days=30)),
        new_key(),
        new_key(),
    )


async def test_the_pool_gives_the_same_verdict_as_in_process_for_every_case(pki: Pki) -> None:
    anchors = TrustAnchors([pki.ca.der, pki.other.der])
    runner = ProcessRunner(2)
    try:
        cases = corpus(pki)
        for case in cases:
            signature = case.signature if case.signature is not None else case.card.sign(CHALLENGE)
            request = CardCheck(case.card.der, signature, "rsa-pkcs1v15-sha256", CHALLENGE, NOW)
            here = await inline(check_card, request, anchors, case.policies)
            pooled = await runner(check_card, request, anchors, case.policies)
            assert pooled == here, case.name
        codes = {
            (
                await runner(
                    check_card,
                    CardCheck(c.card.der, c.card.sign(CHALLENGE), "rsa-pkcs1v15-sha256", CHALLENGE, NOW),
                    anchors,
                    POLICIES,
                )
            ).code
            for c in cases
        }
        assert len(codes) > 3, "the corpus reaches the pool with different answers, not one"
    finally:
        await runner.close()


async def test_a_closed_pool_leaves_no_process(pki: Pki) -> None:
    runner = ProcessRunner(2)
    pids = await runner.warm()
    assert len(pids) == 2
    assert os.getpid() not in pids
    await runner.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_setting_sizes_the_pool_and_zero_keeps_it_in_process(tmp_path: Path) -> None:
    default = verification.cpu_runner(settings(tmp_path, verifier_enabled=True, verifier_processes=None))
    assert default is not None
    assert default.processes == (os.cpu_count() or 1)
    assert verification.cpu_runner(settings(tmp_path, verifier_enabled=True, verifier_processes=0)) is None
    assert verification.cpu_runner(settings(tmp_path, verifier_enabled=False, verifier_processes=3)) is None


async def test_a_worker_built_from_settings_verifies_through_its_pool(tmp_path: Path) -> None:
    now = TODAY  # activate_all issues its cards as of today
    ca = DevCA.create(now=now - timedelta(days=1))
    (root := tmp_path / "root.der").write_bytes(ca.der)
    (crl := tmp_path / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    clock = FakeClock(now)
    app = await start(
        tmp_path / "data",
        clock,
        verifier_enabled=True,
        verifier_processes=2,
        trust_anchor_files=[root],
        crl_files=[crl],
    )
    try:
        assert app.cpu is not None
        assert app.cpu.processes == 2
        calls: list[str] = []
        pool = app.cpu
        steps = [app.verifier._pipeline.steps[0]] + [p.steps[0] for p in app.verifier._by_profile.values()]  # type: ignore[attr-defined]
        assert all(step._run is pool for step in steps), "bootstrap hands the pool to every card check"

        async def counted(function, *args):  # type: ignore[no-untyped-def]
            calls.append(function.__name__)
            return await pool(function, *args)

        app.verifier._pipeline.steps[0]._run = counted  # type: ignore[attr-defined]
        for pipeline in app.verifier._by_profile.values():  # type: ignore[attr-defined]
            pipeline.steps[0]._run = counted
        await asyncio.wait_for(activate_all(app, ca, clock), 120)
        assert len(calls) >= 40, "every registration's card check went to the pool"
        assert set(calls) == {"check_card"}
    finally:
        await app.close()
