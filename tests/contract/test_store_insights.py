"""The store's counts for metrics and the console, on every store: the outbox's lag and history by
the hour (the console's chart)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from orchestrator.ports import Store
from tests.contract.test_store_contract import NOW, commit, registration


async def test_the_oldest_unsent_outbox_message_is_the_outbox_s_lag(store: Store) -> None:
    assert await store.outbox_oldest_unsent() is None
    await store.commit(commit("e1", registration("reg-00000001"), 0, rid="reg-00000001", outbox=("m1",)))
    later = commit(
        "e2", registration("reg-00000002"), 0, rid="reg-00000002", outbox=("m2", "m3"), at_offset=90
    )
    await store.commit(later)
    assert await store.outbox_oldest_unsent() == NOW
    await store.mark_sent(["m1"], NOW + timedelta(seconds=100))
    assert await store.outbox_oldest_unsent() == NOW + timedelta(seconds=90)
    await store.mark_sent(["m2", "m3"], NOW + timedelta(seconds=100))
    assert await store.outbox_oldest_unsent() is None


async def test_history_is_counted_by_hour_outcome_states_and_code(store: Store) -> None:
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    offsets = {"a": 0, "b": 60, "c": 3600, "d": 7200 + 59 * 60}
    for n, (rid_tail, offset) in enumerate(offsets.items()):
        rid = f"reg-0000000{rid_tail}"
        at = int((hour - NOW).total_seconds()) + offset
        await store.commit(commit(f"s{n}", registration(rid), 0, rid=rid, at_offset=at))
        refused = commit(f"r{n}", None, 1, rid=rid, outcome="rejected", at_offset=at + 1)
        await store.commit(refused)
    decided = commit(
        "v1", None, 1, rid="reg-0000000a", outcome="rejected", at_offset=int((hour - NOW).total_seconds()) + 5
    )
    decided = dataclasses.replace(decided, history=dataclasses.replace(decided.history, code="23"))
    await store.commit(decided)

    counts = await store.history_counts(hour, hour + timedelta(hours=3))
    got = sorted((c.hour, c.outcome, c.from_state, c.to_state, c.code, c.count) for c in counts)
    h = [hour + timedelta(hours=i) for i in range(3)]
    assert got == [
        (h[0], "applied", "new", "info_entered", None, 2),
        (h[0], "rejected", "new", "new", "23", 1),
        (h[0], "rejected", "new", "new", "event_not_accepted", 2),
        (h[1], "applied", "new", "info_entered", None, 1),
        (h[1], "rejected", "new", "new", "event_not_accepted", 1),
        (h[2], "applied", "new", "info_entered", None, 1),
        (h[2], "rejected", "new", "new", "event_not_accepted", 1),
    ]
    assert all(c.hour.tzinfo is not None and c.hour.utcoffset() == timedelta(0) for c in counts)
    window = await store.history_counts(h[1], h[2])
    assert sum(c.count for c in window) == 2, "since is inclusive, until exclusive"
    assert await store.history_counts(h[2] + timedelta(hours=1), h[2] + timedelta(hours=2)) == []
