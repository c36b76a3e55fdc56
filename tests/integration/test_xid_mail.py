"""The confirmation mail through its persisted schedule, against a real SMTP server (aiosmtpd):
delivered; a 4xx and then delivery from the swept deadline; a 5xx recorded and shown; retries that
run out; and a stored database that holds no personal fact and no address in clear."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.ca_revocation.devca import Card, DevCA
from orchestrator import messages_xid as words
from orchestrator.model_xid import EmailConfirmation
from tests.e2e.xid_harness import HANAKO, NOW, World, enabled, xid_world

ADDRESS = "hanako.schedule@example.jp"


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def card(ca: DevCA) -> Card:
    return ca.issue(HANAKO, now=NOW)


@pytest.fixture
async def world(tmp_path: Path, ca: DevCA, card: Card) -> AsyncIterator[World]:
    async with xid_world(tmp_path, ca, card, mail_retry_limit=2, mail_retry_base_seconds=30.0) as made:
        yield made


async def email(world: World, rid: str, *, until: str | None = None) -> EmailConfirmation:
    """The registration's e-mail record, once its delivery is `until` (when given)."""
    async with asyncio.timeout(10):
        while True:
            registration = await world.registration(rid)
            assert registration.xid is not None
            found = registration.xid.email
            if found is not None and (until is None or found.delivery == until):
                return found
            await asyncio.sleep(0.02)


async def test_delivered_on_the_first_try(world: World) -> None:
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    sent = await email(world, phone.registration_id, until="sent")
    assert (sent.retries, sent.retry_at, sent.code) == (0, None, None)
    [mail] = await world.mails(1)
    assert mail["Message-ID"] == f"<xid-email-confirmation.{phone.registration_id}.1@honnin.example>"


async def test_a_temporary_failure_is_retried_from_the_persisted_deadline_then_delivered(
    world: World,
) -> None:
    world.smtp.recorder.rcpt_replies.append("451 4.7.1 Greylisted, try again later")
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    waiting = await email(world, phone.registration_id, until="retrying")
    assert (waiting.retries, waiting.code) == (1, "mail_deferred")
    assert waiting.retry_at is not None
    assert timedelta(seconds=15) <= waiting.retry_at - world.clock.now() <= timedelta(seconds=30), (
        "2^0 × 30 s, jittered"
    )
    assert world.smtp.recorder.received == []
    status = await phone.call("GET", "")
    assert status.body["email"]["delivery"] == "retrying"

    world.clock.advance(timedelta(seconds=31))  # the sweeper finds the deadline and asks again
    sent = await email(world, phone.registration_id, until="sent")
    assert sent.retry_at is None
    [mail] = await world.mails(1)
    assert mail["Message-ID"] == f"<xid-email-confirmation.{phone.registration_id}.1@honnin.example>"
    link = await world.link(0)
    assert (await phone.open_link(link)).status == 200


async def test_a_permanent_failure_is_recorded_and_shown_and_reentering_recovers(world: World) -> None:
    world.smtp.recorder.rcpt_replies.append("550 5.1.1 <hanako.schedule@example.jp>: user unknown")
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    failed = await email(world, phone.registration_id, until="failed")
    assert (failed.code, failed.smtp_code, failed.retry_at) == ("mail_rejected", 550, None)
    status = await phone.call("GET", "")
    assert status.body["email"]["delivery"] == "failed"
    assert status.body["email"]["message"] == words.MAIL_REJECTED
    assert ADDRESS not in str(status.body), "the server's text quoted the address; it is not repeated"
    world.clock.advance(timedelta(hours=1))
    assert (await world.registration(phone.registration_id)).xid.email.delivery == "failed", "no retry"  # type: ignore[union-attr]

    await phone.enter_email("hanako.right@example.jp")  # 再入力する
    sent = await email(world, phone.registration_id, until="sent")
    assert sent.attempt == 2


async def test_temporary_failures_that_outlast_the_limit_fail_with_a_message(world: World) -> None:
    world.smtp.recorder.rcpt_replies.extend(["451 4.3.0 try later"] * 3)
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    for retries in (1, 2):
        waiting = await email(world, phone.registration_id, until="retrying")
        assert waiting.retries == retries
        assert waiting.retry_at is not None
        world.clock.advance(waiting.retry_at - world.clock.now() + timedelta(seconds=1))
        async with asyncio.timeout(10):
            while (await email(world, phone.registration_id)).retries == retries and retries < 2:
                await asyncio.sleep(0.02)
    failed = await email(world, phone.registration_id, until="failed")
    assert (failed.code, failed.message) == ("mail_deferred", words.MAIL_GAVE_UP)
    assert world.smtp.recorder.received == []


async def test_an_unanswered_request_is_asked_again(tmp_path: Path, ca: DevCA, card: Card) -> None:
    async with xid_world(tmp_path, ca, card, mail_enabled=False, mail_retry_limit=1) as world:
        phone = world.phone()
        await enabled(world, phone)
        await phone.enter_email(ADDRESS)
        first = await email(world, phone.registration_id)
        assert first.delivery == "pending"
        world.clock.advance(timedelta(minutes=2, seconds=1))
        async with asyncio.timeout(10):
            while (await email(world, phone.registration_id)).retries == 0:
                await asyncio.sleep(0.02)
        world.clock.advance(timedelta(minutes=2, seconds=1))
        failed = await email(world, phone.registration_id, until="failed")
        assert failed.code == "mail_unanswered"
        history = await world.app.orchestrator.history(phone.registration_id)
        assert sum(e.event_type == "registration.deadline_reached" for e in history) == 2


# --- nothing personal in clear at rest --------------------------------------------------------------


async def test_the_stored_database_holds_no_personal_fact_and_no_address_in_clear(world: World) -> None:
    phone = world.phone()
    await enabled(world, phone)
    await phone.enter_email(ADDRESS)
    link = await world.link(0)
    await phone.open_link(link)
    assert (await phone.start_using()).status == 200
    files = [p for p in (world.tmp / "data").iterdir() if p.name.startswith("honnin.db")]
    assert {p.name for p in files} >= {"honnin.db", "honnin.db-wal"}
    raw = b"".join(p.read_bytes() for p in files)
    secret = link.rsplit(".", 1)[1]
    forbidden = [
        ADDRESS,
        "hanako.schedule",
        "公的",
        "花子",
        "品川区広町",
        "広町２－１－１０",
        "19661110",
        "1966-11-10",
        secret,  # the link's secret: only its digest is kept
    ]
    for text in forbidden:
        for encoding in ("utf-8", "utf-16-le"):
            assert text.encode(encoding) not in raw, (text, encoding)
    assert b"registration.activated" in raw, "the clear columns are there: the check reads the right bytes"
