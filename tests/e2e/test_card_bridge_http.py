"""The card bridge over real HTTP on loopback: a worker with SQLite, the in-process bus and the
verifier trusting a dev CA; the web's steps are played through the orchestrator directly."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import segno
from structlog.testing import capture_logs

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.card_bridge.app import add_card_bridge_routes
from adapters.card_bridge.links import IssuedLink, Links, link_key
from adapters.clock import FakeClock
from adapters.http.common import application, serve
from honnin.bootstrap import App
from honnin.emulator import card_facts
from orchestrator import messages
from orchestrator.model import Registration, State
from tests import factory
from tests.integration.harness import settle, start

NOW = datetime.now(UTC).replace(microsecond=0)
CARD_READ_OK = "マイナンバーカードの読み込みに成功しました。"
SIGNED_OK = "電子署名処理に成功しました。"
FACTS = card_facts(Person())


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def card(ca: DevCA) -> Card:
    return ca.issue(Person(), now=NOW)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@dataclass
class Bridge:
    """The worker, the links it trusts and a client that talks to it over loopback."""

    app: App
    links: Links
    http: aiohttp.ClientSession
    clock: FakeClock

    async def get(self, url: str) -> tuple[int, Any]:
        async with self.http.get(url) as response:
            return response.status, await response.json()

    async def post(self, url: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(url, json=body) as response:
            return response.status, await response.json()

    async def registration(self, rid: str) -> Registration:
        return (await self.app.orchestrator.status(rid)).registration

    async def kinds(self, rid: str) -> list[str]:
        return [entry.event_type for entry in await self.app.orchestrator.history(rid)]

    async def web(self, kind: str, rid: str) -> None:
        """A facility step, as the facility API will submit it."""
        result = await self.app.orchestrator.handle(factory.event(kind, rid))
        assert result.status == "applied", result

    async def sign_link(self, rid: str) -> IssuedLink:
        return self.links.issue(rid, "sign", (await self.registration(rid)).challenge_attempt)

    async def read_card(self, rid: str) -> None:
        status, body = await self.post(self.links.issue(rid, "card_read").url + "/card-info", {"card": FACTS})
        assert status == 200, body

    async def up_to_confirmed(self, rid: str) -> IssuedLink:
        await self.web("registration.started", rid)
        await self.read_card(rid)
        await self.web("registration.confirmed", rid)
        return await self.sign_link(rid)


async def _bridge(tmp: Path, clock: FakeClock, ca: DevCA, *, verifier: bool) -> AsyncIterator[Bridge]:
    root, crl = tmp / "root.der", tmp / "crl.der"
    root.write_bytes(ca.der)
    crl.write_bytes(ca.crl(this_update=NOW - timedelta(minutes=1)))
    app = await start(
        tmp / "data",
        clock,
        verifier_enabled=verifier,
        trust_anchor_files=[root],
        revocation="crl",
        crl_files=[crl],
    )
    http = application()
    links = Links(link_key(bytes(range(32))), "http://127.0.0.1", clock)
    add_card_bridge_routes(http, orchestrator=app.orchestrator, links=links, clock=clock)
    try:
        async with serve(http) as server, aiohttp.ClientSession() as session:
            links.rebase(server.url)  # port 0: the address is known once the server is up
            yield Bridge(app, links, session, clock)
    finally:
        await app.close()


@pytest.fixture
async def bridge(tmp_path: Path, clock: FakeClock, ca: DevCA) -> AsyncIterator[Bridge]:
    async for made in _bridge(tmp_path, clock, ca, verifier=True):
        yield made


def signed(card: Card, challenge_b64: str) -> dict[str, str]:
    """What the phone app sends after the card signed with the 6-16 character password."""
    return {
        "certificate": base64.b64encode(card.der).decode(),
        "signature": base64.b64encode(card.sign(base64.b64decode(challenge_b64))).decode(),
        "algorithm": "rsa-pkcs1v15-sha256",
    }


# --- iPhone / Android: the app opens the links itself ---------------------------------------------


async def test_phone_flow_reads_the_card_signs_and_is_verified(bridge: Bridge, card: Card) -> None:
    rid = "reg-phone-0001"
    await bridge.web("registration.started", rid)
    link = bridge.links.issue(rid, "card_read")
    status, info = await bridge.get(link.url)
    assert (status, set(info)) == (200, {"step", "registration_id", "expires_at"})
    assert (info["step"], info["registration_id"]) == ("card_read", rid)
    assert datetime.fromisoformat(info["expires_at"]) == link.expires_at
    status, body = await bridge.post(link.url + "/card-info", {"card": FACTS})
    assert (status, body) == (200, {"state": "card_read", "message": CARD_READ_OK})
    assert (await bridge.registration(rid)).state is State.CARD_READ

    await bridge.web("registration.confirmed", rid)
    sign = await bridge.sign_link(rid)
    status, info = await bridge.get(sign.url)
    assert status == 200
    assert (info["step"], info["attempt"]) == ("sign", 1)
    status, challenge = await bridge.get(sign.url + "/challenge")
    assert status == 200
    assert challenge == {"challenge": info["challenge"], "attempt": 1}
    assert challenge["challenge"] == (await bridge.registration(rid)).challenge

    status, body = await bridge.post(sign.url + "/signature", signed(card, challenge["challenge"]))
    assert (status, body) == (202, {"state": "confirmed", "verification": "pending", "message": SIGNED_OK})
    await settle(bridge.app)
    registration = await bridge.registration(rid)
    assert registration.state is State.SIGNATURE_VERIFIED
    history = await bridge.app.orchestrator.history(rid)
    submitted = {e.event_type: e for e in history}
    assert submitted["card.info_read"].event_id == str(bridge.links.open(link.token).event_id())
    assert submitted["card.signature_submitted"].event_id == str(bridge.links.open(sign.token).event_id())
    assert {submitted[k].source for k in ("card.info_read", "card.signature_submitted")} == {"app"}


async def test_answers_are_not_cached(bridge: Bridge) -> None:
    rid = "reg-cache-0001"
    sign = await bridge.up_to_confirmed(rid)
    for url in (sign.url, sign.url + "/challenge", sign.qr_svg_url):
        async with bridge.http.get(url) as response:
            assert response.headers["Cache-Control"] == "no-store"


async def test_logs_name_the_registration_never_the_card(bridge: Bridge) -> None:
    rid = "reg-logs-00001"
    await bridge.web("registration.started", rid)
    with capture_logs() as logs:
        await bridge.read_card(rid)
    ours = [entry for entry in logs if entry["event"].startswith("card_bridge.")]
    assert ours
    assert all(entry["registration_id"] == rid for entry in ours)
    text = json.dumps(logs, ensure_ascii=False, default=str)
    for fact in (FACTS["name"], FACTS["address"], FACTS["birth_date"]):
        assert str(fact) not in text


# --- PC / tablet: the page shows the link as a QR code (二次元コード) -----------------------------


def _segno(url: str, kind: str, scale: int) -> bytes:
    """What segno itself draws for the link's URL: the bridge must serve exactly this."""
    out = io.BytesIO()
    options: dict[str, Any] = {"title": "二次元コード"} if kind == "svg" else {}
    segno.make(url, error="m", micro=False).save(out, kind=kind, scale=scale, border=4, **options)
    return out.getvalue()


@pytest.mark.parametrize(("kind", "media", "scale"), [("svg", "image/svg+xml", 4), ("png", "image/png", 8)])
async def test_pc_flow_shows_the_link_as_a_qr_code(bridge: Bridge, kind: str, media: str, scale: int) -> None:
    rid = "reg-pc-000001"
    await bridge.web("registration.started", rid)
    link = bridge.links.issue(rid, "card_read")
    async with bridge.http.get(f"{link.url}/qr.{kind}") as response:
        assert response.status == 200
        assert response.content_type == media
        assert response.headers["Cache-Control"] == "no-store"
        drawn = await response.read()
    assert drawn == _segno(link.url, kind, scale)
    assert drawn != _segno(bridge.links.issue(rid, "card_read").url, kind, scale), "the code is this link's"
    # the phone scanned it: the app opens the very same link and reads the card
    status, _ = await bridge.post(link.url + "/card-info", {"card": FACTS})
    assert status == 200


async def test_the_svg_stands_alone_for_an_img_tag(bridge: Bridge) -> None:
    await bridge.web("registration.started", "reg-pc-000002")
    link = bridge.links.issue("reg-pc-000002", "card_read")
    async with bridge.http.get(link.qr_svg_url) as response:
        svg = await response.text()
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert "<svg" in svg
    assert "segno" in svg


async def test_a_sign_link_has_its_qr_code_too(bridge: Bridge) -> None:
    sign = await bridge.up_to_confirmed("reg-pc-000003")
    async with bridge.http.get(sign.qr_png_url) as response:
        assert response.status == 200
        assert (await response.read()) == _segno(sign.url, "png", 8)


# --- abuse ----------------------------------------------------------------------------------------


async def _raw_post(bridge: Bridge, url: str, data: bytes, content_type: str) -> tuple[int, Any]:
    async with bridge.http.post(url, data=data, headers={"Content-Type": content_type}) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b'{"card": {', "application/json", 400, "malformed_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_encoding"),
        (
            json.dumps({"card": FACTS}, ensure_ascii=False).encode("utf-16"),
            "application/json",
            400,
            "invalid_encoding",
        ),
        (b"\xef\xbb\xbf" + json.dumps({"card": FACTS}).encode(), "application/json", 400, "invalid_encoding"),
        (
            json.dumps({"card": FACTS}).encode(),
            "application/json; charset=latin-1",
            415,
            "unsupported_charset",
        ),
        (b'{"card": {"name": "a", "name": "b"}}', "application/json", 400, "duplicate_key"),
        (json.dumps({"card": {**FACTS, "sex": "female"}}).encode(), "application/json", 422, "invalid_body"),
        (json.dumps({"card": "公的　花子"}).encode(), "application/json", 422, "invalid_body"),
        (json.dumps([FACTS]).encode(), "application/json", 422, "invalid_body"),
        (json.dumps({"card": FACTS, "trace": 1}).encode(), "application/json", 422, "invalid_body"),
        (b"x" * (64 * 1024 + 1), "application/json", 413, "body_too_large"),
        (json.dumps({"card": FACTS}).encode(), "text/plain", 415, "unsupported_media_type"),
        (b"card=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
    ids=[
        "malformed",
        "not-utf8",
        "utf16",
        "bom",
        "latin1",
        "duplicate-key",
        "wrong-type",
        "not-an-object",
        "a-list",
        "unknown-field",
        "64k",
        "text",
        "form",
    ],
)
async def test_a_bad_body_is_refused_and_changes_nothing(
    bridge: Bridge, data: bytes, content_type: str, status: int, code: str
) -> None:
    rid = "reg-abuse-0001"
    await bridge.web("registration.started", rid)
    link = bridge.links.issue(rid, "card_read")
    answer = await _raw_post(bridge, link.url + "/card-info", data, content_type)
    assert (answer[0], answer[1]["code"]) == (status, code)
    assert set(answer[1]) == {"code", "message", "message_en", "details"}
    assert await bridge.kinds(rid) == ["registration.started"]
    status, _ = await bridge.post(link.url + "/card-info", {"card": FACTS})
    assert status == 200, "a refused body does not spend the link"


NUMBER = "123456789012"


@pytest.mark.parametrize(
    "body",
    [
        {"card": {**FACTS, "name": NUMBER}},
        {"card": {**FACTS, "address": f"東京都 {NUMBER[:4]}-{NUMBER[4:8]}-{NUMBER[8:]}"}},
        {"card": {**FACTS, "name": "１２３４５６７８９０１２"}},
        {"card": FACTS, "individual_number": NUMBER},
        {"card": FACTS, NUMBER: True},
        {"card": {**FACTS, "birth_date": 864000000000}},
        {"card": {**FACTS, "extra": [{"deep": int(NUMBER)}]}},
    ],
    ids=["name", "grouped", "full-width", "extra-field", "as-a-key", "as-a-date", "nested-number"],
)
async def test_the_individual_number_is_refused_without_echo(bridge: Bridge, body: dict[str, Any]) -> None:
    rid = "reg-number-001"
    await bridge.web("registration.started", rid)
    link = bridge.links.issue(rid, "card_read")
    async with bridge.http.post(link.url + "/card-info", json=body) as response:
        status, text = response.status, await response.text()
    assert status == 422
    assert json.loads(text)["code"] == "invalid_body"
    assert "個人番号" in json.loads(text)["message"]
    for form in (NUMBER, "1234", "１２３４", "864000000000"):
        assert form not in text
    assert await bridge.kinds(rid) == ["registration.started"]


async def test_a_replayed_card_info_link_is_used_and_changes_nothing(bridge: Bridge) -> None:
    rid = "reg-replay-001"
    await bridge.web("registration.started", rid)
    link = bridge.links.issue(rid, "card_read")
    assert (await bridge.post(link.url + "/card-info", {"card": FACTS}))[0] == 200
    other = {**FACTS, "name": "公的　太郎", "sex": 1}
    status, body = await bridge.post(link.url + "/card-info", {"card": other})
    assert (status, body["code"]) == (409, "link_used")
    assert await bridge.kinds(rid) == ["registration.started", "card.info_read"]
    assert (await bridge.app.orchestrator.reflect_card_info(rid)).name == FACTS["name"]


async def test_a_link_for_one_registration_cannot_touch_another(bridge: Bridge) -> None:
    await bridge.web("registration.started", "reg-owner-00A")
    await bridge.web("registration.started", "reg-victim-0B")
    token = bridge.links.issue("reg-owner-00A", "card_read").token
    body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["rid"] = "reg-victim-0B"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    url = f"{bridge.links.issue('reg-victim-0B', 'card_read').url.rsplit('/', 1)[0]}/{forged}.{signature}"
    status, answer = await bridge.post(url + "/card-info", {"card": FACTS})
    assert (status, answer["code"]) == (404, "unknown_link")
    assert (await bridge.get(url))[0] == 404
    assert await bridge.kinds("reg-victim-0B") == ["registration.started"]


@pytest.mark.parametrize("suffix", ["", "/card-info", "/challenge", "/signature", "/qr.svg", "/qr.png"])
async def test_an_unknown_token_is_404_everywhere(bridge: Bridge, suffix: str) -> None:
    url = bridge.links.issue("reg-nobody-001", "card_read").url.rsplit("/", 1)[0] + "/not.a-link" + suffix
    method = bridge.http.post if suffix in ("/card-info", "/signature") else bridge.http.get
    async with method(url, json={}) as response:
        assert response.status == 404
        assert (await response.json())["code"] == "unknown_link"


async def test_an_expired_link_is_gone(bridge: Bridge) -> None:
    rid = "reg-expired-01"
    await bridge.web("registration.started", rid)
    link = bridge.links.issue(rid, "card_read")
    bridge.clock.advance(timedelta(minutes=10, seconds=1))
    for status, body in (
        await bridge.get(link.url),
        await bridge.post(link.url + "/card-info", {"card": FACTS}),
    ):
        assert (status, body["code"]) == (410, "link_expired")
    async with bridge.http.get(link.qr_svg_url) as response:
        assert response.status == 410
    assert await bridge.kinds(rid) == ["registration.started"]


async def test_a_link_serves_only_its_own_step(bridge: Bridge, card: Card) -> None:
    rid = "reg-step-0001"
    sign = await bridge.up_to_confirmed(rid)
    card_read = bridge.links.issue(rid, "card_read")
    challenge = (await bridge.registration(rid)).challenge
    assert challenge is not None
    for status, body in (
        await bridge.post(card_read.url + "/signature", signed(card, challenge)),
        await bridge.get(card_read.url + "/challenge"),
        await bridge.post(sign.url + "/card-info", {"card": FACTS}),
    ):
        assert (status, body["code"]) == (403, "wrong_step")
    assert "card.signature_submitted" not in await bridge.kinds(rid)


async def test_a_signature_over_another_registrations_challenge_never_reaches_it(
    bridge: Bridge, card: Card
) -> None:
    victim = await bridge.up_to_confirmed("reg-victim-001")
    thief = await bridge.up_to_confirmed("reg-thief-0001")
    _, stolen = await bridge.get(victim.url + "/challenge")
    status, body = await bridge.post(thief.url + "/signature", signed(card, stolen["challenge"]))
    assert (status, body["code"]) == (400, "signature_not_over_challenge")
    assert body["message"] == messages.possibly_revoked("50")
    for rid in ("reg-victim-001", "reg-thief-0001"):
        assert "card.signature_submitted" not in await bridge.kinds(rid)
        assert (await bridge.registration(rid)).verification is None


@pytest.mark.parametrize(
    "change",
    [
        {"certificate": base64.b64encode(b"not a certificate").decode()},
        {"signature": base64.b64encode(b"\x00" * 256).decode()},
        {"algorithm": "ecdsa-sha256"},
    ],
    ids=["garbage-certificate", "garbage-signature", "wrong-algorithm"],
)
async def test_a_bad_signature_is_refused_here_and_changes_nothing(
    bridge: Bridge, card: Card, change: dict[str, str]
) -> None:
    rid = "reg-badsig-001"
    sign = await bridge.up_to_confirmed(rid)
    _, challenge = await bridge.get(sign.url + "/challenge")
    status, body = await bridge.post(sign.url + "/signature", signed(card, challenge["challenge"]) | change)
    expected = "malformed_certificate" if "certificate" in change else "signature_not_over_challenge"
    assert (status, body["code"]) == (400, expected)
    assert "card.signature_submitted" not in await bridge.kinds(rid)
    status, _ = await bridge.post(sign.url + "/signature", signed(card, challenge["challenge"]))
    assert status == 202, "a refused signature does not spend the link"


async def test_a_signature_body_of_the_wrong_shape_is_422(bridge: Bridge, card: Card) -> None:
    sign = await bridge.up_to_confirmed("reg-sigshape-1")
    _, challenge = await bridge.get(sign.url + "/challenge")
    for change in ({"signature": "not base64!"}, {"algorithm": "md5"}, {"key": "x"}):
        status, body = await bridge.post(
            sign.url + "/signature", signed(card, challenge["challenge"]) | change
        )
        assert (status, body["code"]) == (422, "invalid_body")


async def test_a_second_use_of_a_sign_link_is_used(bridge: Bridge, card: Card) -> None:
    rid = "reg-twice-0001"
    sign = await bridge.up_to_confirmed(rid)
    _, challenge = await bridge.get(sign.url + "/challenge")
    body = signed(card, challenge["challenge"])
    assert (await bridge.post(sign.url + "/signature", body))[0] == 202
    await settle(bridge.app)
    status, answer = await bridge.post(sign.url + "/signature", body)
    assert (status, answer["code"]) == (409, "link_used")
    assert (await bridge.kinds(rid)).count("card.signature_submitted") == 1


async def test_a_sign_link_is_superseded_by_a_failed_verifications_new_challenge(
    bridge: Bridge, ca: DevCA, card: Card
) -> None:
    rid = "reg-superse-01"
    old = await bridge.up_to_confirmed(rid)
    _, first = await bridge.get(old.url + "/challenge")
    someone_else = ca.issue(Person(name="公的　太郎", sex="1"), now=NOW)
    assert (await bridge.post(old.url + "/signature", signed(someone_else, first["challenge"])))[0] == 202
    await settle(bridge.app)
    registration = await bridge.registration(rid)
    assert registration.verification is not None
    assert (registration.verification.code, registration.challenge_attempt) == ("identity_mismatch", 2)

    for status, body in (
        await bridge.get(old.url),
        await bridge.get(old.url + "/challenge"),
        await bridge.post(old.url + "/signature", signed(card, registration.challenge or "")),
    ):
        assert (status, body["code"]) == (410, "link_superseded")

    new = await bridge.sign_link(rid)
    _, second = await bridge.get(new.url + "/challenge")
    assert second["attempt"] == 2
    assert (await bridge.post(new.url + "/signature", signed(card, second["challenge"])))[0] == 202
    await settle(bridge.app)
    assert (await bridge.registration(rid)).state is State.SIGNATURE_VERIFIED


async def test_a_card_read_for_a_registration_not_started_yet_may_be_retried(bridge: Bridge) -> None:
    rid = "reg-early-0001"
    link = bridge.links.issue(rid, "card_read")
    status, body = await bridge.post(link.url + "/card-info", {"card": FACTS})
    assert (status, body["code"]) == (503, "unknown_registration")
    await bridge.web("registration.started", rid)
    assert (await bridge.post(link.url + "/card-info", {"card": FACTS}))[0] == 200


async def test_a_card_read_after_confirmation_is_refused_with_the_orchestrators_code(bridge: Bridge) -> None:
    rid = "reg-late-00001"
    await bridge.up_to_confirmed(rid)
    status, body = await bridge.post(bridge.links.issue(rid, "card_read").url + "/card-info", {"card": FACTS})
    assert (status, body["code"]) == (409, "event_not_accepted")
    assert (await bridge.registration(rid)).state is State.CONFIRMED


async def test_a_sign_link_before_any_challenge_has_nothing_to_sign(bridge: Bridge) -> None:
    rid = "reg-nochal-001"
    await bridge.web("registration.started", rid)
    status, body = await bridge.get(bridge.links.issue(rid, "sign", 0).url + "/challenge")
    assert (status, body["code"]) == (409, "challenge_not_issued")


async def test_a_sign_link_of_an_ended_registration_is_gone(bridge: Bridge, card: Card) -> None:
    rid = "reg-ended-0001"
    sign = await bridge.up_to_confirmed(rid)
    await bridge.web("registration.cancel_requested", rid)
    challenge = (await bridge.registration(rid)).challenge or ""
    for status, body in (
        await bridge.get(sign.url),
        await bridge.post(sign.url + "/signature", signed(card, challenge)),
    ):
        assert (status, body["code"]) == (410, "registration_ended")


@pytest.fixture
async def bridge_without_verifier(tmp_path: Path, clock: FakeClock, ca: DevCA) -> AsyncIterator[Bridge]:
    async for made in _bridge(tmp_path, clock, ca, verifier=False):
        yield made


async def test_a_signature_while_one_is_being_verified_gets_the_orchestrators_words(
    bridge_without_verifier: Bridge, card: Card
) -> None:
    bridge = bridge_without_verifier  # nobody answers: the first verification stays under way
    rid = "reg-pending-01"
    first = await bridge.up_to_confirmed(rid)
    second = await bridge.sign_link(rid)  # the same attempt, opened again from the page
    _, challenge = await bridge.get(first.url + "/challenge")
    assert (await bridge.post(first.url + "/signature", signed(card, challenge["challenge"])))[0] == 202
    status, body = await bridge.post(second.url + "/signature", signed(card, challenge["challenge"]))
    assert (status, body) == (
        409,
        {
            "code": "verification_in_progress",
            "message": messages.VERIFICATION_PENDING,
            "message_en": "the card's verification is not finished yet: try again shortly",
            "details": [],
        },
    )


# --- contention ------------------------------------------------------------------------------------


async def test_sixty_concurrent_card_reads_on_one_registration_all_apply_and_none_is_a_5xx(
    bridge: Bridge,
) -> None:
    """Each link is a step of its own (再読み取り): sixty writers of one registration at once, each
    of which changes it; they take turns instead of failing with version conflicts."""
    import asyncio

    rid = "reg-contend-001"
    await bridge.web("registration.started", rid)
    links = [bridge.links.issue(rid, "card_read") for _ in range(60)]
    answers = await asyncio.gather(*(bridge.post(link.url + "/card-info", {"card": FACTS}) for link in links))
    assert [status for status, _ in answers] == [200] * 60, [b for s, b in answers if s != 200][:3]
    stored = await bridge.app.store.load(rid)
    assert stored is not None
    assert (stored.registration.state, stored.version) == (State.CARD_READ, 61)
    assert (await bridge.kinds(rid)).count("card.info_read") == 60
