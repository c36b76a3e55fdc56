"""Two `honnin run` processes on one RabbitMQ and one store, sharing HONNIN_METRICS_DIR: each
applies a share of the registrations, and either one's /metrics (one on its HTTP port, the other,
without HTTP, on HONNIN_METRICS_PORT) serves the sum of both, exactly one of each per registration."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.ca_revocation.devca import DevCA, Person
from adapters.clock import SystemClock
from honnin.emulator import CardEmulator, HttpFeed
from orchestrator.topology import QUEUES
from tests.integration.metrics_scrape import Samples, scrape, value
from tests.integration.receivers import free_port
from tests.integration.test_workers import FACILITY, TOKEN, connect, worker

pytestmark = pytest.mark.integration

REGISTRATIONS = 40


def activations(m: Samples) -> float:
    return value(
        m,
        "honnin_transitions_total",
        from_state="signature_verified",
        to_state="activated",
        profile="facility",
    )


async def test_two_workers_metrics_add_up_to_one_of_each_per_registration(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    bus = await connect(prefix)
    now = datetime.now(UTC)
    ca = DevCA.create(now=now - timedelta(days=1))
    ca.save(tmp_path / "ca")
    (tmp_path / "ca" / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    http_port, metrics_port = free_port(), free_port()
    shared = {"HONNIN_METRICS_DIR": str(tmp_path / "metrics")}
    workers = [
        worker(tmp_path, prefix, tmp_path / "ca", 1, http_port, extra=shared),
        worker(
            tmp_path,
            prefix,
            tmp_path / "ca",
            2,
            free_port(),
            extra={**shared, "HONNIN_HTTP_ENABLED": "false", "HONNIN_METRICS_PORT": str(metrics_port)},
        ),
    ]
    feed = HttpFeed(f"http://127.0.0.1:{http_port}", TOKEN)
    emulator = CardEmulator(
        bus, ca.issue(Person(), now=now), Person(), SystemClock(), feed, facility_id=FACILITY
    )
    urls = [f"http://127.0.0.1:{http_port}/metrics", f"http://127.0.0.1:{metrics_port}/metrics"]
    try:
        for queue, bindings in QUEUES.items():
            await bus.declare_queue(queue, bindings)
        await emulator.listen()
        for i in range(REGISTRATIONS):
            await emulator.register(f"reg-mm-{i:06d}")
        assert await emulator.wait_activated(within=120) == set()
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while activations(await scrape(http, urls[0])) < REGISTRATIONS:
                await asyncio.sleep(0.1)
            scraped = [await scrape(http, url) for url in urls]
    finally:
        await emulator.close()
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(timeout=60)
        await bus.delete_topology()
        await bus.close()

    for m in scraped:
        assert (
            value(m, "honnin_events_total", type="registration.started", outcome="applied") == REGISTRATIONS
        )
        assert activations(m) == REGISTRATIONS, "one activation per registration, over both workers"
        assert value(m, "honnin_verifications_total", outcome="passed", code="") == REGISTRATIONS
        started = value(
            m, "honnin_transitions_total", from_state="new", to_state="info_entered", profile="facility"
        )
        assert started == REGISTRATIONS
        assert (
            value(m, "honnin_handler_seconds_count", queue="honnin.verifier", outcome="ok") >= REGISTRATIONS
        )
    shares = []
    for process, log in workers:
        assert process.returncode == 0, log.read_text()[-2000:]
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        shares.append(sum(1 for e in lines if e.get("event") == "event.applied"))
    assert all(share > 0 for share in shares), f"both workers applied events: {shares}"
    applied = sum(shares)
    assert applied == REGISTRATIONS * 6, "four steps, the verdict and the completion of each"
    files = {p.name.split("_", 1)[1] for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert {f.split("-")[1] for f in files} == {"1", "2"}, f"one counter file per worker: {files}"
