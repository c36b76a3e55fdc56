"""The facility web API over real HTTP on loopback: a worker with SQLite, the in-process bus and the
verifier trusting a development CA. The phone app's steps go straight to the orchestrator (its HTTP
API is tested on its own), signed by a dev CA card over the challenge read from the store."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote

import aiohttp
import pytest

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.card_bridge.links import Claims, Links, link_key
from adapters.clock import FakeClock
from adapters.http.common import MAX_BODY, application, serve
from adapters.web.app import add_web_routes
from honnin.bootstrap import App
from orchestrator import messages
from orchestrator.messages import CARD_NOT_READ_YET
from orchestrator.model import State
from schemas.api_web import RegistrationState
from schemas.references import namespaced_id
from tests import factory
from tests.integration.harness import settle, start

NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN_A = "facility-a-token-0123456789abcdef"
TOKEN_B = "facility-b-token-fedcba9876543210"
FACILITIES = {TOKEN_A: "facility-a", TOKEN_B: "facility-b"}
MISMATCH = "入力された利用者情報と読み取られたカードの情報が一致しません"
INDIVIDUAL_NUMBERS = ("123456789012", "1234-5678-9012", "１２３４ ５６７８ ９０１２")
ONE = "/v1/registrations/{}"


@dataclass
class Site:
    """The facility's page (HTTP) and the phone app (straight to the orchestrator) of one worker."""

    app: App
    base: str
    http: aiohttp.ClientSession
    links: Links
    clock: FakeClock

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = TOKEN_A,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with self.http.request(method, self.base + path, headers=sent, **kwargs) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else {}

    async def chunked(self, path: str, data: bytes) -> tuple[int, str]:
        """A body without Content-Length: the limit holds while it is read."""

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 4096):
                yield data[i : i + 4096]

        headers = {"Authorization": f"Bearer {TOKEN_A}", "Content-Type": "application/json"}
        async with self.http.post(self.base + path, data=chunks(), headers=headers) as response:
            return response.status, (await response.json())["code"]

    async def start(self, token: str = TOKEN_A, **changes: Any) -> tuple[str, dict[str, Any]]:
        status, body = await self.call(
            "POST", "/v1/registrations", {"applicant": factory.APPLICANT, **changes}, token=token
        )
        assert status == 201, body
        return body["registration_id"], body

    @staticmethod
    def internal(rid: str, facility: str = "facility-a") -> str:
        """The id Honnin keys a facility's registration by (the facility only ever sees `rid`)."""
        return namespaced_id(facility, rid)

    async def read_card(self, rid: str, card: dict[str, Any] = factory.CARD) -> None:
        """The app's step 2: the four facts read with the 4-digit PIN."""
        result = await self.app.orchestrator.handle(
            factory.event("card.info_read", self.internal(rid), payload={"card": card})
        )
        assert result.status == "applied", result

    async def up_to_confirmed(self, rid: str) -> dict[str, Any]:
        await self.read_card(rid)
        status, body = await self.call("POST", ONE.format(rid) + "/reflect")
        assert status == 200, body
        status, body = await self.call("POST", ONE.format(rid) + "/confirm", {"notice_acknowledged": True})
        assert status == 200, body
        link: dict[str, Any] = body["sign_link"]
        return link

    async def sign(self, rid: str, link: dict[str, Any], card: Card) -> None:
        """The app's step 5, through the sign link: the card signs the challenge of the link's attempt."""
        claims = self.claims(link, "sign")
        stored = await self.app.store.load(self.internal(rid))
        assert stored is not None
        assert stored.registration.challenge is not None
        assert (claims.registration_id, claims.attempt) == (
            self.internal(rid),
            stored.registration.challenge_attempt,
        )
        challenge = base64.b64decode(stored.registration.challenge)
        payload = {
            "certificate": base64.b64encode(card.der).decode(),
            "signature": base64.b64encode(card.sign(challenge)).decode(),
            "algorithm": "rsa-pkcs1v15-sha256",
        }
        result = await self.app.orchestrator.handle(
            factory.event("card.signature_submitted", self.internal(rid), payload=payload)
        )
        assert result.status == "applied", result
        await settle(self.app)

    def claims(self, link: dict[str, Any], step: str) -> Claims:
        """What the link binds, as the card bridge will read it."""
        assert link["deep_link"] == "honnin-jpki://open?link=" + quote(link["url"], safe="")
        assert (link["qr_svg_url"], link["qr_png_url"]) == (link["url"] + "/qr.svg", link["url"] + "/qr.png")
        return self.links.open(link["url"].rsplit("/", 1)[1], step)  # type: ignore[arg-type]

    async def state(self, rid: str) -> dict[str, Any]:
        """What the facility's page polls."""
        status, body = await self.call("GET", ONE.format(rid))
        assert status == 200, body
        return body

    async def facility_heard(self, rid: str, kind: str, facility: str = "facility-a") -> int:
        """How many `kind` events for `rid` the facility's feed holds (what its webhook is sent)."""
        await settle(self.app)
        events = await self.app.store.feed(facility, 0, 10_000)
        internal = self.internal(rid, facility)
        heard = [e for e in events if e.event_type == kind and e.registration_id == internal]
        assert all(json.loads(e.body)["registration_id"] == rid for e in heard), "its own id, not ours"
        return len(heard)

    async def history(self, rid: str, facility: str = "facility-a") -> list[tuple[str, str]]:
        """What the orchestrator recorded: proof that a retry or a refused call spent nothing."""
        entries = await self.app.orchestrator.history(self.internal(rid, facility))
        return [(h.event_type, h.outcome) for h in entries]


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def good_card(ca: DevCA) -> Card:
    return ca.issue(Person(), now=NOW)


@asynccontextmanager
async def running(tmp: Path, ca: DevCA, **changes: Any) -> AsyncIterator[Site]:
    """A verifying worker trusting `ca`, its CRL as of now, and the facility API on a free port."""
    (root := tmp / "root.der").write_bytes(ca.der)
    (crl := tmp / "crl.der").write_bytes(ca.crl(this_update=NOW - timedelta(minutes=1)))
    clock = FakeClock(NOW)
    settings: dict[str, Any] = {
        "verifier_enabled": True,
        "trust_anchor_files": [root],
        "revocation": "crl",
        "crl_files": [crl],
    }
    app = await start(tmp / "data", clock, **(settings | changes))
    try:
        links = Links(link_key(bytes(range(32))), "http://127.0.0.1", clock)
        http = application()
        add_web_routes(http, orchestrator=app.orchestrator, links=links, clock=clock, facilities=FACILITIES)
        async with serve(http) as server, aiohttp.ClientSession() as session:
            links.rebase(server.url)  # the phone reaches the bridge on the same server
            yield Site(app, server.url, session, links, clock)
    finally:
        await app.close()


@pytest.fixture
async def site(tmp_path: Path, ca: DevCA) -> AsyncIterator[Site]:
    async with running(tmp_path, ca) as started:
        yield started


# -- the seed's flow ------------------------------------------------------------------------------


async def test_the_whole_facility_flow_ends_activated_and_the_facility_hears_it_once(
    site: Site, good_card: Card
) -> None:
    rid, started = await site.start()
    assert started["state"] == "info_entered"
    assert re.fullmatch(r"reg-[a-p]{32}", rid), "letters only: a generated id never holds 12 digits"
    assert site.claims(started["card_read_link"], "card_read").registration_id == site.internal(rid)
    assert (await site.state(rid))["state"] == "info_entered"

    await site.read_card(rid)
    status, reflected = await site.call("POST", ONE.format(rid) + "/reflect")
    assert (status, reflected["message"]) == (200, "マイナンバーカードの読み取りが完了しました。")
    assert reflected["card"] == factory.CARD

    status, confirmed = await site.call(
        "POST", ONE.format(rid) + "/confirm", {"notice_acknowledged": True, "phone": "090-1111-2222"}
    )
    assert (status, confirmed["state"], confirmed["attempt"]) == (200, "confirmed", 1)
    await site.sign(rid, confirmed["sign_link"], good_card)
    verified = await site.state(rid)
    assert verified["state"] == "signature_verified"
    assert verified["verification"]["status"] == "passed"

    status, completed = await site.call("POST", ONE.format(rid) + "/complete")
    assert (status, completed["state"]) == (200, "activated")
    assert await site.facility_heard(rid, "registration.activated") == 1

    status, raw = await site.call("GET", ONE.format(rid))
    assert raw["state"] == "activated"
    assert raw["activated_at"] == completed["activated_at"]
    text = json.dumps(raw, ensure_ascii=False)
    assert not any(v in text for v in (factory.NAME, factory.ADDRESS, "hanako", "1990-04-01", "090-1111"))


async def test_reflect_before_the_card_read_is_the_seeds_error_and_early_steps_wait(site: Site) -> None:
    rid, _ = await site.start()
    status, body = await site.call("POST", ONE.format(rid) + "/reflect")
    assert status == 409
    assert body == {
        "code": "card_info_not_read",
        "message": (
            "情報の取得に失敗しました。アプリで読み取りが完了してから「情報を反映する」を押してください。"
        ),
        "message_en": "the card has not been read yet: read it with the app, then press 情報を反映する",
        "details": [
            {
                "type": "remedy",
                "cause": "マイナンバーカードの情報取得ができませんでした。",
                "remedy": (
                    "再度、アプリからマイナンバーカードを読み取り、②の「情報を反映する」を押してください。"
                ),
                "remedy_en": "read the card with the app again, then press ② 情報を反映する",
            }
        ],
    }
    status, body = await site.call("POST", ONE.format(rid) + "/confirm", {"notice_acknowledged": True})
    assert (status, body["code"], body["message"]) == (409, "not_yet_accepted", CARD_NOT_READ_YET)
    status, body = await site.call("POST", ONE.format(rid) + "/complete")
    assert (status, body["code"], body["message"]) == (
        409,
        "not_yet_accepted",
        messages.SIGNATURE_NOT_SUBMITTED,
    )
    status, body = await site.call("POST", ONE.format(rid) + "/sign-link")
    assert (status, body["code"]) == (409, "not_signable")
    assert await site.history(rid) == [("registration.started", "applied")], "early steps spend nothing"

    await site.read_card(rid)
    status, body = await site.call("POST", ONE.format(rid) + "/reflect")
    assert (status, body["message"]) == (200, messages.CARD_INFO_REFLECTED)


async def test_another_persons_card_is_a_mismatch_then_the_right_card_signs_through_a_fresh_link(
    site: Site, ca: DevCA, good_card: Card
) -> None:
    rid, _ = await site.start()
    first = await site.up_to_confirmed(rid)
    await site.sign(rid, first, ca.issue(Person(name="公的　太郎", sex="1"), now=NOW))
    status, body = await site.call("POST", ONE.format(rid) + "/complete")
    assert (status, body["code"], body["message"]) == (409, "identity_mismatch", MISMATCH)
    [remedy] = [d for d in body["details"] if d["type"] == "remedy"]
    assert remedy["remedy"] == messages.remedy_for(MISMATCH).remedy  # type: ignore[union-attr]
    verification = (await site.state(rid))["verification"]
    assert (verification["status"], verification["code"], verification["message"]) == (
        "failed",
        "identity_mismatch",
        MISMATCH,
    )
    assert verification["remedy"]["remedy"] == remedy["remedy"]
    assert verification["remedy"]["cause"] == remedy["cause"]

    status, fresh = await site.call("POST", ONE.format(rid) + "/sign-link")
    assert (status, fresh["attempt"]) == (200, 2)
    assert site.claims(first, "sign").attempt == 1, "the old link is for a spent challenge"
    await site.sign(rid, fresh["sign_link"], good_card)
    status, body = await site.call("POST", ONE.format(rid) + "/complete")
    assert (status, body["state"]) == (200, "activated")


async def test_an_expired_certificate_is_code_21(site: Site, ca: DevCA) -> None:
    expired = ca.issue(Person(), not_before=NOW - timedelta(days=30), valid_for=timedelta(days=29))
    rid, _ = await site.start()
    await site.sign(rid, await site.up_to_confirmed(rid), expired)
    status, body = await site.call("POST", ONE.format(rid) + "/complete")
    assert (status, body["code"]) == (409, "21")
    assert body["message"] == "失効済みのマイナンバーカードの可能性があります。(Code: 21)"
    assert (
        body["message_en"] == "the card may have been revoked (Code: 21): the signing certificate has expired"
    )
    [remedy] = body["details"]
    assert (remedy["type"], remedy["remedy"], remedy["note"]) == (
        "remedy",
        messages.RENEW_CARD,
        messages.RENEW_CARD_NOTE,
    )


async def test_a_revoked_certificate_is_code_23(tmp_path: Path) -> None:
    ca = DevCA.create(now=NOW - timedelta(days=1))  # its own CA: revoking must not touch other tests
    revoked = ca.issue(Person(), now=NOW)
    ca.revoke(revoked, at=NOW - timedelta(minutes=2))
    async with running(tmp_path, ca) as site:
        rid, _ = await site.start()
        await site.sign(rid, await site.up_to_confirmed(rid), revoked)
        status, body = await site.call("POST", ONE.format(rid) + "/complete")
        assert (status, body["code"]) == (409, "23")
        assert body["message"] == "失効済みのマイナンバーカードの可能性があります。(Code: 23)"


async def test_missing_revocation_data_is_retried_then_parked_as_code_40(
    tmp_path: Path, ca: DevCA, good_card: Card
) -> None:
    async with running(tmp_path, ca, crl_files=[]) as site:  # no revocation data at all: 40
        rid, _ = await site.start()
        await site.sign(rid, await site.up_to_confirmed(rid), good_card)
        verification = (await site.state(rid))["verification"]
        assert (verification["status"], verification["code"]) == ("retrying", "40")
        assert verification["message"] == messages.VERIFICATION_PENDING
        early = {"Idempotency-Key": "complete-early"}
        status, body = await site.call("POST", ONE.format(rid) + "/complete", headers=early)
        assert (status, body["code"], body["message"]) == (
            409,
            "verification_in_progress",
            "マイナンバーカードの確認が完了していません。しばらくしてから再度お試しください。",
        )
        status, body = await site.call("POST", ONE.format(rid) + "/sign-link")
        assert (status, body["code"]) == (409, "verification_in_progress")

        for _ in range(3):
            site.clock.advance(timedelta(minutes=5))
            await site.app.runtime.sweeper.sweep_once()
            await settle(site.app)
        assert (await site.state(rid))["verification"]["status"] == "parked"
        status, body = await site.call("POST", ONE.format(rid) + "/complete", headers=early)
        assert (status, body["code"]) == (409, "verification_in_progress"), "the same key: the first answer"
        status, body = await site.call("POST", ONE.format(rid) + "/complete")
        assert (status, body["code"]) == (409, "40")
        assert body["message"] == "失効済みのマイナンバーカードの可能性があります。(Code: 40)"
        status, body = await site.call("POST", ONE.format(rid) + "/sign-link")
        assert (status, body["attempt"]) == (200, 2), "a parked verification may be signed again"


async def test_cancel_ends_the_registration_for_good(site: Site) -> None:
    rid, _ = await site.start()
    status, body = await site.call("DELETE", ONE.format(rid))
    assert (status, body) == (202, {"registration_id": rid, "state": "cancelled"})
    assert (await site.state(rid))["state"] == "cancelled"
    assert await site.facility_heard(rid, "registration.cancelled") == 1
    status, body = await site.call("DELETE", ONE.format(rid), {"reason": "twice"})
    assert (status, body["code"]) == (409, "event_not_accepted")
    status, body = await site.call("POST", ONE.format(rid) + "/reflect")
    assert (status, body["code"]) == (409, "registration_ended")


# -- retries are the same event -------------------------------------------------------------------


async def test_a_retried_start_with_the_same_request_id_is_one_registration(site: Site) -> None:
    rid, first = await site.start(request_id="form-submit-0001")
    again, second = await site.start(request_id="form-submit-0001")
    assert again == rid
    assert second["state"] == first["state"] == "info_entered"
    assert await site.history(rid) == [("registration.started", "applied")]

    other, _ = await site.start()
    elsewhere, _ = await site.start(token=TOKEN_B, request_id="form-submit-0001")
    assert len({rid, other, elsewhere}) == 3, "no key, or another facility's key, is another registration"

    status, body = await site.call(
        "POST",
        "/v1/registrations",
        {
            "applicant": factory.APPLICANT,
            "request_id": "form-submit-0001",
            "registration_id": "reg-another-01",
        },
    )
    assert (status, body["code"]) == (409, "request_id_reused")


async def test_a_client_registration_id_is_kept_and_cannot_be_taken_twice_by_one_facility(
    site: Site,
) -> None:
    rid, _ = await site.start(registration_id="reg-client-0001")
    assert rid == "reg-client-0001"
    assert (await site.start(registration_id=rid))[0] == rid, "a retry of the same start"
    status, body = await site.call(
        "POST",
        "/v1/registrations",
        {"applicant": factory.APPLICANT, "registration_id": rid, "request_id": "another-form-1"},
    )
    assert (status, body["code"]) == (409, "registration_id_taken"), "another request, the same id"
    assert await site.history(rid) == [("registration.started", "applied")]


async def test_two_facilities_may_use_the_same_id_and_neither_sees_the_other(site: Site) -> None:
    rid, _ = await site.start(registration_id="reg-shared-0001")
    theirs, started = await site.start(TOKEN_B, registration_id=rid)
    assert (theirs, started["state"]) == (rid, "info_entered"), "facility b's own registration"
    status, _ = await site.call("DELETE", ONE.format(rid), token=TOKEN_B)
    assert status == 202
    assert (await site.state(rid))["state"] == "info_entered", "facility a's is untouched"
    assert (await site.call("GET", ONE.format(rid), token=TOKEN_B))[1]["state"] == "cancelled"
    assert await site.history(rid) == [("registration.started", "applied")]
    assert [e for e, _ in await site.history(rid, "facility-b")] == [
        "registration.started",
        "registration.cancel_requested",
    ]
    assert await site.facility_heard(rid, "registration.cancelled", "facility-b") == 1
    assert await site.facility_heard(rid, "registration.cancelled") == 0


async def test_another_facilitys_id_answers_exactly_as_an_unused_one(site: Site) -> None:
    rid, _ = await site.start(registration_id="reg-only-a-0001")
    reads: list[str] = []
    load = site.app.store.load

    async def recorded(registration_id: str):  # the store reads each lookup makes, in order
        reads.append(registration_id)
        return await load(registration_id)

    site.app.store.load = recorded  # type: ignore[method-assign]
    answers = {}
    for probe in (rid, "reg-never-used-01"):
        reads.clear()
        calls = [
            await site.call(method, ONE.format(probe) + path, body, token=TOKEN_B)
            for method, path, body in (
                ("GET", "", None),
                ("POST", "/reflect", None),
                ("POST", "/confirm", {"notice_acknowledged": True}),
                ("POST", "/complete", None),
                ("DELETE", "", None),
            )
        ]
        answers[probe] = (calls, len(reads), [r == probe for r in reads])
    assert answers[rid] == answers["reg-never-used-01"], "same answers, same reads: nothing to tell apart"
    assert {status for status, _ in answers[rid][0]} == {404}
    assert answers[rid][1] == 10, "two point reads per call: the facility's derived id, then the legacy id"
    assert (await site.state(rid))["state"] == "info_entered"


async def test_retried_confirm_and_complete_with_the_same_idempotency_key_are_one_event(
    site: Site, good_card: Card
) -> None:
    rid, _ = await site.start()
    await site.read_card(rid)
    confirm = {"Idempotency-Key": "confirm-1"}
    answers = [
        await site.call("POST", ONE.format(rid) + "/confirm", {"notice_acknowledged": True}, headers=confirm)
        for _ in range(2)
    ]
    assert [(s, b["state"], b["attempt"]) for s, b in answers] == [(200, "confirmed", 1)] * 2
    await site.sign(rid, answers[1][1]["sign_link"], good_card)

    complete = {"Idempotency-Key": "complete-1"}
    for _ in range(2):
        status, body = await site.call("POST", ONE.format(rid) + "/complete", headers=complete)
        assert (status, body["state"]) == (200, "activated")
    assert await site.facility_heard(rid, "registration.activated") == 1
    assert [e for e in await site.history(rid) if e[0] != "verification.completed"] == [
        ("registration.started", "applied"),
        ("card.info_read", "applied"),
        ("registration.confirmed", "applied"),
        ("card.signature_submitted", "applied"),
        ("registration.complete_requested", "applied"),
    ]
    status, body = await site.call("POST", ONE.format(rid) + "/complete", headers={"Idempotency-Key": "x y"})
    assert (status, body["code"]) == (400, "invalid_idempotency_key")


@pytest.mark.parametrize("key", ["key-1234.5678:9012", "k1-2-3-4-5-6-7-8-9-0-1-2", "123456789012"])
async def test_an_idempotency_key_with_twelve_digits_in_any_spelling_is_refused(site: Site, key: str) -> None:
    rid, _ = await site.start()
    status, body = await site.call("DELETE", ONE.format(rid), headers={"Idempotency-Key": key})
    assert (status, body["code"]) == (400, "invalid_idempotency_key")
    assert key not in json.dumps(body)
    assert (await site.state(rid))["state"] == "info_entered"
    status, _ = await site.call("DELETE", ONE.format(rid), headers={"Idempotency-Key": "key-1234.5678:901"})
    assert status == 202, "eleven digits pass"


@pytest.mark.parametrize("field", ["registration_id", "request_id"])
@pytest.mark.parametrize("value", ["reg_1234_5678_9012", "r-1234-5678-9012", "a1b2c3d4e5f6g7h8i9j0k1l2"])
async def test_a_chosen_id_with_twelve_digits_is_refused(site: Site, field: str, value: str) -> None:
    body: dict[str, Any] = {"applicant": dict(factory.APPLICANT), field: value}
    status, answer = await site.call("POST", "/v1/registrations", body)
    assert (status, answer["code"]) == (422, "invalid_body")
    screened = "" if "1234" in value else field  # a run of 12 is refused by the body-wide screen first
    assert [d["loc"] for d in answer["details"]] == [screened]
    assert value not in json.dumps(answer)


async def test_a_path_id_with_twelve_digits_is_a_404_like_any_unknown_one(site: Site) -> None:
    status, body = await site.call("GET", ONE.format("reg_1234_5678_9012"))
    assert (status, body["code"]) == (404, "not_found")


# -- abuse ----------------------------------------------------------------------------------------

ROUTES = [
    ("GET", ""),
    ("DELETE", ""),
    ("POST", "/reflect"),
    ("POST", "/confirm"),
    ("POST", "/sign-link"),
    ("POST", "/complete"),
]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN_A}", "Bearer "]
)
async def test_no_token_or_a_wrong_token_is_401(site: Site, authorization: str | None) -> None:
    rid, _ = await site.start()
    headers = {"Authorization": authorization} if authorization is not None else {}
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/registrations", {"applicant": factory.APPLICANT, "registration_id": "reg-unauth-01"})
    ]
    attempts += [
        (method, ONE.format(rid) + suffix, {"notice_acknowledged": True}) for method, suffix in ROUTES
    ]
    for method, path, body in attempts:
        status, answer = await site.call(method, path, body, token=None, headers=headers)
        assert (status, answer["code"]) == (401, "unauthorized"), (method, path)
    assert await site.app.store.load("reg-unauth-01") is None
    assert await site.history(rid) == [("registration.started", "applied")]


async def test_another_facilitys_registration_is_404_like_a_missing_one(site: Site) -> None:
    rid, _ = await site.start()
    await site.read_card(rid)
    _, missing = await site.call("GET", ONE.format("reg-missing-0001"), token=TOKEN_B)
    for method, suffix in ROUTES:
        status, body = await site.call(
            method, ONE.format(rid) + suffix, {"notice_acknowledged": True}, token=TOKEN_B
        )
        assert (status, body) == (404, missing), (method, suffix)
    assert missing == {
        "code": "not_found",
        "message": "指定された登録またはページが見つかりません。",
        "message_en": "no such registration",
        "details": [],
    }
    assert (await site.state(rid))["state"] == "card_read"
    status, body = await site.call("GET", ONE.format("123412341234"))
    assert (status, "1234" in json.dumps(body)) == (404, False)


async def test_malformed_json_wrong_content_type_and_oversized_bodies(site: Site) -> None:
    json_type = {"Content-Type": "application/json"}
    status, body = await site.call("POST", "/v1/registrations", data=b'{"applicant": {', headers=json_type)
    assert (status, body["code"]) == (400, "malformed_json")
    status, body = await site.call(
        "POST", "/v1/registrations", data=b"login_id=x", headers={"Content-Type": "text/plain"}
    )
    assert (status, body["code"]) == (415, "unsupported_media_type")
    huge = {"applicant": {**factory.APPLICANT, "address": "東" * MAX_BODY}}
    status, body = await site.call("POST", "/v1/registrations", huge)
    assert (status, body["code"]) == (413, "body_too_large")
    assert await site.chunked("/v1/registrations", b" " * (MAX_BODY + 1)) == (413, "body_too_large")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/registrations", {"applicant": {**factory.APPLICANT, "login_id": 5}}),
        ("/v1/registrations", {"applicant": {**factory.APPLICANT, "identity_document": "passport"}}),
        ("/v1/registrations", {"applicant": None}),
        ("/v1/registrations", []),
        ("/v1/registrations", {"applicant": factory.APPLICANT, "registration_id": "short"}),
        ("{rid}/confirm", {"notice_acknowledged": False}),
        ("{rid}/confirm", {"notice_acknowledged": "yes"}),
        ("{rid}/confirm", {"notice_acknowledged": True, "phone": 31}),
    ],
)
async def test_wrong_types_are_422(site: Site, path: str, body: Any) -> None:
    rid, _ = await site.start()
    await site.read_card(rid)
    status, answer = await site.call("POST", path.format(rid=ONE.format(rid)), body)
    assert (status, answer["code"]) == (422, "invalid_body")
    assert answer["details"], "where and why"
    assert (await site.state(rid))["state"] == "card_read"


@pytest.mark.parametrize(
    "where", [*factory.APPLICANT, "registration_id", "request_id", "unknown key", "confirm.phone"]
)
@pytest.mark.parametrize("number", INDIVIDUAL_NUMBERS)
async def test_the_individual_number_anywhere_is_422_without_echo_and_nothing_is_created(
    site: Site, where: str, number: str
) -> None:
    rid = "reg-privacy-001"
    body: dict[str, Any] = {"applicant": dict(factory.APPLICANT), "registration_id": rid}
    path = "/v1/registrations"
    if where in factory.APPLICANT:
        body["applicant"][where] = f"番号 {number}"
    elif where == "unknown key":
        body["applicant"][number] = "x"
    elif where == "confirm.phone":
        await site.start(registration_id=rid)
        await site.read_card(rid)
        path, body = ONE.format(rid) + "/confirm", {"notice_acknowledged": True, "phone": number}
    else:
        body[where] = number
    status, answer = await site.call("POST", path, body)
    assert (status, answer["code"]) == (422, "invalid_body")
    text = json.dumps(answer, ensure_ascii=False)
    assert number not in text
    assert "5678" not in text
    assert "５６７８" not in text
    if where == "confirm.phone":
        assert (await site.state(rid))["state"] == "card_read"
    else:
        assert await site.app.store.load(rid) is None


async def test_unknown_fields_are_refused_and_never_named(site: Site) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"applicant": {**factory.APPLICANT, "password": "secret12"}}, "applicant.<unknown>"),
        ({"applicant": factory.APPLICANT, "password": "secret12"}, "<unknown>"),
        ({"applicant": {**factory.APPLICANT, "東京都千代田区": "x"}}, "applicant.<unknown>"),
        ({"applicant": factory.APPLICANT, "hanako_at_example_jp": "x"}, "<unknown>"),
    ]
    for body, loc in cases:
        status, answer = await site.call(
            "POST", "/v1/registrations", {**body, "registration_id": "reg-extra-001"}
        )
        assert (status, answer["code"]) == (422, "invalid_body")
        assert [(d["loc"], d["type"]) for d in answer["details"]] == [(loc, "extra_forbidden")]
        said = json.dumps(answer, ensure_ascii=False)
        assert "secret12" not in said
        assert "password" not in said
        assert "東京都" not in said
        assert "hanako" not in said
    assert await site.app.store.load("reg-extra-001") is None


def test_the_api_knows_every_state_a_registration_can_be_in() -> None:
    assert set(get_args(RegistrationState)) == {s.value for s in State} - {"new"}


# -- contention -----------------------------------------------------------------------------------


async def test_sixty_concurrent_steps_on_one_registration_get_no_5xx(site: Site) -> None:
    """Different requests: one confirm applies, the rest are the right 409; the same request: one event."""
    import asyncio

    rid, _ = await site.start()
    await site.read_card(rid)
    path = ONE.format(rid) + "/confirm"
    body = {"notice_acknowledged": True}
    different = await asyncio.gather(
        *(site.call("POST", path, body, headers={"Idempotency-Key": f"confirm-{n}"}) for n in range(60))
    )
    statuses = sorted(status for status, _ in different)
    assert statuses == [200] + [409] * 59, statuses
    assert {b["code"] for s, b in different if s == 409} == {"event_not_accepted"}

    same = await asyncio.gather(
        *(site.call("DELETE", ONE.format(rid), headers={"Idempotency-Key": "cancel-once"}) for _ in range(60))
    )
    assert [status for status, _ in same] == [202] * 60, "one cancel, answered sixty times"
    history = await site.history(rid)
    assert history.count(("registration.confirmed", "applied")) == 1
    assert history.count(("registration.cancel_requested", "applied")) == 1
    assert len(history) == 2 + 60 + 1, "started, card read, 60 confirms (one applied), one cancel"


async def test_a_registration_in_the_quarantine_is_unavailable_to_its_facility_only(site: Site) -> None:
    from tests.contract.stores import Raw

    rid, _ = await site.start(registration_id="reg-broken-0001")
    other, _ = await site.start()
    await Raw(site.app.store).tamper("registration", site.internal(rid))
    status, body = await site.call("GET", ONE.format(rid))
    assert (status, body["code"]) == (503, "registration_unavailable")
    assert rid not in json.dumps(body)
    status, _ = await site.call("GET", ONE.format(rid), token=TOKEN_B)
    assert status == 404, "another facility sees what it sees for any id it does not own"
    assert (await site.state(other))["state"] == "info_entered", "the rest is served"
    assert (await site.start(registration_id="reg-fresh-00001"))[1]["state"] == "info_entered"
    [entry] = await site.app.store.list_quarantine()
    assert (entry.kind, entry.key) == ("registration", site.internal(rid))


async def test_a_step_reads_its_registration_once_and_hands_that_read_on(site: Site, good_card: Card) -> None:
    """Issue 15: the read that finds the facility's registration is the one the orchestrator applies
    the step to, and the answer comes from the step's own result, not from a further read."""
    rid, _ = await site.start()
    await site.read_card(rid)
    reads: list[str] = []
    load = site.app.store.load

    async def recorded(registration_id: str):  # type: ignore[no-untyped-def]
        reads.append(registration_id)
        return await load(registration_id)

    site.app.store.load = recorded  # type: ignore[method-assign]
    status, confirmed = await site.call("POST", ONE.format(rid) + "/confirm", {"notice_acknowledged": True})
    assert (status, confirmed["state"], confirmed["attempt"]) == (200, "confirmed", 1)
    assert reads == [site.internal(rid)], "one read per step"
    site.app.store.load = load  # type: ignore[method-assign]
    await site.sign(rid, confirmed["sign_link"], good_card)
    site.app.store.load = recorded  # type: ignore[method-assign]
    reads.clear()
    status, completed = await site.call("POST", ONE.format(rid) + "/complete")
    assert (status, completed["state"]) == (200, "activated")
    assert reads == [site.internal(rid)]
    assert [kind for kind, _ in await site.history(rid)][-2:] == [
        "verification.completed",
        "registration.complete_requested",
    ]
