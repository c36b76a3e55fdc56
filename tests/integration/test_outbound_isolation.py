"""No queue nobody reads can stall delivery: with the facility side absent (the embedded default) or
bounded to a tiny length and full, verification requests keep flowing and registrations activate;
a destination that refuses a publish holds back only its own registration's later messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.bus.inprocess import InProcessBus
from adapters.ca_revocation.devca import DevCA, Person
from adapters.clock import FakeClock
from adapters.store.sqlite import SqliteStore
from honnin.bootstrap import App
from honnin.emulator import CardEmulator, LocalFeed
from orchestrator.errors import BusUnavailableError
from orchestrator.ports import BusMessage, Commit, HistoryEntry, OutboxMessage
from orchestrator.relay import OutboxRelay
from orchestrator.topology import FACILITY_QUEUE, QUEUES
from tests.integration.harness import settle, start

NOW = datetime.now(UTC).replace(microsecond=0)
REGISTRATIONS = 40
BOUND = 100  # below the 3 facility events × 40: a facility queue nobody reads would fill up


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


async def verifying(tmp: Path, ca: DevCA, clock: FakeClock, bus: InProcessBus, **changes: object) -> App:
    (root := tmp / "root.der").write_bytes(ca.der)
    (crl := tmp / "crl.der").write_bytes(ca.crl(this_update=NOW - timedelta(minutes=1)))
    settings = {"verifier_enabled": True, "trust_anchor_files": [root], "crl_files": [crl]}
    return await start(tmp / "data", clock, bus=bus, **(settings | changes))


async def activate_all(app: App, ca: DevCA, clock: FakeClock) -> CardEmulator:
    card = ca.issue(Person(), now=NOW)
    emulator = CardEmulator(app.bus, card, Person(), clock, LocalFeed(app.outbound, "facility-emu"))
    await emulator.listen()
    try:
        for i in range(REGISTRATIONS):
            await emulator.register(f"reg-tiny-{i:05d}")
            if i % 10 == 9:  # the steps' own queue has the bound too: let it drain
                await app.bus.join()  # type: ignore[attr-defined]
        assert await emulator.wait_activated(within=60) == set()
    finally:
        await emulator.close()
    await settle(app)
    return emulator


async def test_with_no_facility_queue_every_registration_activates_and_nothing_piles_up(
    tmp_path: Path, ca: DevCA
) -> None:
    clock = FakeClock(NOW)
    bus = InProcessBus(max_length=BOUND, redelivery_delay=0.01)  # a bound on every queue there is
    app = await verifying(tmp_path, ca, clock, bus)
    try:
        await activate_all(app, ca, clock)
        assert sorted(bus.queues()) == sorted(QUEUES), "no facility queue on the embedded default"
        assert await app.store.outbox_backlog() == 0
        assert bus.dead_letters == []
    finally:
        await app.close()


async def test_a_tiny_full_facility_queue_drops_its_oldest_and_stalls_nothing(
    tmp_path: Path, ca: DevCA
) -> None:
    clock = FakeClock(NOW)
    bus = InProcessBus(redelivery_delay=0.01)
    app = await verifying(tmp_path, ca, clock, bus, facility_queue=True, facility_queue_max_length=2)
    try:
        await activate_all(app, ca, clock)  # nobody consumes honnin.facility
        assert bus.depth(FACILITY_QUEUE) == 2
        assert bus.dropped(FACILITY_QUEUE) == REGISTRATIONS * 3 - 2  # challenge, verified, activated
        assert await app.store.outbox_backlog() == 0
        kept = [m.routing_key for m in await bus.drain(FACILITY_QUEUE)]
        assert kept == ["registration.activated", "registration.activated"], "the newest stay"
    finally:
        await app.close()


class RefusingBus(InProcessBus):
    """Refuses the publishes of the registrations in `refuse` (a destination that is full) and
    records every publish it was asked for."""

    def __init__(self) -> None:
        super().__init__(record=True)
        self.refuse: set[str] = set()
        self.asked: list[str] = []

    async def publish(self, message: BusMessage) -> None:
        self.asked.append(message.message_id)
        if message.headers.get("registration_id") in self.refuse:
            raise BusUnavailableError("queue is full")
        await super().publish(message)


def outboxed(rid: str, n: int, ids: list[str]) -> Commit:
    at = NOW + timedelta(seconds=n)
    history = HistoryEntry(
        rid, f"cause-{rid}-{n}", "registration.started", "web", at, at, "applied", "new", "new"
    )
    messages = [
        OutboxMessage(m, "verification.requested", rid, b'{"event_id": "%s"}' % m.encode(), at) for m in ids
    ]
    return Commit(f"cause-{rid}-{n}", rid, 0, None, history, messages)


async def test_a_refused_publish_holds_back_only_its_own_registration(tmp_path: Path, sealer) -> None:
    store = await SqliteStore.open(tmp_path / "relay.db", sealer)
    bus = RefusingBus()
    await bus.declare_queue("verifier", ["verification.requested"])
    clock = FakeClock(NOW)
    relay = OutboxRelay(store, bus, clock, worker="w", batch=5, retry_seconds=5)
    try:
        for n, (rid, ids) in enumerate(
            [("reg-stuck-001", ["x1", "x2"]), ("reg-fine-0001", ["y1"]), ("reg-stuck-001", ["x3"])]
        ):
            await store.commit(outboxed(rid, n, ids))
        await store.commit(outboxed("reg-fine-0002", 9, ["z1"]))
        bus.refuse = {"reg-stuck-001"}
        assert await relay.relay_once() == 2
        assert bus.asked == ["x1", "y1", "z1"], "x2 and x3 wait behind x1; the others go on"
        assert await relay.relay_once() == 0
        assert bus.asked == ["x1", "y1", "z1"], "the refused registration waits out its deferral"
        await store.commit(outboxed("reg-stuck-001", 10, ["x4"]))
        await store.commit(outboxed("reg-fine-0003", 11, ["w1"]))
        assert await relay.relay_once() == 1
        assert bus.asked[-1] == "w1", "a later message of the held registration is not claimed before x1"
        bus.refuse = set()
        clock.advance(timedelta(seconds=6))
        assert await relay.relay_once() == 4
        assert bus.asked[-4:] == ["x1", "x2", "x3", "x4"], "then in order"
        assert await store.outbox_backlog() == 0
    finally:
        await store.close()


async def test_more_refused_registrations_than_a_batch_do_not_stall_the_rest(tmp_path: Path, sealer) -> None:
    store = await SqliteStore.open(tmp_path / "relay.db", sealer)
    bus = RefusingBus()
    await bus.declare_queue("verifier", ["verification.requested"])
    relay = OutboxRelay(store, bus, FakeClock(NOW), worker="w", batch=3, failures_in_a_row=100)
    try:
        stuck = [f"reg-stuck-{i:03d}" for i in range(10)]
        for n, rid in enumerate(stuck):
            await store.commit(outboxed(rid, n, [f"m-{rid}"]))
        await store.commit(outboxed("reg-fine-0001", 99, ["fine"]))
        bus.refuse = set(stuck)
        sent = [await relay.relay_once() for _ in range(4)]
        assert sum(sent) == 1
        assert "fine" in [m.message_id for m in bus.published]
    finally:
        await store.close()
