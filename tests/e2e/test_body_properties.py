"""Property: whatever body a caller sends the facility API or the card bridge — random JSON, wrong
types, huge or deeply nested, control characters, an individual number, bytes that are not JSON —
the answer is a clear 4xx in the error shape, never a 5xx, and nothing changes."""

from __future__ import annotations

import codecs
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import FakeClock
from adapters.http.common import serve
from honnin.bootstrap import App
from honnin.http import build_http
from tests import factory
from tests.integration.harness import start
from tests.unit.test_individual_number import spelled_numbers

TOKEN = "facility-a-token-0123456789abcdef"
FIELD_NAMES = frozenset({*factory.APPLICANT, "applicant", "registration_id", "request_id", "card", "reason"})
PROPERTY = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
NOT_A_STRING = (
    st.integers() | st.booleans() | st.lists(JSON, max_size=3) | st.dictionaries(st.text(), JSON, max_size=3)
)
NEVER = "\x00\x07\x1b\x7f\x85\x9f\u202a\u202e\u2066\u2069\u200e\u200f\u061c\ud800\udfff"
HOSTILE_TEXT = st.one_of(
    st.tuples(st.text(max_size=8), st.sampled_from(NEVER), st.text(max_size=8)).map("".join),
    spelled_numbers(),
    # longer than any field allows, even once stripped of surrounding white space
    st.text(st.characters(exclude_categories=["Z", "C"]), min_size=1, max_size=3).map(lambda t: t * 400),
)
WRONG_VALUE = st.one_of(NOT_A_STRING, HOSTILE_TEXT)
UNKNOWN_KEY = st.text(min_size=1, max_size=20).filter(lambda key: key not in FIELD_NAMES)


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = changed
    for name in parents:
        node = node[name]
    node[leaf] = value
    return changed


def _without(body: dict[str, Any], path: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = changed
    for name in parents:
        node = node[name]
    del node[leaf]
    return changed


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"applicant": [value]}
    return value


def broken(valid: dict[str, Any], text_paths: list[str], required: list[str]) -> st.SearchStrategy[Any]:
    """A body made invalid by one change a caller could make, or no body like it at all."""
    path = st.sampled_from(text_paths)
    return st.one_of(
        st.builds(_set, st.just(valid), path, WRONG_VALUE),
        st.builds(lambda key, value: {**valid, key: value}, UNKNOWN_KEY, JSON),
        st.builds(_without, st.just(valid), st.sampled_from(required)),
        st.builds(_set, st.just(valid), st.sampled_from(required), st.none()),
        JSON.filter(lambda value: not isinstance(value, dict) or not value.keys() & FIELD_NAMES),
        st.integers(10, 200).map(_nested),  # deeper ones go as raw text (`not_json`)
    )


def not_json(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bytes no JSON reader of Honnin accepts."""
    text = json.dumps(valid, ensure_ascii=False)
    first_key = next(iter(valid))
    return st.one_of(
        st.binary(min_size=1, max_size=200).filter(lambda raw: not _is_json(raw)),
        st.sampled_from(["utf-16", "utf-16-be", "utf-32"]).map(text.encode),
        st.just(codecs.BOM_UTF8 + text.encode()),
        st.just(text.replace("{", f'{{"{first_key}": null, ', 1).encode()),  # the first key twice
        st.integers(2_000, 40_000).map(lambda n: b"[" * n + b"]" * n),
        st.just(b'{"x": NaN}'),
        st.just(b"x" * (64 * 1024 + 1)),
    )


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True


@dataclass
class World:
    app: App
    base: str
    http: aiohttp.ClientSession
    counter: int = 0

    def __repr__(self) -> str:
        return f"World({self.base})"

    async def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> None:
        """One request whose answer must be a 4xx in the error shape."""
        data = raw if raw is not None else json.dumps(body).encode()  # escapes carry lone surrogates
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with self.http.request(method, self.base + path, data=data, headers=headers) as response:
            status = response.status
            answer = await response.read()
            kind = response.headers.get("Content-Type", "")
        assert 400 <= status < 500, (status, answer[:300])
        assert kind.startswith("application/json")
        assert set(json.loads(answer)) == {"code", "message", "message_en", "details"}

    async def snapshot(self, rid: str) -> tuple[int, list[str]]:
        stored = await self.app.store.load(rid)
        history = await self.app.orchestrator.history(rid)
        return (stored.version if stored else 0), [h.event_id for h in history]

    async def open_registrations(self) -> int:
        states = ("info_entered", "card_read", "confirmed", "signature_verified")
        return sum([len(await self.app.store.in_state(state, 10_000)) for state in states])

    async def registered(self, rid: str, upto: int) -> None:
        for event in factory.flow(rid, upto=upto):
            result = await self.app.orchestrator.handle(event)
            assert result.status == "applied", result


@pytest.fixture
async def world(tmp_path: Path, clock: FakeClock) -> AsyncIterator[World]:
    app = await start(tmp_path, clock, facility_tokens=f"facility-1:{TOKEN}")
    try:
        async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
            yield World(app, server.url, http)
    finally:
        await app.close()


START = {"applicant": factory.APPLICANT, "registration_id": "reg-body-0001", "request_id": "req-body-1"}
START_TEXT = [f"applicant.{key}" for key in factory.APPLICANT] + ["registration_id", "request_id"]
START_REQUIRED = [
    "applicant",
    *(f"applicant.{k}" for k in ("login_id", "user_type", "user_category", "name")),
]


@PROPERTY
@given(body=broken(START, START_TEXT, START_REQUIRED) | not_json(START))
async def test_a_bad_start_is_a_4xx_and_creates_nothing(world: World, body: Any) -> None:
    before = await world.open_registrations()
    await world.send("POST", "/v1/registrations", raw=body if isinstance(body, bytes) else None, body=body)
    assert await world.open_registrations() == before
    assert await world.app.store.load("reg-body-0001") is None


CONFIRM = {"notice_acknowledged": True, "phone": "03-1234-5678", "email": "hanako@example.jp"}


@PROPERTY
@given(
    body=broken(CONFIRM, ["phone", "email"], ["notice_acknowledged"])
    | not_json(CONFIRM)
    | st.builds(lambda flag: {"notice_acknowledged": flag}, JSON.filter(lambda v: v is not True))
)
async def test_a_bad_confirm_is_a_4xx_and_changes_nothing(world: World, body: Any) -> None:
    rid = "reg-body-0002"
    if await world.app.store.load(rid) is None:
        await world.registered(rid, upto=2)
    before = await world.snapshot(rid)
    raw = body if isinstance(body, bytes) else None
    await world.send("POST", f"/v1/registrations/{rid}/confirm", body, raw=raw)
    assert await world.snapshot(rid) == before


@PROPERTY
@given(body=broken({"reason": "予約の取り消し"}, ["reason"], ["reason"]) | not_json({"reason": "x"}))
async def test_a_bad_cancel_is_a_4xx_and_cancels_nothing(world: World, body: Any) -> None:
    rid = "reg-body-0003"
    if await world.app.store.load(rid) is None:
        await world.registered(rid, upto=1)
    if body == {"reason": None} or (isinstance(body, dict) and body == {}):
        return  # an empty reason is a valid cancel
    before = await world.snapshot(rid)
    await world.send(
        "DELETE", f"/v1/registrations/{rid}", body, raw=body if isinstance(body, bytes) else None
    )
    assert await world.snapshot(rid) == before


CARD = {"card": factory.CARD}
CARD_TEXT = ["card.name", "card.address"]


@PROPERTY
@given(
    body=broken(CARD, CARD_TEXT, ["card", "card.name", "card.address", "card.birth_date", "card.sex"])
    | st.builds(_set, st.just(CARD), st.just("card.sex"), st.sampled_from([0, 3, "female", "2", [], {}]))
    | st.builds(
        _set, st.just(CARD), st.just("card.birth_date"), NOT_A_STRING.filter(lambda v: not isinstance(v, int))
    )
    | not_json(CARD)
)
async def test_a_bad_card_read_is_a_4xx_and_keeps_the_link(world: World, body: Any) -> None:
    rid = "reg-body-0004"
    if await world.app.store.load(rid) is None:
        await world.registered(rid, upto=1)
    token = world.app.links.issue(rid, "card_read").token
    before = await world.snapshot(rid)
    raw = body if isinstance(body, bytes) else None
    await world.send("POST", f"/app/v1/links/{token}/card-info", body, raw=raw)
    assert await world.snapshot(rid) == before


SIGNATURE = factory.PAYLOADS["card.signature_submitted"]


@PROPERTY
@given(
    body=broken(SIGNATURE, ["certificate", "signature", "algorithm"], ["certificate"])
    | not_json(SIGNATURE)
    | JSON
)
async def test_a_bad_signature_is_a_4xx_and_starts_no_verification(world: World, body: Any) -> None:
    rid = "reg-body-0005"
    if await world.app.store.load(rid) is None:
        await world.registered(rid, upto=3)
    stored = await world.app.store.load(rid)
    assert stored is not None
    token = world.app.links.issue(rid, "sign", stored.registration.challenge_attempt).token
    before = await world.snapshot(rid)
    raw = body if isinstance(body, bytes) else None
    await world.send("POST", f"/app/v1/links/{token}/signature", body, raw=raw)
    assert await world.snapshot(rid) == before


@PROPERTY
@given(
    reason=st.text(max_size=250)
    | st.lists(st.sampled_from(["予約", "\n", "\t", "\r\n", "a", " ", "1", "\u3000"]), max_size=20).map(
        "".join
    )
)
async def test_any_cancel_reason_is_taken_or_refused_never_a_5xx(world: World, reason: str) -> None:
    """Valid text of any kind (line breaks, any script) goes through to the facility's event."""
    world.counter += 1
    rid = f"reg-reason-{world.counter:04d}"
    await world.registered(rid, upto=1)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{world.base}/v1/registrations/{rid}"
    async with world.http.delete(url, json={"reason": reason}, headers=headers) as response:
        status = response.status
    stored = await world.app.store.load(rid)
    assert stored is not None
    assert status in (202, 422), status
    assert stored.registration.state.value == ("cancelled" if status == 202 else "info_entered")


@pytest.mark.parametrize("control", ["\x1b[2J", "\u202e", "\x00", "\r\n", "\x85", "\ud800"])
async def test_reflect_never_hands_back_a_control_character(world: World, control: str) -> None:
    rid = "reg-reflect-001"
    await world.registered(rid, upto=1)
    token = world.app.links.issue(rid, "card_read").token
    card = {**factory.CARD, "name": f"公的{control}花子"}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with world.http.post(
        f"{world.base}/app/v1/links/{token}/card-info", data=json.dumps({"card": card}), headers=headers
    ) as response:
        assert response.status == 422
        assert [d["loc"] for d in (await response.json())["details"]] == ["card.name"]
    async with world.http.post(f"{world.base}/v1/registrations/{rid}/reflect", headers=headers) as response:
        assert (response.status, (await response.json())["code"]) == (409, "card_info_not_read")
