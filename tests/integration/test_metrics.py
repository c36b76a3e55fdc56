"""/metrics of a running worker after real flows: scraped over HTTP and parsed with prometheus_client's
parser, the counts exactly those of the flow (dev CA cards, an OCSP responder that goes down)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from adapters.ca_revocation.devca import DevCA, Person
from adapters.ca_revocation.responder import serve as responder
from adapters.clock import FakeClock
from orchestrator.model import State
from tests import factory
from tests.integration.harness import settle
from tests.integration.metrics_scrape import scrape, total, value
from tests.integration.receivers import Receiver, until, worker
from tests.integration.test_verification_flow import complete, sign_with, up_to_confirmed, verification_of

NOW = datetime.now(UTC).replace(microsecond=0)
ORCH, VERIFIER = "honnin.orchestrator", "honnin.verifier"


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


async def test_a_flow_s_counts_are_exactly_what_happened(tmp_path: Path, ca: DevCA) -> None:
    good, revoked, uncached = (ca.issue(Person(), now=NOW) for _ in range(3))
    ca.revoke(revoked, at=NOW - timedelta(minutes=2), reason=x509.ReasonFlags.superseded)
    (tmp_path / "root.der").write_bytes(ca.der)
    clock = FakeClock(NOW)
    try:
        async with responder(ca) as ocsp:
            ocsp.state.register(good.certificate)
            ocsp.state.register(revoked.certificate)
            ocsp.state.register(uncached.certificate)  # not asked before the outage: no cached answer
            async with worker(
                tmp_path / "data",
                clock,
                verifier_enabled=True,
                trust_anchor_files=[tmp_path / "root.der"],
                revocation="ocsp",
                ocsp_url=f"{ocsp.url}/ocsp",
                verification_retry_limit=2,
            ) as w:
                for rid in ("reg-metric-01", "reg-metric-02"):
                    await up_to_confirmed(w.app, rid)
                    await sign_with(w.app, rid, good)
                    assert await complete(w.app, rid) == ("applied", None)
                await up_to_confirmed(w.app, "reg-metric-03")
                await sign_with(w.app, "reg-metric-03", revoked)  # code 23
                ocsp.state.down = True
                await up_to_confirmed(w.app, "reg-metric-04")
                await sign_with(w.app, "reg-metric-04", uncached)  # 42, retried twice, then parked
                for _ in range(2):
                    clock.advance(timedelta(minutes=5))
                    await w.app.runtime.sweeper.sweep_once()
                    await settle(w.app)
                parked = await verification_of(w.app, "reg-metric-04")
                assert parked.verification is not None
                assert (parked.verification.status, parked.verification.code) == ("parked", "42")
                duplicate = factory.event("registration.started", "reg-metric-01")
                await w.app.orchestrator.handle(duplicate)
                await w.app.orchestrator.handle(duplicate)  # the second one is a duplicate
                m = await scrape(w.http, f"{w.base}/metrics")
    finally:
        ca.revoked.clear()

    def transitions(src: State, dst: State) -> float:
        return value(
            m, "honnin_transitions_total", from_state=src.value, to_state=dst.value, profile="facility"
        )

    assert transitions(State.NEW, State.INFO_ENTERED) == 4, "one per registration"
    assert transitions(State.INFO_ENTERED, State.CARD_READ) == 4
    assert transitions(State.CARD_READ, State.CONFIRMED) == 4
    assert transitions(State.CONFIRMED, State.SIGNATURE_VERIFIED) == 2
    assert transitions(State.SIGNATURE_VERIFIED, State.ACTIVATED) == 2
    assert total(m, "honnin_transitions_total") == 16
    assert value(m, "honnin_verifications_total", outcome="passed", code="") == 2
    assert value(m, "honnin_verifications_total", outcome="failed", code="23") == 1
    assert value(m, "honnin_verifications_total", outcome="retrying", code="42") == 2
    assert value(m, "honnin_verifications_total", outcome="parked", code="42") == 1
    assert total(m, "honnin_verifications_total") == 6
    assert value(m, "honnin_verification_retries_total", code="42") == 2
    assert value(m, "honnin_events_total", type="registration.started", outcome="applied") == 4
    assert value(m, "honnin_events_total", type="registration.started", outcome="rejected") == 1
    assert value(m, "honnin_events_total", type="registration.started", outcome="duplicate") == 1
    assert value(m, "honnin_events_total", type="verification.completed", outcome="applied") == 6
    assert value(m, "honnin_events_total", type="registration.complete_requested", outcome="applied") == 2
    # the verifier heard six requests; the orchestrator queue every step, verdict and deadline sent to it
    assert value(m, "honnin_handler_seconds_count", queue=VERIFIER, outcome="ok") == 6
    consumed = 4 * 3 + 4 + 6  # three steps and a signature per registration, six verdicts
    assert value(m, "honnin_handler_seconds_count", queue=ORCH, outcome="ok") == consumed
    assert value(m, "honnin_handler_seconds_bucket", queue=VERIFIER, outcome="ok", le="+Inf") == 6
    assert value(m, "honnin_handler_seconds_sum", queue=VERIFIER, outcome="ok") > 0
    assert value(m, "honnin_store_up") == 1
    assert value(m, "honnin_outbox_backlog") == 0
    assert value(m, "honnin_outbox_oldest_age_seconds") == 0
    assert value(m, "honnin_dead_letters") == 0
    assert value(m, "honnin_quarantined", kind="registration") == 0
    assert value(m, "honnin_parked") == 1
    assert value(m, "honnin_registrations", state="activated") == 2
    assert value(m, "honnin_registrations", state="confirmed") == 2
    assert value(m, "honnin_registrations_verification", status="failed") == 1


async def test_the_outbox_lag_is_the_age_of_the_oldest_unsent_message(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    async with worker(tmp_path, clock) as w:
        await w.app.runtime.stop()  # the relay no longer publishes: what is committed waits
        for rid in ("reg-lag-0001", "reg-lag-0002"):  # a signature asks the verifier: one outbox row
            for kind in factory.FLOW[:4]:
                assert (await w.app.orchestrator.handle(factory.event(kind, rid))).status == "applied"
            clock.advance(timedelta(seconds=90 if rid.endswith("1") else 30))
        m = await scrape(w.http, f"{w.base}/metrics")
    assert value(m, "honnin_outbox_backlog") == 2
    assert value(m, "honnin_outbox_oldest_age_seconds") == 120


async def test_webhook_attempts_are_counted_by_outcome(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver(statuses=[503]).running() as receiver:

        async def counted(outcome: str, times: int) -> None:
            async def check() -> bool:
                found = await scrape(w.http, f"{w.base}/metrics")
                return value(found, "honnin_webhook_deliveries_total", outcome=outcome) == times

            await until(check)

        await w.put_webhook(receiver.url)
        await w.cancelled("reg-hook-0001")
        await counted("retry", 1)
        w.clock.advance(timedelta(hours=1))  # past the persisted next attempt
        await counted("delivered", 1)
        m = await scrape(w.http, f"{w.base}/metrics")
    assert len(receiver.got) == 2
    assert total(m, "honnin_webhook_deliveries_total") == 2


def test_a_store_that_does_not_answer_leaves_the_counters_served() -> None:
    from adapters.metrics.prometheus import PrometheusMetrics
    from tests.integration.metrics_scrape import parse

    metrics = PrometheusMetrics()
    metrics.event_handled("registration.started", "applied")
    m = parse(metrics.exposition(None).decode())
    assert value(m, "honnin_store_up") == 0
    assert value(m, "honnin_events_total", type="registration.started", outcome="applied") == 1
    assert not any(name == "honnin_outbox_backlog" for name, _ in m), "no gauge it could not read"
    other = parse(PrometheusMetrics().exposition(None).decode())
    assert value(other, "honnin_events_total", type="registration.started", outcome="applied") == 0, (
        "each worker's counts are its own without a metrics folder"
    )
