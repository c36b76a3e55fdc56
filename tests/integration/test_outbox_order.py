"""A registration's messages leave in commit order, whichever worker committed them and whatever
stopped the one before: a refusal seen by another worker, a worker killed or restarted with its
lease still running, a batch cut short because the bus looked down, a hold that outlasts what the
committing worker remembers. Two relays share one SQLite store, as two `honnin run` processes
share one file; each commit is handed to the direct path as the orchestrator does it (only when
the store says the commit took its lease), and every message must be published once, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.bus.inprocess import InProcessBus
from adapters.clock import FakeClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from orchestrator.errors import BusUnavailableError
from orchestrator.ports import BusMessage, Commit, OutboxLease, OutboxMessage
from orchestrator.relay import OutboxRelay
from tests import factory
from tests.contract.buses import eventually
from tests.integration.harness import settle, start
from tests.integration.test_outbound_isolation import NOW, RefusingBus, outboxed


class Bus(RefusingBus):
    """Refuses by registration or by message id; `slow` ids take 50 ms to be confirmed."""

    def __init__(self) -> None:
        super().__init__()
        self.slow: set[str] = set()

    async def publish(self, message: BusMessage) -> None:
        if message.message_id in self.slow:
            await asyncio.sleep(0.05)
        if message.message_id in self.refuse:
            self.asked.append(message.message_id)
            raise BusUnavailableError("queue is full")
        await super().publish(message)

    def sent(self, registration_id: str) -> list[str]:
        return [m.message_id for m in self.published if m.headers["registration_id"] == registration_id]


@pytest.fixture
async def store(tmp_path: Path, sealer: Sealer) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "order.db", sealer)
    yield opened
    await opened.close()


@pytest.fixture
async def bus() -> Bus:
    opened = Bus()
    await opened.declare_queue("verifier", ["verification.requested"])
    return opened


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Event]:
    """The relay's own loop, as a worker runs it; the event wakes it as a commit does."""
    wake = asyncio.Event()
    task = asyncio.create_task(relay.run(wake))
    try:
        yield wake
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def committed(store: SqliteStore, relay: OutboxRelay, commit: Commit) -> bool:
    """As the orchestrator commits on a worker whose relay runs: leased, handed over if taken;
    whether the direct path took the messages."""
    result = await store.commit(replace(commit, lease=relay.lease()))
    return result.leased and relay.hand_over(commit.outbox, result.behind)


async def test_a_refusal_on_one_worker_holds_back_the_next_commit_on_another(
    store: SqliteStore, bus: Bus
) -> None:
    clock = FakeClock(NOW)
    a = OutboxRelay(store, bus, clock, worker="a", retry_seconds=5)
    b = OutboxRelay(store, bus, clock, worker="b", retry_seconds=5)
    await committed(store, a, outboxed("reg-order-001", 1, ["m1"]))
    bus.refuse = {"m1"}
    assert await a.relay_direct() == 0
    bus.refuse = set()
    assert not await committed(store, b, outboxed("reg-order-001", 2, ["m2"])), "m1 is unsent"
    assert await b.relay_direct() == 0
    assert await b.relay_once() == 0, "m2 waits behind the held m1"
    clock.advance(timedelta(seconds=6))
    assert await b.relay_once() == 2
    assert bus.sent("reg-order-001") == ["m1", "m2"]
    assert await store.outbox_backlog() == 0


async def test_a_killed_workers_running_lease_holds_back_what_the_other_commits_next(
    store: SqliteStore, bus: Bus
) -> None:
    clock = FakeClock(NOW)
    killed = OutboxRelay(store, bus, clock, worker="killed", lease_seconds=30)
    other = OutboxRelay(store, bus, clock, worker="other")
    await committed(store, killed, outboxed("reg-order-001", 1, ["m1"]))  # then the process dies
    assert not await committed(store, other, outboxed("reg-order-001", 2, ["m2"]))
    await committed(store, other, outboxed("reg-order-002", 3, ["n1"]))
    await other.relay_direct()
    await other.relay_once()
    assert bus.sent("reg-order-001") == [], "nothing of it before m1"
    assert bus.sent("reg-order-002") == ["n1"], "another registration goes on"
    clock.advance(timedelta(seconds=31))
    assert await other.relay_once() == 2
    assert bus.sent("reg-order-001") == ["m1", "m2"]


async def test_a_restarted_worker_sends_what_it_held_before_what_it_commits_first(
    store: SqliteStore, bus: Bus
) -> None:
    clock = FakeClock(NOW)
    before = OutboxRelay(store, bus, clock, worker="w")
    await committed(store, before, outboxed("reg-order-001", 1, ["m1"]))  # stopped before it sent
    after = OutboxRelay(store, bus, clock, worker="w")  # the same HONNIN_WORKER_ID, restarted
    assert not await committed(store, after, outboxed("reg-order-001", 2, ["m2"]))
    async with running(after) as wake:
        wake.set()
        await eventually(lambda: len(bus.sent("reg-order-001")) == 2)
    assert bus.sent("reg-order-001") == ["m1", "m2"]


async def test_a_batch_cut_short_by_a_bus_that_looks_down_keeps_each_registrations_order(
    store: SqliteStore, bus: Bus
) -> None:
    clock = FakeClock(NOW)
    relay = OutboxRelay(store, bus, clock, worker="w", failures_in_a_row=3)
    commits = [
        ("reg-order-001", ["r1", "r2"]),
        ("reg-down-0001", ["x1"]),
        ("reg-down-0002", ["y1"]),
        ("reg-down-0003", ["z1"]),
        ("reg-order-002", ["s1", "s2"]),
    ]
    for n, (rid, ids) in enumerate(commits):
        await committed(store, relay, outboxed(rid, n, ids))
    bus.refuse = {"x1", "y1", "z1"}
    bus.slow = {"r1"}  # r1's confirm comes after the three refusals: the batch stops behind it
    await relay.relay_direct()
    assert bus.sent("reg-order-001") == ["r1"]
    bus.refuse, bus.slow = set(), set()
    assert not await committed(store, relay, outboxed("reg-order-001", 9, ["r3"])), "r2 is unsent"
    await relay.relay_direct()
    clock.advance(timedelta(seconds=6))
    while await relay.relay_once():
        pass
    assert bus.sent("reg-order-001") == ["r1", "r2", "r3"]
    assert bus.sent("reg-order-002") == ["s1", "s2"]
    assert await store.outbox_backlog() == 0


async def test_handed_over_messages_behind_a_refused_one_wait_for_it_past_the_batch(
    store: SqliteStore, bus: Bus
) -> None:
    """A commit's messages that span two direct batches: the first refused, the rest must not
    go out in the next batch ahead of it, however soon that batch comes."""
    clock = FakeClock(NOW)
    relay = OutboxRelay(store, bus, clock, worker="w", batch=2, retry_seconds=5)
    await committed(store, relay, outboxed("reg-order-001", 1, ["m1", "m2", "m3", "m4"]))
    bus.refuse = {"m2"}
    await relay.relay_direct()
    bus.refuse = set()
    await relay.relay_direct()
    await relay.relay_once()
    assert bus.sent("reg-order-001") == ["m1"], "m3 and m4 wait behind the held m2"
    clock.advance(timedelta(seconds=6))
    while await relay.relay_once():  # two at a time: the batch
        pass
    assert bus.sent("reg-order-001") == ["m1", "m2", "m3", "m4"]
    assert await store.outbox_backlog() == 0


class Recorder:
    """A direct path that takes what it is handed and publishes nothing (a worker about to die)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.handed: list[str] = []

    def lease(self) -> OutboxLease:
        return OutboxLease("recorder", self.clock.now() + timedelta(seconds=30))

    def hand_over(self, messages: Sequence[OutboxMessage], behind: Sequence[str]) -> bool:
        if behind:
            return False  # it holds nothing on a direct path: what is ahead is not with it
        self.handed += [m.routing_key for m in messages]
        return True


async def test_the_orchestrator_hands_over_only_what_took_its_lease(tmp_path: Path) -> None:
    """The challenge is handed to a direct path that has not sent it yet; the next steps' messages
    (the verification request, the verdict) are then written free, not handed over, and no other
    relay takes them before the challenge has gone."""
    clock = FakeClock(NOW)
    app = await start(tmp_path, clock, facility_queue=True)  # facility events go out on the bus too
    try:
        recorder = Recorder(clock)
        app.orchestrator.direct = recorder
        for event in factory.flow("reg-order-001", upto=5):  # … signature, verification.completed
            await app.orchestrator.handle(event)
        assert recorder.handed == ["registration.challenge_issued"]
        assert await app.store.claim_outbox("another", clock.now(), 30, 10) == []
        clock.advance(timedelta(seconds=31))  # the recorder's lease runs out: it never sent
        claimed = await app.store.claim_outbox("another", clock.now(), 30, 10)
        assert [m.routing_key for m in claimed] == [
            "registration.challenge_issued",
            "verification.requested",
            "registration.signature_verified",
        ]
    finally:
        await app.close()


async def test_a_batch_stopped_before_a_registration_sends_the_rest_of_it_to_the_sweep(
    store: SqliteStore, bus: Bus
) -> None:
    """The bus looks down before a chain starts: its messages beyond the batch are still handed
    over, and must not go in the next direct batch ahead of the ones the stop left behind."""
    clock = FakeClock(NOW)
    relay = OutboxRelay(store, bus, clock, worker="w", batch=3, failures_in_a_row=2)
    await committed(store, relay, outboxed("reg-down-0001", 1, ["x1"]))
    await committed(store, relay, outboxed("reg-down-0002", 2, ["y1"]))
    await committed(store, relay, outboxed("reg-order-001", 3, ["r1", "r2", "r3"]))
    bus.refuse = {"x1", "y1"}
    await relay.relay_direct()  # x1 and y1 refused: the batch stops before r1
    bus.refuse = set()
    while relay._fresh:
        await relay.relay_direct()
    clock.advance(timedelta(seconds=6))
    while await relay.relay_once():
        pass
    assert bus.sent("reg-order-001") == ["r1", "r2", "r3"]
    assert await store.outbox_backlog() == 0


async def test_a_commit_behind_its_own_direct_message_follows_it_directly(
    store: SqliteStore, bus: Bus
) -> None:
    """Steps that come back to back on one worker: the next commit's message follows the one still
    on this worker's direct path (not yet marked sent) without waiting for a sweep."""
    clock = FakeClock(NOW)
    relay = OutboxRelay(store, bus, clock, worker="w", idle_seconds=3600)
    assert await committed(store, relay, outboxed("reg-order-001", 1, ["m1"]))
    assert await committed(store, relay, outboxed("reg-order-001", 2, ["m2"])), "m1 is ahead, on this path"
    assert await relay.relay_direct() == 2
    assert bus.sent("reg-order-001") == ["m1", "m2"]
    assert await committed(store, relay, outboxed("reg-order-001", 3, ["m3"])), "nothing ahead now"
    other = OutboxRelay(store, bus, clock, worker="other")
    assert not await committed(store, other, outboxed("reg-order-001", 4, ["m4"])), "m3 is w's"


async def test_a_commit_behind_what_the_sweep_holds_waits_for_the_sweep_which_comes_at_once(
    store: SqliteStore, bus: Bus
) -> None:
    """The bus stopped a batch and left r2 leased to this worker, off the direct path; r3's commit
    may not overtake it, and the relay does not wait for its next timed sweep (an hour here)."""
    clock = FakeClock(NOW)
    relay = OutboxRelay(store, bus, clock, worker="w", failures_in_a_row=3, idle_seconds=3600)
    async with running(relay) as wake:
        await asyncio.sleep(0.05)  # its first sweep at start, then it sleeps
        commits = [("reg-order-001", ["r1", "r2"])] + [(f"reg-down-000{i}", [f"x{i}"]) for i in range(3)]
        for n, (rid, ids) in enumerate(commits):
            await committed(store, relay, outboxed(rid, n, ids))
        bus.refuse, bus.slow = {"x0", "x1", "x2"}, {"r1"}  # the batch stops behind r1
        wake.set()
        await eventually(lambda: bus.sent("reg-order-001") == ["r1"] and not relay._piped)
        bus.refuse, bus.slow = set(), set()
        assert not await committed(store, relay, outboxed("reg-order-001", 9, ["r3"])), "r2 is with the sweep"
        wake.set()
        await eventually(lambda: len(bus.sent("reg-order-001")) == 3)
    assert bus.sent("reg-order-001") == ["r1", "r2", "r3"]


async def test_back_to_back_steps_with_facility_messages_all_take_the_direct_path(tmp_path: Path) -> None:
    """With facility events on the bus four of a registration's six steps write a message, and a
    step often commits before the one ahead of it was marked sent: each still follows it directly,
    none waits for a sweep, and each registration's messages go out in commit order."""
    clock = FakeClock(NOW)
    bus = InProcessBus(record=True, redelivery_delay=0.01)
    app = await start(tmp_path, clock, bus=bus, facility_queue=True, relay_idle_seconds=3600)
    taken: list[bool] = []
    relay = app.runtime.relay
    real_hand_over = relay.hand_over

    def hand_over(messages: Sequence[OutboxMessage], behind: Sequence[str]) -> bool:
        taken.append(real_hand_over(messages, behind))
        return taken[-1]

    relay.hand_over = hand_over  # type: ignore[method-assign]
    order: dict[str, list[str]] = {}
    try:

        async def registration(i: int) -> None:
            for event in factory.flow(f"reg-order-{i:03d}", upto=6):
                await app.orchestrator.handle(event)

        await asyncio.gather(*(registration(i) for i in range(20)))
        await settle(app)
        for message in bus.published:  # what the relay published, in the order it did
            order.setdefault(message.headers["registration_id"], []).append(message.routing_key)
    finally:
        await app.close()
    assert len(taken) == 80
    assert all(taken), f"{taken.count(False)} of 80 waited for a sweep"
    assert len(order) == 20
    for keys in order.values():
        assert keys == [
            "registration.challenge_issued",
            "verification.requested",
            "registration.signature_verified",
            "registration.activated",
        ]


async def test_a_stopping_worker_gives_its_leases_back(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    app = await start(tmp_path, clock, relay_idle_seconds=3600)
    try:
        await asyncio.sleep(0.05)  # its sweep at start has run: none until the stop
        worker = app.runtime.relay.lease().worker
        lease = OutboxLease(worker, clock.now() + timedelta(seconds=30))
        await app.store.commit(replace(outboxed("reg-order-001", 1, ["m1"]), lease=lease))  # not sent
        assert await app.store.claim_outbox("another", clock.now(), 30, 10) == []
        with capture_logs() as logs:
            await app.runtime.stop()
        said = [(line["event"], line.get("messages")) for line in logs]
        assert said == [("outbox.released", 1), ("worker.stopped", None)], "what an operator reads"
        claimed = await app.store.claim_outbox("another", clock.now(), 30, 10)
        assert [m.message_id for m in claimed] == ["m1"], "at once, not after the lease"
    finally:
        await app.close()


async def test_a_lease_taken_by_a_commit_that_ends_after_the_stop_is_given_back_at_close(
    tmp_path: Path, sealer: Sealer
) -> None:
    """A step's commit took the lease just before the worker stopped and lands after the stop's
    release (a MongoDB commit awaits several times): closing the worker, after its bus, gives it
    back too."""
    clock = FakeClock(NOW)
    app = await start(tmp_path, clock, relay_idle_seconds=3600)
    await asyncio.sleep(0.05)  # its sweep at start has run
    worker = app.runtime.relay.lease().worker
    await app.runtime.stop()
    late = replace(
        outboxed("reg-order-001", 1, ["m1"]), lease=OutboxLease(worker, clock.now() + timedelta(seconds=30))
    )
    await app.store.commit(late)
    await app.close()
    reopened = await SqliteStore.open(tmp_path / "honnin.db", sealer)
    try:
        claimed = await reopened.claim_outbox("another", clock.now(), 30, 10)
        assert [m.message_id for m in claimed] == ["m1"]
    finally:
        await reopened.close()
