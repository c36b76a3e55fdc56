"""Two `honnin run` processes compete for the same RabbitMQ queues over one store: a thousand
registrations, driven by the card emulator with real signatures, each activated exactly once. The
emulator hears outcomes as a facility does, long-polling one worker's `GET /v1/events`: the other
worker's commits reach it through the shared store."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.ca_revocation.devca import DevCA, Person
from adapters.clock import SystemClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from honnin.emulator import CardEmulator, HttpFeed
from orchestrator.model import State
from orchestrator.topology import QUEUES
from tests.conftest import require
from tests.integration.receivers import free_port

pytestmark = pytest.mark.integration

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
REGISTRATIONS = 1000
FACILITY, TOKEN = "facility-emu", "facility-emu-token-0123456789"


async def connect(prefix: str):
    from adapters.bus.rabbitmq import RabbitMqBus
    from orchestrator.errors import BusUnavailableError

    try:
        return await RabbitMqBus.connect(RABBITMQ_URL, queue_prefix=prefix)
    except BusUnavailableError as exc:
        require("RabbitMQ", exc.message)


def worker(
    tmp_path: Path, prefix: str, ca_dir: Path, n: int, port: int, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env |= {
        "HONNIN_DATA_DIR": str(tmp_path / "data"),
        "HONNIN_DATA_KEY": base64.b64encode(KEY).decode(),
        "HONNIN_BUS": "rabbitmq",
        "HONNIN_RABBITMQ_URL": RABBITMQ_URL,
        "HONNIN_RABBITMQ_QUEUE_PREFIX": prefix,
        "HONNIN_TRUST_ANCHOR_FILES": str(ca_dir / "root.pem"),
        "HONNIN_CRL_FILES": str(ca_dir / "crl.der"),
        "HONNIN_ACCEPT_TEST_CERTIFICATES": "true",  # the development CA's test-environment policy
        "HONNIN_WORKER_ID": f"worker-{n}",
        "HONNIN_RELAY_IDLE_SECONDS": "0.05",
        "HONNIN_HTTP_PORT": str(port),  # the steps come over the broker; the feed is read over HTTP
        "HONNIN_FACILITY_TOKENS": f"{FACILITY}:{TOKEN}",
    }
    env |= extra or {}
    log = tmp_path / f"worker-{n}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "honnin.cli", "run"], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    return process, log


async def test_two_worker_processes_activate_a_thousand_registrations_exactly_once(tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    bus = await connect(prefix)
    now = datetime.now(UTC)
    ca = DevCA.create(now=now - timedelta(days=1))
    ca.save(tmp_path / "ca")
    (tmp_path / "ca" / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    card = ca.issue(Person(), now=now)
    ports = [free_port(), free_port()]
    workers = [
        worker(tmp_path, prefix, tmp_path / "ca", n, port) for n, port in zip((1, 2), ports, strict=True)
    ]
    feed = HttpFeed(f"http://127.0.0.1:{ports[0]}", TOKEN)
    emulator = CardEmulator(bus, card, Person(), SystemClock(), feed, facility_id=FACILITY)
    try:
        for queue, bindings in QUEUES.items():
            await bus.declare_queue(queue, bindings)
        await emulator.listen()
        for i in range(REGISTRATIONS):
            await emulator.register(f"reg-mp-{i:06d}")
        missing = await emulator.wait_activated(within=300)
        assert missing == set()
        activations = Counter(
            emulator.heard.count(rid, "registration.activated") for rid in emulator.expected
        )
        assert activations == Counter({1: REGISTRATIONS}), "each registration activated exactly once"
    finally:
        await emulator.close()
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(timeout=60)
        await bus.delete_topology()
        await bus.close()

    store = await SqliteStore.open(tmp_path / "data" / "honnin.db", Sealer(KEY))
    try:
        for rid in sorted(emulator.expected)[:: REGISTRATIONS // 50]:
            stored = await store.load(rid)
            assert stored is not None
            assert stored.registration.state is State.ACTIVATED
            applied = [h.event_type for h in await store.history(rid) if h.outcome == "applied"]
            assert applied.count("registration.complete_requested") == 1
        leftover = await store.claim_outbox("inspector", datetime.now(UTC) + timedelta(hours=1), 1, 1000)
        logs = "".join(log.read_text()[-3000:] for _, log in workers)
        assert [m.routing_key for m in leftover] == [], logs
    finally:
        await store.close()

    shares = []
    for process, log in workers:
        assert process.returncode == 0, log.read_text()[-2000:]
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        shares.append(sum(1 for entry in lines if entry.get("event") == "event.applied"))
    assert all(share > 0 for share in shares), f"both workers applied events: {shares}"
