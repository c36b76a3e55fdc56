"""A store outage of 30 seconds while registrations are in flight, on the in-process bus and on
RabbitMQ: another process holds `BEGIN EXCLUSIVE` on the SQLite file, so every commit fails with
SQLITE_BUSY after the busy timeout. The buses redeliver with backoff over their window; when the
lock goes, everything carries on: nothing lost, nothing dead-lettered, each step applied once."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.clock import SystemClock
from honnin.bootstrap import App, bootstrap
from orchestrator.model import State
from orchestrator.topology import QUEUES
from tests import factory
from tests.contract.buses import RABBITMQ_URL
from tests.integration.harness import publish, settings

OUTAGE_SECONDS = 30.0
PER_PHASE = 8
HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


class Outage:
    """Another process that holds the store's write lock for a while."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        self.began = time.monotonic()

    @classmethod
    async def begin(cls, path: Path, seconds: float) -> Outage:
        """Wait for the lock without blocking the worker's loop: the worker finishes the write it has
        open (as a live worker would), then the other process takes the lock."""
        outage = cls(path, seconds)
        assert outage.process.stdout is not None
        assert (await asyncio.to_thread(outage.process.stdout.readline)).strip() == "locked"
        outage.began = time.monotonic()
        return outage

    async def over(self) -> None:
        while self.process.poll() is None:
            await asyncio.sleep(0.2)
        assert self.process.returncode == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(params=["inprocess", pytest.param("rabbitmq", marks=pytest.mark.integration)])
async def worker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[App, Card]]:
    now = datetime.now(UTC)
    ca = DevCA.create(now=now - timedelta(days=1))
    (root := tmp_path / "root.der").write_bytes(ca.der)
    (crl := tmp_path / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    chosen = settings(
        tmp_path / "data",
        verifier_enabled=True,
        trust_anchor_files=[root],
        revocation="crl",
        crl_files=[crl],
        sqlite_busy_timeout_seconds=1.0,  # a commit fails after a second of waiting: many failures
        redelivery_cap_seconds=5.0,  # the wait between two deliveries, at most (default 300)
        bus=request.param,
        rabbitmq_url=RABBITMQ_URL,
        rabbitmq_queue_prefix=f"outage-{uuid.uuid4().hex[:8]}.",
    )
    if request.param == "rabbitmq":
        from tests.contract.buses import connect_rabbitmq

        probe = await connect_rabbitmq()  # skips locally, fails under CI=true, without a broker
        await probe.close()
    app = await bootstrap(chosen, clock=SystemClock())
    await app.runtime.start()
    try:
        yield app, ca.issue(Person(), now=now)
    finally:
        if request.param == "rabbitmq":
            await app.bus.delete_topology()  # type: ignore[attr-defined]
        await app.close()


async def until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.2)


def committed_states(app: App) -> Counter[str]:
    """What the file holds, read past the worker's own connection (its turn waits behind commits
    that wait out the busy timeout)."""
    with sqlite3.connect(f"file:{app.settings.sqlite_file}?mode=ro", uri=True) as db:
        return Counter(state for (state,) in db.execute("SELECT state FROM registrations"))


async def states(app: App, rids: list[str]) -> Counter[State]:
    found = [await app.store.load(rid) for rid in rids]
    return Counter(s.registration.state if s else State.NEW for s in found)


async def verified(app: App, rids: list[str]) -> bool:
    for rid in rids:
        stored = await app.store.load(rid)
        if stored is None or stored.registration.state is not State.SIGNATURE_VERIFIED:
            return False
    return True


async def sign(app: App, rid: str, card: Card) -> None:
    stored = await app.store.load(rid)
    assert stored is not None
    assert stored.registration.challenge is not None
    challenge = base64.b64decode(stored.registration.challenge)
    payload = {
        "certificate": base64.b64encode(card.der).decode(),
        "signature": base64.b64encode(card.sign(challenge)).decode(),
        "algorithm": "rsa-pkcs1v15-sha256",
    }
    await publish(app, factory.event("card.signature_submitted", rid, payload=payload))


async def up_to_confirmed(app: App, rids: list[str]) -> None:
    for rid in rids:
        payload = {**factory.PAYLOADS["registration.started"], "applicant": factory.APPLICANT}
        await publish(app, factory.event("registration.started", rid, payload=payload))
        await publish(app, factory.event("card.info_read", rid))
        await publish(app, factory.event("registration.confirmed", rid))


async def test_a_thirty_second_store_outage_loses_nothing_and_dead_letters_nothing(
    worker: tuple[App, Card],
) -> None:
    app, card = worker
    before = [f"reg-before-{n:04d}" for n in range(PER_PHASE)]
    during = [f"reg-during-{n:04d}" for n in range(PER_PHASE)]
    await up_to_confirmed(app, before)
    await until(lambda: _all(app, before, State.CONFIRMED), 30)

    outage = await Outage.begin(app.settings.sqlite_file, OUTAGE_SECONDS)
    try:
        for rid in before:  # verifications requested while nothing commits
            await sign(app, rid, card)
        await up_to_confirmed(app, during)  # whole registrations arriving while nothing commits
        await asyncio.sleep(3)
        assert committed_states(app) == Counter({"confirmed": PER_PHASE}), "no commit went through"
        await outage.over()
    finally:
        outage.stop()

    await until(lambda: verified(app, before), 60)
    await until(lambda: _all(app, during, State.CONFIRMED), 60)
    for rid in during:
        await sign(app, rid, card)
    await until(lambda: verified(app, during), 60)
    for rid in before + during:
        await publish(app, factory.event("registration.complete_requested", rid))
    await until(lambda: _all(app, before + during, State.ACTIVATED), 60)

    for rid in before + during:
        applied = Counter(h.event_type for h in await app.store.history(rid) if h.outcome == "applied")
        assert applied == {
            "registration.started": 1,
            "card.info_read": 1,
            "registration.confirmed": 1,
            "card.signature_submitted": 1,
            "verification.completed": 1,
            "registration.complete_requested": 1,
        }, rid
    assert await dead_letters(app) == 0, "nothing dead-lettered"
    feed = await app.store.feed("facility-1", 0, 10_000)
    assert Counter(e.event_type for e in feed)["registration.activated"] == 2 * PER_PHASE
    await until(lambda: _backlog_empty(app), 30)


async def _all(app: App, rids: list[str], state: State) -> bool:
    return (await states(app, rids)) == Counter({state: len(rids)})


async def _backlog_empty(app: App) -> bool:
    return await app.store.outbox_backlog() == 0


async def dead_letters(app: App) -> int:
    take = getattr(app.bus, "take_dead_letters", None)
    if take is None:  # the in-process bus keeps them in the store
        return await app.store.dead_letter_count()
    return sum([len(await take(queue)) for queue in QUEUES])
