"""`/ops/v1` over HTTP: operators' tokens and facilities' never cross, pages walk every row once,
one registration shown without a personal fact, the error shape, and a dry run audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.clock import FakeClock
from adapters.http.common import serve
from honnin.bootstrap import App
from honnin.http import build_http
from orchestrator.model import Signature, State, Verification
from orchestrator.ports import BusMessage, DeadLetter
from tests import factory
from tests.contract.test_store_contract import NOW, commit, registration
from tests.integration.harness import start

FACILITY_TOKEN = "token-of-facility-one-000"
OPERATOR_TOKEN = "dave-operator-token-0001"


@dataclass
class Client:
    app: App
    http: aiohttp.ClientSession
    url: str

    async def call(
        self, method: str, path: str, token: str | None = OPERATOR_TOKEN, body: Any = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as answer:
            return answer.status, dict(await answer.json())


@pytest.fixture
async def client(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Client]:
    app = await start(
        tmp_path,
        clock,
        facility_tokens=f"facility-1:{FACILITY_TOKEN}",
        operator_tokens=f"dave:{OPERATOR_TOKEN}",
    )
    try:
        async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
            yield Client(app, http, server.url)
    finally:
        await app.close()


async def many(app: App, count: int) -> list[str]:
    rids = [f"reg-many{n:05d}" for n in range(count)]
    for n, rid in enumerate(rids):
        reg = registration(
            rid, created_at=NOW + timedelta(seconds=n // 4), expires_at=NOW + timedelta(days=9)
        )
        await app.store.commit(commit(f"e{n}", reg, 0, rid=rid))
    return rids


async def test_a_facility_token_never_opens_ops_and_an_operator_token_never_opens_v1(client: Client) -> None:
    for token in (FACILITY_TOKEN, None, "not-a-token-of-anyone-0001"):
        status, body = await client.call("GET", "/ops/v1/registrations", token)
        assert (status, body["code"]) == (401, "operator_unauthorized")
        assert set(body) == {"code", "message", "message_en", "details"}
        status, _ = await client.call("POST", "/ops/v1/replays", token, {"code": "42", "dry_run": False})
        assert status == 401
    status, body = await client.call("GET", "/v1/registrations/reg-00000001", OPERATOR_TOKEN)
    assert (status, body["code"]) == (401, "unauthorized")
    status, _ = await client.call("GET", "/ops/v1/registrations", OPERATOR_TOKEN)
    assert status == 200
    assert await client.app.operations.audit() == [], "a refused call is no action"


async def test_a_cursor_walks_every_registration_exactly_once(client: Client) -> None:
    rids = await many(client.app, 37)
    seen: list[str] = []
    after = ""
    pages = 0
    while True:
        status, page = await client.call("GET", f"/ops/v1/registrations?limit=5{after}")
        assert status == 200, page
        seen += [r["registration_id"] for r in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        after = f"&after={page['next_cursor']}"
    assert seen == rids
    assert pages == 8
    status, body = await client.call("GET", "/ops/v1/registrations?after=not-a-cursor")
    assert (status, body["code"]) == (400, "invalid_cursor")
    status, body = await client.call("GET", "/ops/v1/registrations?limit=5000")
    assert (status, body["code"]) == (400, "invalid_limit")
    status, body = await client.call("GET", "/ops/v1/registrations?state=parked")
    assert (status, body["code"]) == (400, "invalid_query")
    status, body = await client.call("GET", "/ops/v1/registrations?older_than=soon")
    assert (status, body["code"]) == (400, "invalid_query")


async def test_filters_by_age_facility_and_profile(client: Client, clock: FakeClock) -> None:
    await many(client.app, 8)  # created NOW .. NOW + 1 s
    clock.advance(timedelta(hours=3))
    status, old = await client.call("GET", "/ops/v1/registrations?older_than=2h&facility=facility-1")
    assert (status, len(old["items"])) == (200, 8)
    status, new = await client.call("GET", "/ops/v1/registrations?newer_than=2h")
    assert new["items"] == []
    status, xid = await client.call("GET", "/ops/v1/registrations?profile=xid")
    assert xid["items"] == []
    status, window = await client.call(
        "GET",
        "/ops/v1/registrations?created_after=" + (NOW + timedelta(seconds=1)).isoformat().replace("+", "%2B"),
    )
    assert [r["registration_id"] for r in window["items"]] == [
        "reg-many00004",
        "reg-many00005",
        "reg-many00006",
        "reg-many00007",
    ]


async def test_one_registration_is_shown_with_its_history_and_no_personal_fact(client: Client) -> None:
    app = client.app
    from tests.integration.harness import publish, settle

    for kind in factory.FLOW[:3]:
        payload = factory.PAYLOADS[kind]
        if kind == "registration.started":
            payload = {**payload, "applicant": factory.APPLICANT}
        await publish(app, factory.event(kind, "reg-00000001", payload=payload))
        await settle(app)
    status, shown = await client.call("GET", "/ops/v1/registrations/reg-00000001")
    assert status == 200, shown
    assert shown["registration"]["state"] == "confirmed"
    assert shown["card_read"] is True
    assert [s["event_type"] for s in shown["history"]] == list(factory.FLOW[:3])
    text = str(shown)
    assert all(fact not in text for fact in (factory.NAME, factory.ADDRESS, "hanako@example.jp"))
    status, missing = await client.call("GET", "/ops/v1/registrations/reg-missing01")
    assert (status, missing["code"]) == (404, "not_found")


async def test_a_dry_run_changes_nothing_and_is_audited_under_the_operators_name(client: Client) -> None:
    app = client.app
    parked = Verification(attempt=1, status="parked", retries=5, code="42", decided_at=NOW)
    reg = registration(state=State.CONFIRMED, verification=parked, expires_at=NOW + timedelta(days=9))
    signature = Signature(
        certificate="Y2VydA==",
        signature="c2ln",
        algorithm="rsa-pkcs1v15-sha256",
        challenge="Y2g=",
        attempt=1,
        submitted_at=NOW,
    )
    await app.store.commit(commit("e1", reg.model_copy(update={"signature": signature}), 0))
    letter = DeadLetter(
        "honnin.orchestrator", BusMessage("card.info_read", b"{}", "m-1"), "poison_message: x", 3
    )
    await app.store.add_dead_letter(letter, NOW)
    before = (await app.store.load("reg-00000001"), len(await app.store.history("reg-00000001")))

    status, dry = await client.call(
        "POST", "/ops/v1/replays", body={"code": "42", "dead_letter_ids": [1], "dry_run": True}
    )
    assert status == 200, dry
    assert [(i["kind"], i["outcome"]) for i in dry["items"]] == [
        ("registration", "would_replay"),
        ("dead_letter", "would_replay"),
    ]
    assert (await app.store.load("reg-00000001"), len(await app.store.history("reg-00000001"))) == before
    assert await app.store.dead_letter_count() == 1
    assert await app.store.outbox_backlog() == 0

    status, audit = await client.call("GET", "/ops/v1/audit")
    [record] = audit["items"]
    assert (record["operator"], record["channel"], record["dry_run"], record["affected"]) == (
        "dave",
        "http",
        True,
        2,
    )
    assert record["parameters"] == {"code": "42", "dead_letter_ids": [1], "targets": 2, "done": 2}
    assert record["id"] == dry["audit_id"]
    status, letters = await client.call("GET", "/ops/v1/dead-letters")
    assert [(d["id"], d["queue"], d["reason"], d["attempts"]) for d in letters["items"]] == [
        (1, "honnin.orchestrator", "poison_message: x", 3)
    ]
    status, counts = await client.call("GET", "/ops/v1/counts")
    assert (counts["by_code"], counts["by_verification"]) == ({"42": 1}, {"parked": 1})

    status, refused = await client.call("POST", "/ops/v1/replays", body={"code": "42"})
    assert (status, refused["code"]) == (422, "invalid_body"), "dry_run is required"
    status, refused = await client.call("POST", "/ops/v1/replays", body={"dry_run": True})
    assert (status, refused["code"]) == (422, "invalid_body"), "something must be named"
