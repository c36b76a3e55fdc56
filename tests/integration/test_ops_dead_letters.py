"""Issue 17's must-show: a poison message dead-lettered, the fix applied, the message replayed by
its dead-letter id through `/ops/v1`, and processed exactly once — on the embedded bus (its dead
letters kept in the store) and on RabbitMQ (`<queue>.dead`, collected into the store).

The poison: a registration a newer version wrote (its document at schema_version 3) meets this
worker, which moves it to the quarantine; the next event for it cannot be applied and is
dead-lettered at once. The fix: the code is upgraded (it knows version 3 now) and the operator
releases the quarantine entry. The replay then applies the event, once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.clock import SystemClock
from adapters.http.common import serve as serve_http
from honnin.bootstrap import App, bootstrap
from honnin.http import build_http
from orchestrator import versions
from orchestrator.model import State
from orchestrator.operations_views import Actor
from orchestrator.topology import ORCHESTRATOR_QUEUE
from tests import factory
from tests.contract.buses import RABBITMQ_URL
from tests.contract.stores import Raw
from tests.integration.harness import KEY, publish, settings

OPERATOR = "carol:carol-operator-token-01"
TOKEN = {"Authorization": "Bearer carol-operator-token-01"}
RID = "reg-poison-0001"


@pytest.fixture(params=["inprocess", pytest.param("rabbitmq", marks=pytest.mark.integration)])
async def worker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    if request.param == "rabbitmq":
        from tests.contract.buses import connect_rabbitmq

        probe = await connect_rabbitmq()  # skips locally, fails under CI=true, without a broker
        await probe.close()
    chosen = settings(
        tmp_path / "data",
        data_key=KEY,
        operator_tokens=OPERATOR,
        bus=request.param,
        rabbitmq_url=RABBITMQ_URL,
        rabbitmq_queue_prefix=f"ops-{uuid.uuid4().hex[:8]}.",
        redelivery_cap_seconds=1.0,
    )
    app = await bootstrap(chosen, clock=SystemClock())
    await app.runtime.start()
    try:
        yield app
    finally:
        if request.param == "rabbitmq":
            await app.bus.delete_topology()  # type: ignore[attr-defined]
        await app.close()


async def until(check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.1)


async def applied(app: App, event_type: str) -> int:
    return sum(
        1 for h in await app.store.history(RID) if h.event_type == event_type and h.outcome == "applied"
    )


async def written_by_newer_code(app: App) -> None:
    stored = await app.store.load(RID)
    assert stored is not None
    newer = {"schema_version": 3, **stored.registration.model_dump(mode="json"), "field_of_v3": True}
    sealed = app.store._sealer.seal(json.dumps(newer).encode(), f"registration:{RID}")  # type: ignore[attr-defined]
    await Raw(app.store).set_blob("registration", RID, sealed)


async def dead_lettered(app: App) -> int:
    """The one dead letter's id, once the store has it (RabbitMQ's: collected from `.dead`)."""
    actor = Actor("carol", "cli")

    async def kept() -> bool:
        await app.operations.collect(actor, [ORCHESTRATOR_QUEUE])
        return await app.store.dead_letter_count() == 1

    await until(kept)
    [letter] = await app.operations.dead_letters()
    return letter.id


async def test_a_poison_message_replayed_by_its_dead_letter_id_after_the_fix_is_processed_once(
    worker: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = worker
    payload = {**factory.PAYLOADS["registration.started"], "applicant": factory.APPLICANT}
    await publish(app, factory.event("registration.started", RID, payload=payload))
    await until(lambda: _exists(app))
    await written_by_newer_code(app)

    await publish(app, factory.event("card.info_read", RID))
    letter_id = await dead_lettered(app)
    [letter] = await app.operations.dead_letters()
    assert (letter.queue, letter.routing_key) == (ORCHESTRATOR_QUEUE, "card.info_read")
    assert letter.reason.startswith("quarantined: registration reg-poison-0001 is in the quarantine")
    assert letter.first_seen_at is not None
    assert await applied(app, "card.info_read") == 0

    monkeypatch.setattr(versions, "REGISTRATION_VERSION", 3)  # the fix: code that knows version 3
    monkeypatch.setitem(versions.REGISTRATION_STEPS, 2, lambda doc: doc)  # type: ignore[index]
    [entry] = await app.store.list_quarantine("registration")
    assert await app.store.release_quarantined(entry.id)

    async with serve_http(build_http(app)) as server, aiohttp.ClientSession() as http:
        dry = await _replay(http, server.url, letter_id, dry_run=True)
        assert [(i["target"], i["outcome"]) for i in dry["items"]] == [(str(letter_id), "would_replay")]
        assert await app.store.dead_letter_count() == 1, "a dry run leaves it"
        done = await _replay(http, server.url, letter_id, dry_run=False)
        expected = "replayed" if app.settings.bus == "rabbitmq" else "handled"
        assert [(i["target"], i["outcome"]) for i in done["items"]] == [(str(letter_id), expected)]
        await until(lambda: _in(app, State.CARD_READ))
        again = await _replay(http, server.url, letter_id, dry_run=False)
        assert [i["outcome"] for i in again["items"]] == ["not_found"], "forgotten once replayed"

    await asyncio.sleep(1.0)  # a second delivery, were there one, would land meanwhile
    assert await applied(app, "card.info_read") == 1, "processed exactly once"
    assert await app.store.dead_letter_count() == 0
    assert await app.operations.collect(Actor("carol", "cli"), [ORCHESTRATOR_QUEUE]) == 0
    actions = [(r.action, r.dry_run, r.affected) for r in await app.operations.audit()]
    assert ("replay", False, 1) in actions
    assert ("replay", True, 1) in actions


async def _replay(http: aiohttp.ClientSession, url: str, letter_id: int, *, dry_run: bool) -> dict[str, Any]:
    body = {"dead_letter_ids": [letter_id], "dry_run": dry_run}
    async with http.post(url + "/ops/v1/replays", json=body, headers=TOKEN) as answer:
        assert answer.status == 200, await answer.text()
        return dict(await answer.json())


async def _exists(app: App) -> bool:
    return await app.store.load(RID) is not None


async def _in(app: App, state: State) -> bool:
    stored = await app.store.load(RID)
    return stored is not None and stored.registration.state is state
