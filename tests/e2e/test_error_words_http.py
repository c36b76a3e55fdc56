"""Errors as people meet them on every API the worker serves: `message` in Japanese, `message_en` in
English, the error shape kept, nothing the caller sent repeated."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.clock import FakeClock
from adapters.http.common import serve
from adapters.http.words import is_english
from honnin.bootstrap import App
from honnin.http import build_http
from orchestrator import messages
from tests.integration.harness import start

TOKEN = "facility-words-token-0123456789"
APP_SECRET = "app-client-secret-0123456789ab"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
APPLICANT = {
    "login_id": "t1",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": "公的　花子",
    "address": "東京都",
}
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture
async def worker(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[App, str, aiohttp.ClientSession]]:
    app = await start(
        tmp_path, clock, facility_tokens=f"facility-w:{TOKEN}", app_clients=f"app-w:{APP_SECRET}"
    )
    try:
        async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
            app.links.rebase(server.url)
            yield app, server.url, http
    finally:
        await app.close()


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json()


def _readable(body: dict[str, Any]) -> None:
    assert set(body) == {"code", "message", "message_en", "details"}
    assert JAPANESE.search(body["message"]), body
    assert not is_english(body["message"]), body
    assert is_english(body["message_en"]), body


async def test_every_api_answers_its_errors_in_japanese_with_the_english_beside(
    worker, clock: FakeClock
) -> None:
    _, base, http = worker
    seen: dict[str, dict[str, Any]] = {}

    async def expect(status: int, code: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        got, body = await _call(http, method, base + path, **kwargs)
        assert (got, body["code"]) == (status, code), body
        _readable(body)
        seen[code] = body
        return body

    await expect(401, "unauthorized", "POST", "/v1/registrations", json={})
    await expect(404, "not_found", "GET", "/v1/registrations/reg-nobody-0001", headers=BEARER)
    await expect(415, "unsupported_media_type", "POST", "/v1/registrations", data=b"x", headers=BEARER)
    bad = {**BEARER, "Content-Type": "application/json"}
    await expect(400, "malformed_json", "POST", "/v1/registrations", data=b"{", headers=bad)
    body = await expect(
        422, "invalid_body", "POST", "/v1/registrations", json={"applicant": {}}, headers=BEARER
    )
    assert body["details"][0]["loc"].startswith("applicant")
    await expect(404, "not_found", "GET", "/v1/nothing-here")
    await expect(405, "method_not_allowed", "PUT", "/v1/registrations", headers=BEARER)

    _, started = await _call(
        http, "POST", base + "/v1/registrations", json={"applicant": APPLICANT}, headers=BEARER
    )
    one = f"/v1/registrations/{started['registration_id']}"
    body = await expect(409, "card_info_not_read", "POST", one + "/reflect", headers=BEARER)
    assert body["message"] == messages.CARD_INFO_NOT_READ
    body = await expect(
        409, "not_yet_accepted", "POST", one + "/confirm", json={"notice_acknowledged": True}, headers=BEARER
    )
    assert body["message"] == messages.CARD_NOT_READ_YET
    await expect(409, "not_signable", "POST", one + "/sign-link", headers=BEARER)

    link = started["card_read_link"]["url"].removeprefix(base)
    await expect(404, "unknown_link", "GET", link.replace("/links/", "/links/x"))
    await expect(403, "wrong_step", "GET", link + "/challenge")
    facts = {"card": {"name": "公的　花子", "address": "東京都", "birth_date": "1990-04-01", "sex": 2}}
    assert (await _call(http, "POST", base + link + "/card-info", json=facts))[0] == 200
    await expect(409, "link_used", "POST", link + "/card-info", json=facts)
    clock.advance(timedelta(hours=2))
    await expect(410, "link_expired", "GET", link)

    await expect(401, "unauthorized", "POST", "/app/v1/xid/registrations", json={})
    xid = {"Authorization": f"Bearer {APP_SECRET}"}
    await expect(404, "not_found", "GET", "/app/v1/xid/registrations/reg-nobody-0001", headers=xid)
    assert len(seen) >= 13


async def test_a_422_that_refuses_the_individual_number_says_so_in_japanese_without_repeating_it(
    worker,
) -> None:
    _, base, http = worker
    applicant = {**APPLICANT, "phone": "1234 5678 9012"}
    status, body = await _call(
        http, "POST", base + "/v1/registrations", json={"applicant": applicant}, headers=BEARER
    )
    assert status == 422
    _readable(body)
    assert body["message"].startswith("個人番号（マイナンバー）は受け付けていません。")
    assert "5678" not in str(body)
