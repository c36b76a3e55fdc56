"""The console's doors over real HTTP: no session goes to the login page, a facility's token does not
log in, a POST without the session's CSRF token is refused (and changes nothing), the cookie is
HttpOnly, SameSite=Strict, signed, expiring, and never holds the token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.console.session import Sessions
from tests import factory
from tests.integration.receivers import TOKENS, Worker, worker

OPERATOR, OPERATOR_TOKEN = "ops-alice", "alice-operator-token-0123456789"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def w(tmp_path: Path) -> AsyncIterator[Worker]:
    async with worker(tmp_path, operator_tokens=f"{OPERATOR}:{OPERATOR_TOKEN}") as started:
        yield started


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps cookies for 127.0.0.1 as a browser does."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def login_form(w: Worker, http: aiohttp.ClientSession) -> str:
    async with http.get(f"{w.base}/ops/login") as response:
        assert response.status == 200
        return CSRF.findall(await response.text())[0]


async def log_in(
    w: Worker, http: aiohttp.ClientSession, token: str = OPERATOR_TOKEN
) -> aiohttp.ClientResponse:
    csrf = await login_form(w, http)
    async with http.post(
        f"{w.base}/ops/login", data={"token": token, "csrf": csrf}, allow_redirects=False
    ) as response:
        await response.read()
        return response


async def test_without_a_session_every_page_goes_to_the_login(w: Worker, browser) -> None:
    for path in ("/ops/", "/ops/registrations/reg-00000001"):
        async with browser.get(w.base + path, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/ops/login"
    async with browser.post(f"{w.base}/ops/replay", data={"code": "42"}, allow_redirects=False) as response:
        assert response.status == 403
    async with browser.get(f"{w.base}/ops/login") as response:
        page = await response.text()
    assert "運用者トークン" in page
    assert "Operator token" in page


async def test_an_operator_logs_in_for_a_signed_http_only_strict_cookie(w: Worker, browser) -> None:
    response = await log_in(w, browser)
    assert response.status == 303
    assert response.headers["Location"] == "/ops/"
    cookie = response.cookies["honnin_ops"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/ops/"
    assert int(cookie["max-age"]) == 8 * 3600
    assert OPERATOR_TOKEN not in cookie.value
    async with browser.get(f"{w.base}/ops/") as page:
        assert page.status == 200
        text = await page.text()
        assert page.headers["Cache-Control"] == "no-store"
        assert "script-src" not in page.headers["Content-Security-Policy"], "no script at all"
    assert OPERATOR in text
    assert '<svg class="chart" id="chart-states"' in text
    assert "保留中の検証" in text
    assert "Parked verifications" in text


async def test_a_facility_token_does_not_log_in(w: Worker, browser) -> None:
    for token in (TOKENS["facility-1"], "not-a-token-of-anyone-000000"):
        response = await log_in(w, browser, token)
        assert response.status == 401
        assert "honnin_ops" not in response.cookies
    async with browser.get(f"{w.base}/ops/", allow_redirects=False) as response:
        assert response.status == 303


async def test_a_login_without_the_form_s_csrf_token_is_refused(w: Worker, browser) -> None:
    await login_form(w, browser)
    for data in ({"token": OPERATOR_TOKEN}, {"token": OPERATOR_TOKEN, "csrf": "forged"}):
        async with browser.post(f"{w.base}/ops/login", data=data, allow_redirects=False) as response:
            assert response.status == 403
            assert "honnin_ops" not in response.cookies


async def test_a_post_with_a_bad_csrf_token_is_403_and_replays_nothing(w: Worker, browser) -> None:
    await w.app.orchestrator.handle(factory.event("registration.started", "reg-csrf-0001"))
    await log_in(w, browser)
    async with browser.get(f"{w.base}/ops/") as response:
        good = CSRF.findall(await response.text())[0]
    for csrf in (None, "forged", good[:-2] + "AA"):
        data = {"step": "confirm", "registration_id": "reg-csrf-0001"} | ({"csrf": csrf} if csrf else {})
        async with browser.post(f"{w.base}/ops/replay", data=data) as response:
            assert response.status == 403
            assert "CSRF" in await response.text()
    assert await w.app.operations.audit() == [], "nothing was done, not even a dry run"
    data = {"step": "dry_run", "registration_id": "reg-csrf-0001", "csrf": good}
    async with browser.post(f"{w.base}/ops/replay", data=data) as response:
        assert response.status == 200
        assert 'data-outcome="skipped"' in await response.text()
    [record] = await w.app.operations.audit()
    assert (record.operator, record.channel, record.dry_run) == (OPERATOR, "http", True)


async def test_a_session_ends_when_it_expires_or_is_tampered_with(w: Worker, browser) -> None:
    response = await log_in(w, browser)
    value = response.cookies["honnin_ops"].value
    payload, _, mac = value.partition(".")
    forged = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac
    async with (
        aiohttp.ClientSession(cookies={"honnin_ops": forged}) as other,
        other.get(f"{w.base}/ops/", allow_redirects=False) as page,
    ):
        assert page.status == 303
    w.clock.advance(timedelta(hours=8, seconds=1))
    async with browser.get(f"{w.base}/ops/", allow_redirects=False) as page:
        assert page.status == 303


def test_a_session_ends_once_its_token_is_no_longer_configured() -> None:
    now = factory.NOW
    before = Sessions(b"k" * 32, {OPERATOR_TOKEN: OPERATOR}, 3600)
    opened = before.open(OPERATOR_TOKEN, now)
    assert opened is not None
    session, cookie = opened
    assert before.read(cookie, now) == session
    rotated = Sessions(b"k" * 32, {"alice-new-operator-token-9876543210": OPERATOR}, 3600)
    assert rotated.read(cookie, now) is None
    assert Sessions(b"j" * 32, {OPERATOR_TOKEN: OPERATOR}, 3600).read(cookie, now) is None, "another key"
    assert before.read(cookie, now + timedelta(seconds=3600)) is None, "expired"
