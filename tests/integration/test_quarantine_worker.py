"""A running worker meets rows it cannot decode — one tampered, one written by newer code — in every
place it reads: the sweeper (both are due), the consumer, the relay, the feed. It moves them aside
and keeps serving everything else; nothing stops, nothing is retried forever."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from adapters.clock import FakeClock
from adapters.store.codec import Sealer, stamp
from adapters.store.documents import registration_plain
from honnin.bootstrap import App
from orchestrator.model import State
from tests import factory
from tests.contract.buses import eventually
from tests.contract.stores import Raw
from tests.integration.harness import KEY, publish, settle, start

GOOD, TAMPERED, NEWER = "reg-good-000001", "reg-tampered-01", "reg-newer-00001"


async def started(app: App, *rids: str) -> None:
    for rid in rids:
        await publish(app, factory.event("registration.started", rid))
    await settle(app)


async def quarantined(app: App, count: int) -> bool:
    return await app.store.quarantine_count() >= count


async def make_due(app: App, rid: str, clock: FakeClock) -> None:
    """Its next deadline in the past, as if it expired while the worker was down."""
    async with app.store._transaction() as db:  # type: ignore[attr-defined]
        await db.execute(
            "UPDATE registrations SET next_deadline_at = ? WHERE id = ?",
            (stamp(clock.now() - timedelta(minutes=1)), rid),
        )


async def test_a_running_worker_moves_bad_rows_aside_and_keeps_serving_the_rest(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    sealer = Sealer(__import__("base64").b64decode(KEY))
    raw = Raw(app.store)
    try:
        await started(app, GOOD, TAMPERED, NEWER)
        await raw.tamper("registration", TAMPERED)
        stored = await app.store.load(NEWER)
        assert stored is not None
        newer = json.loads(registration_plain(stored.registration)) | {"schema_version": 3}
        await raw.set_blob(
            "registration", NEWER, sealer.seal(json.dumps(newer).encode(), f"registration:{NEWER}")
        )
        for rid in (TAMPERED, NEWER):
            await make_due(app, rid, clock)

        await eventually(lambda: quarantined(app, 2))  # the sweeper runs every 20 ms: it meets both
        kinds = {(e.kind, e.key): e.reason for e in await app.store.list_quarantine()}
        assert set(kinds) == {("registration", TAMPERED), ("registration", NEWER)}
        assert "wrong key or tampered" in kinds[("registration", TAMPERED)]
        assert "schema_version 3 is newer" in kinds[("registration", NEWER)]
        assert all(not task.done() for task in app.runtime._tasks), "relay, sweeper, delivery still run"

        for kind in ("card.info_read", "registration.confirmed"):
            await publish(app, factory.event(kind, GOOD))
        await publish(app, factory.event("card.info_read", TAMPERED))
        await started(app, "reg-later-00001")
        good = await app.store.load(GOOD)
        assert good is not None
        assert good.registration.state is State.CONFIRMED
        assert await app.store.load("reg-later-00001") is not None
        [letter] = app.bus.dead_letters  # type: ignore[attr-defined]
        assert (letter.message.routing_key, letter.attempts) == ("card.info_read", 1), "not retried forever"
        assert letter.reason.startswith("quarantined: registration reg-tampered-01 is in the quarantine")
        assert await app.store.quarantine_count() == 2, "a second read adds no entry"

        await raw.tamper("feed", (await app.store.feed("facility-1", 0, 10))[0].event_id)
        await publish(app, factory.event("registration.cancel_requested", GOOD))
        await settle(app)
        fed = await app.store.feed("facility-1", 0, 10)
        assert [e.event_type for e in fed] == ["registration.cancelled"], "the feed reads on past it"
        assert await app.store.quarantine_count("feed") == 1
        assert all(not task.done() for task in app.runtime._tasks)
    finally:
        await app.close()
