"""Issue 17's must-show: registrations parked while the revocation source (the dev CA's OCSP
responder) is down, replayed by result code through `/ops/v1` once it is back, each activated
exactly once; a dry run first, which changes nothing but is audited; the replay's rate observed;
and replaying again — by code or by id, activated ones included — changes nothing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.ca_revocation.responder import RunningResponder, serve
from adapters.clock import FakeClock
from adapters.http.common import serve as serve_http
from honnin.bootstrap import App
from honnin.http import build_http
from orchestrator.model import State
from tests import factory
from tests.integration.harness import publish, settle
from tests.integration.test_verification_flow import NOW, World, sign_with, up_to_confirmed, verifying

OPERATOR = "alice:alice-operator-token-0001"
FACILITY = "facility-1:token-of-facility-one-000"
PARKED = [f"reg-parked-{n:03d}" for n in range(5)]
DONE = "reg-active-001"


@dataclass
class Ops:
    app: App
    responder: RunningResponder
    card: Card
    other: Card  # activated before the outage (a card of its own: OCSP answers are cached)
    http: aiohttp.ClientSession
    url: str

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.url + path, json=body, headers=_bearer(OPERATOR)) as answer:
            return answer.status, await answer.json()

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(self.url + path, headers=_bearer(OPERATOR)) as answer:
            assert answer.status == 200, await answer.text()
            return dict(await answer.json())


@pytest.fixture(scope="module")
def world_ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture
def world(world_ca: DevCA, tmp_path: Path) -> World:
    return World(world_ca, world_ca.issue(Person(), now=NOW), tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def _bearer(pair: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + pair.split(":", 1)[1]}


@pytest.fixture
async def ops(world: World, clock: FakeClock) -> AsyncIterator[Ops]:
    async with serve(world.ca) as responder:
        other = world.ca.issue(Person(), key=world.good.key, now=NOW)
        responder.state.register(world.good.certificate)
        responder.state.register(other.certificate)
        app = await verifying(
            world,
            clock,
            revocation="ocsp",
            ocsp_url=f"{responder.url}/ocsp",
            verification_retry_limit=1,
            operator_tokens=OPERATOR,
            facility_tokens=FACILITY,
        )
        try:
            async with serve_http(build_http(app)) as server, aiohttp.ClientSession() as http:
                yield Ops(app, responder, world.good, other, http, server.url)
        finally:
            await app.close()


async def activate(app: App, rid: str) -> None:
    await publish(app, factory.event("registration.complete_requested", rid))
    await settle(app)


async def state_of(app: App, rid: str) -> State:
    stored = await app.store.load(rid)
    assert stored is not None
    return stored.registration.state


async def footprint(app: App) -> tuple[Counter[str], int, list[int]]:
    """What a no-op must leave as it was: states, feed length, history lengths."""
    rids = [*PARKED, DONE]
    states = Counter([(await state_of(app, rid)).value for rid in rids])
    feed = len(await app.store.feed("facility-1", 0, 10_000))
    return states, feed, [len(await app.store.history(rid)) for rid in rids]


async def park_all(ops: Ops, clock: FakeClock) -> None:
    app = ops.app
    await up_to_confirmed(app, DONE)
    await sign_with(app, DONE, ops.other)
    await activate(app, DONE)
    assert await state_of(app, DONE) is State.ACTIVATED
    ops.responder.state.down = True  # the revocation source goes away
    for rid in PARKED:
        await up_to_confirmed(app, rid)
        await sign_with(app, rid, ops.card)
    clock.advance(timedelta(minutes=5))  # the one retry is due: it fails too, and parks
    await app.runtime.sweeper.sweep_once()
    await settle(app)


async def test_parked_by_an_outage_replayed_by_code_once_it_is_back_each_activated_once(
    ops: Ops, clock: FakeClock
) -> None:
    app = ops.app
    await park_all(ops, clock)
    listed = await ops.get("/ops/v1/registrations?verification=parked&code=42")
    assert [r["registration_id"] for r in listed["items"]] == PARKED
    assert {(r["state"], r["retries"]) for r in listed["items"]} == {("confirmed", 1)}
    counts = await ops.get("/ops/v1/counts")
    assert counts["by_code"] == {"42": 5}
    assert counts["by_state"] == {"confirmed": 5, "activated": 1}
    shown = await ops.get(f"/ops/v1/registrations/{PARKED[0]}")
    assert [(d["outcome"], d["code"]) for d in shown["decisions"]] == [("retry_later", "42")] * 2
    assert shown["verification"]["status"] == "parked"

    before = await footprint(app)
    status, dry = await ops.post("/ops/v1/replays", {"code": "42", "dry_run": True})
    assert status == 200, dry
    assert [(i["target"], i["outcome"]) for i in dry["items"]] == [(rid, "would_replay") for rid in PARKED]
    assert (dry["dry_run"], dry["affected"]) == (True, 5)
    await settle(app)
    assert await footprint(app) == before, "a dry run changes nothing"

    ops.responder.state.down = False  # the source is back
    started = time.monotonic()
    status, done = await ops.post("/ops/v1/replays", {"code": "42", "dry_run": False, "rate": 10})
    elapsed = time.monotonic() - started
    assert status == 200, done
    assert [(i["target"], i["outcome"]) for i in done["items"]] == [(rid, "replayed") for rid in PARKED]
    assert (done["affected"], done["remaining"]) == (5, 0)
    assert elapsed >= 0.39, "five at 10 a second: four waits of a tenth of a second at least"
    await settle(app)
    for rid in PARKED:
        assert await state_of(app, rid) is State.SIGNATURE_VERIFIED
        await activate(app, rid)

    feed = await app.store.feed("facility-1", 0, 10_000)
    activations = Counter(e.registration_id for e in feed if e.event_type == "registration.activated")
    assert activations == Counter(dict.fromkeys([DONE, *PARKED], 1)), "each activated exactly once"

    after = await footprint(app)
    status, again = await ops.post("/ops/v1/replays", {"code": "42", "dry_run": False})
    assert (status, again["items"], again["affected"]) == (200, [], 0), "nothing is parked any more"
    status, by_id = await ops.post("/ops/v1/replays", {"registration_ids": [DONE, *PARKED], "dry_run": False})
    assert {i["outcome"] for i in by_id["items"]} == {"skipped"}
    assert all(i["detail"].startswith("event_not_accepted: activated") for i in by_id["items"])
    await settle(app)
    assert await footprint(app) == after, "replaying activated registrations changes nothing"

    audit = (await ops.get("/ops/v1/audit"))["items"]
    assert [(a["operator"], a["channel"], a["action"], a["dry_run"], a["affected"]) for a in audit] == [
        ("alice", "http", "replay", False, 0),
        ("alice", "http", "replay", False, 0),
        ("alice", "http", "replay", False, 5),
        ("alice", "http", "replay", True, 5),
    ]
    assert audit[-1]["parameters"] == {"code": "42", "targets": 5, "done": 5}


async def test_an_interrupted_replay_by_a_time_budget_goes_on_when_asked_again(
    ops: Ops, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP API replays for a bounded time: what it did not reach is `remaining`, and the
    same request again goes on (what it replayed is no longer parked)."""
    app = ops.app
    await park_all(ops, clock)
    ops.responder.state.down = False
    since = (clock.now() - timedelta(hours=1)).isoformat()
    until = (clock.now() + timedelta(minutes=1)).isoformat()
    selection = {"since": since, "until": until, "dry_run": False, "rate": 2}
    from adapters.ops import api

    monkeypatch.setattr(api, "REPLAY_BUDGET", 1.2)  # two a second for 1.2 s: not all five
    status, first = await ops.post("/ops/v1/replays", selection)
    assert status == 200, first
    assert 1 <= first["affected"] < 5
    assert first["affected"] + first["remaining"] == 5
    monkeypatch.setattr(api, "REPLAY_BUDGET", 30.0)
    status, second = await ops.post("/ops/v1/replays", {**selection, "rate": 50})
    assert (second["affected"], second["remaining"]) == (first["remaining"], 0)
    replayed = [i["target"] for i in first["items"] + second["items"]]
    assert sorted(replayed) == PARKED, "each once"
    await settle(app)
    assert [await state_of(app, rid) for rid in PARKED] == [State.SIGNATURE_VERIFIED] * 5
