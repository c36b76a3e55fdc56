"""The xID profile (seed 003) end to end over HTTP: the app emulator with a dev CA card, the verifier,
a real SMTP server the confirmation mail goes through, the link the person opens, 利用を開始する."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.ca_revocation.devca import Card, DevCA, Person
from orchestrator import messages
from orchestrator import messages_xid as words
from orchestrator.model import State
from tests.e2e.xid_harness import FACILITY_TOKEN, HANAKO, NOW, OTHER_SECRET, TERMS, World, enabled, xid_world

ADDRESS = "hanako.xid-test@example.jp"


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def card(ca: DevCA) -> Card:
    return ca.issue(HANAKO, now=NOW)


@pytest.fixture
async def world(tmp_path: Path, ca: DevCA, card: Card) -> AsyncIterator[World]:
    async with xid_world(tmp_path, ca, card) as made:
        yield made


async def test_the_whole_xid_flow_over_http(world: World) -> None:
    phone = world.phone()
    started = await phone.start()
    assert started.status == 201
    assert started.body["state"] == "info_entered"
    assert started.body["terms"] == TERMS

    facts = await phone.read_certificate()
    assert facts.status == 200, facts.body
    assert facts.body["facts"] == {
        "name": "公的　花子",
        "sex": "2",
        "sex_label": "女性",
        "birth_date": "1966-11-10",
        "address": "東京都品川区広町２－１－１０",
    }
    assert facts.body["message"] == words.FACTS_NOTICE
    assert facts.body["message"].startswith(
        "これらの基本情報と、同意済みの利用規約への電子署名を送信します。"
    )

    to_sign = await phone.consent()
    assert to_sign.status == 200
    assert to_sign.body["attempt"] == 1
    assert (await phone.sign(to_sign.body)).status == 202
    verified = await phone.wait_for("signature_verified")
    assert verified.body["verification"]["status"] == "passed"

    activated = await phone.activate()
    assert activated.status == 200
    assert activated.body["state"] == "id_enabled"
    assert activated.body["municipality"]["status"] == "resolved"
    assert (activated.body["municipality"]["code"], activated.body["municipality"]["name"]) == (
        "131091",
        "東京都品川区",
    )

    queued = await phone.enter_email(ADDRESS)
    assert queued.status == 202, queued.body
    assert queued.body["warning"] is None
    link = await world.link(0)
    [mail] = await world.mails(1)
    assert mail["To"].addresses[0].addr_spec == ADDRESS
    assert mail["Subject"] == "【xID】メールアドレスの確認"

    too_soon = await phone.start_using()
    assert (too_soon.status, too_soon.body["code"]) == (409, "email_not_confirmed")
    assert too_soon.body["message"] == words.EMAIL_NOT_CONFIRMED

    page = await phone.open_link(link, press=False)
    assert (page.status, page.body["code"]) == (200, "link_valid")
    assert (await world.registration(phone.registration_id)).state is State.EMAIL_PENDING, (
        "GET never confirms"
    )
    confirmed = await phone.open_link(link)
    assert (confirmed.status, confirmed.body["code"]) == (200, "email_confirmed")

    done = await phone.start_using()
    assert done.status == 200, done.body
    assert done.body["state"] == "activated"
    status = await phone.call("GET", "")
    assert status.body["email"]["confirmed"] is True
    assert status.body["device_registered"] is True
    municipality = await phone.call("GET", "/municipality")
    assert municipality.body["code"] == "131091"
    assert municipality.body["note"] == words.MUNICIPALITY_WRONG
    history = await world.app.orchestrator.history(phone.registration_id)
    use = [(e.outcome, e.code) for e in history if e.event_type == "xid.use_started"]
    assert use == [("rejected", "email_not_confirmed"), ("applied", None)]
    assert history[-1].to_state == "activated"
    registration = await world.registration(phone.registration_id)
    assert registration.xid is not None
    assert registration.xid.device_key is not None
    assert registration.xid.device_key.public_key == phone.public_key()
    assert registration.signature is None, "the raw certificate is not kept after the decision"
    submitted = next(e for e in history if e.event_type == "xid.signature_submitted")
    assert base64.b64encode(world.card.der) not in submitted.event, "history keeps its fingerprint only"
    assert b"sha256:" in submitted.event


async def test_a_reused_link_and_an_expired_link_are_refused(world: World) -> None:
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    first = await world.link(0)
    assert (await phone.open_link(first)).status == 200
    reused = await phone.open_link(first)
    assert (reused.status, reused.body["code"], reused.body["message"]) == (409, "link_used", words.LINK_USED)
    assert (await phone.open_link(first, press=False)).body["code"] == "link_used"

    other = world.phone()
    await enabled(world, other)
    await other.enter_email("taro@example.jp")
    late = await world.link(1)
    world.clock.advance(timedelta(hours=24, seconds=1))
    expired = await other.open_link(late)
    assert (expired.status, expired.body["code"]) == (410, "link_expired")
    assert expired.body["message"] == words.LINK_EXPIRED
    assert (await world.registration(other.registration_id)).state is State.EMAIL_PENDING


async def test_reentering_sends_a_new_link_and_voids_the_old_one(world: World) -> None:
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email("hanako@exmaple.jp")  # a typo: 再入力する
    old = await world.link(0)
    again = await phone.enter_email(ADDRESS)
    assert again.body["attempt"] == 2
    new = await world.link(1)
    assert new != old
    [_, mail] = await world.mails(2)
    assert mail["To"].addresses[0].addr_spec == ADDRESS
    voided = await phone.open_link(old)
    assert (voided.status, voided.body["code"]) == (410, "link_voided")
    assert (await phone.open_link(new)).status == 200
    assert (await phone.start_using()).status == 200


async def test_a_made_up_link_is_unknown(world: World) -> None:
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    real = await world.link(0)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    assert (await phone.open_link(forged)).status == 404
    assert (await phone.open_link(f"{world.url}/app/v1/xid/email-confirmations/nonsense")).status == 404


async def test_a_carrier_address_is_accepted_with_the_seeds_warning(world: World) -> None:
    phone = world.phone()
    await enabled(world, phone)
    queued = await phone.enter_email("hanako@docomo.ne.jp")
    assert queued.status == 202
    assert (queued.body["warning_code"], queued.body["warning"]) == (
        "carrier_mail",
        words.CARRIER_MAIL_WARNING,
    )
    assert "特にdocomoのメールアドレスでは" in queued.body["warning"]
    await world.mails(1)  # mailed all the same
    status = await phone.call("GET", "")
    assert status.body["email"]["warning"] == words.CARRIER_MAIL_WARNING


async def test_a_card_that_is_not_the_one_read_cannot_sign(world: World) -> None:
    phone = world.phone()
    await phone.start()
    await phone.read_certificate()
    to_sign = (await phone.consent()).body
    other = world.ca.issue(Person(name="公的　太郎", sex="1"), now=NOW)
    refused = await phone.sign(to_sign, card=other)
    assert (refused.status, refused.body["code"]) == (409, "certificate_changed")
    assert refused.body["message"] == words.CERTIFICATE_CHANGED


async def test_a_signature_over_the_bare_challenge_is_refused_at_the_edge(world: World) -> None:
    phone = world.phone()
    await phone.start()
    await phone.read_certificate()
    to_sign = (await phone.consent()).body
    body = {
        "certificate": base64.b64encode(world.card.der).decode(),
        "signature": base64.b64encode(world.card.sign(base64.b64decode(to_sign["challenge"]))).decode(),
        "algorithm": "rsa-pkcs1v15-sha256",
    }
    refused = await phone.call("POST", "/signature", body)
    assert (refused.status, refused.body["code"]) == (400, "signature_not_over_challenge")
    assert refused.body["message"] == messages.possibly_revoked("50")


async def test_a_revoked_card_fails_and_a_new_challenge_is_offered(tmp_path: Path, ca: DevCA) -> None:
    revoked = ca.issue(HANAKO, now=NOW)
    ca.revoke(revoked, at=NOW - timedelta(minutes=5))
    async with xid_world(tmp_path, ca, revoked) as world:
        phone = world.phone()
        await phone.start()
        await phone.read_certificate()
        await phone.sign((await phone.consent()).body)
        failed = await phone.wait_for("confirmed")
        async with asyncio.timeout(10):
            while failed.body["verification"]["status"] != "failed":
                failed = await phone.call("GET", "")
        assert failed.body["verification"]["message"] == messages.possibly_revoked("23")
        early = await phone.activate()
        assert (early.status, early.body["message"]) == (409, messages.possibly_revoked("23"))
        again = await phone.call("GET", "/challenge")
        assert again.body["attempt"] == 2


async def test_outdated_terms_and_early_steps_are_refused(world: World) -> None:
    phone = world.phone()
    phone.terms = {"version": "2025-01", "sha256": "0" * 64}
    outdated = await phone.start()
    assert (outdated.status, outdated.body["code"]) == (409, "terms_outdated")
    assert outdated.body["message"] == words.TERMS_OUTDATED
    phone.terms = dict(TERMS)
    await phone.start()
    early = await phone.activate()
    assert (early.status, early.body["code"]) == (409, "not_yet_accepted")
    assert (await phone.enter_email(ADDRESS)).body["code"] == "not_yet_accepted"
    assert (await phone.call("GET", "/municipality")).status == 409


# --- credentials ----------------------------------------------------------------------------------


async def test_only_the_app_clients_own_credential_opens_its_registrations(world: World) -> None:
    phone = world.phone()
    await phone.start()
    assert (await phone.call("GET", "", secret="")).status == 401
    assert (await phone.call("GET", "", secret=FACILITY_TOKEN)).status == 401, (
        "a facility token opens nothing here"
    )
    assert (await phone.call("GET", "", secret=OTHER_SECRET)).status == 404, "another client's registration"
    web = f"{world.url}/v1/registrations/{phone.registration_id}"
    async with world.http.get(web, headers={"Authorization": f"Bearer {phone.secret}"}) as response:
        assert response.status == 401, "an app secret opens nothing on the facility API"
    async with world.http.get(web, headers={"Authorization": f"Bearer {FACILITY_TOKEN}"}) as response:
        assert response.status == 404, "an xID registration is no facility's"


# --- PIN1 and PIN2 never reach Honnin -------------------------------------------------------------

SECRET_FIELDS = [
    "pin1",
    "pin2",
    "pin",
    "PIN1",
    "PIN2",
    "password",
    "signing_password",
    "pin_code",
    "passcode",
]


def _device_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("field", SECRET_FIELDS)
async def test_no_xid_body_takes_a_pin_or_a_password(world: World, field: str) -> None:
    phone = world.phone()
    refused = await phone.call(
        "POST", f"{world.url}/app/v1/xid/registrations", {"terms": TERMS, field: "1234"}
    )
    assert (refused.status, refused.body["code"]) == (422, "invalid_body")
    nested = await phone.call(
        "POST", f"{world.url}/app/v1/xid/registrations", {"terms": {**TERMS, field: "123456"}}
    )
    assert nested.status == 422
    await phone.start()
    bodies = {
        "/certificate": {"certificate": base64.b64encode(world.card.der).decode()},
        "/consent": {"consent": True},
        "/signature": {"certificate": "MIIB", "signature": "c2ln", "algorithm": "rsa-pkcs1v15-sha256"},
        "/activation": {"device_public_key": _device_key()},
        "/email": {"email": ADDRESS},
        "/start-using": {},
    }
    before = len(await world.app.orchestrator.history(phone.registration_id))
    for path, body in bodies.items():
        answer = await phone.call("POST", path, {**body, field: "123456"})
        assert (answer.status, answer.body["code"]) == (422, "invalid_body"), path
        assert "123456" not in str(answer.body)
    assert len(await world.app.orchestrator.history(phone.registration_id)) == before, "nothing was submitted"
