"""Whole registrations with real signatures: the dev CA's cards, its CRL file or OCSP responder,
the verifier serving its queue in the same worker, and the seed's outcomes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from cryptography import x509

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.clock import FakeClock
from honnin.bootstrap import App
from orchestrator import messages
from orchestrator.model import State
from tests import factory
from tests.integration.harness import publish, settle, start

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    ca: DevCA
    good: Card
    tmp: Path

    def crl_file(self) -> Path:
        path = self.tmp / "crl.der"
        path.write_bytes(self.ca.crl(this_update=NOW - timedelta(minutes=1)))
        return path

    def root_file(self) -> Path:
        path = self.tmp / "root.der"
        path.write_bytes(self.ca.der)
        return path


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def good_card(ca: DevCA) -> Card:
    return ca.issue(Person(), now=NOW)


@pytest.fixture
def world(ca: DevCA, good_card: Card, tmp_path: Path) -> World:
    return World(ca, good_card, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


async def verifying(world: World, clock: FakeClock, **changes: object) -> App:
    settings = {
        "verifier_enabled": True,
        "trust_anchor_files": [world.root_file()],
        "revocation": "crl",
        "crl_files": [world.crl_file()],
    }
    settings.update(changes)
    return await start(world.tmp / "data", clock, **settings)


async def challenge_of(app: App, rid: str) -> bytes:
    stored = await app.store.load(rid)
    assert stored is not None
    assert stored.registration.challenge is not None
    return base64.b64decode(stored.registration.challenge)


async def sign_with(app: App, rid: str, card: Card, *, challenge: bytes | None = None) -> None:
    """The phone app: sign the registration's challenge with the card's signing key."""
    data = challenge if challenge is not None else await challenge_of(app, rid)
    payload = {
        "certificate": base64.b64encode(card.der).decode(),
        "signature": base64.b64encode(card.sign(data)).decode(),
        "algorithm": "rsa-pkcs1v15-sha256",
    }
    await publish(app, factory.event("card.signature_submitted", rid, payload=payload))
    await settle(app)


async def up_to_confirmed(app: App, rid: str, card: dict[str, object] | None = None) -> None:
    for kind in factory.FLOW[:3]:
        payload = {"card": card} if kind == "card.info_read" and card else factory.PAYLOADS[kind]
        await publish(app, factory.event(kind, rid, payload=payload))
        await settle(app)


async def complete(app: App, rid: str) -> tuple[str, str | None]:
    result = await app.orchestrator.handle(factory.event("registration.complete_requested", rid))
    return result.status, result.message


async def verification_of(app: App, rid: str):
    stored = await app.store.load(rid)
    assert stored is not None
    return stored.registration


@pytest.fixture
async def app(world: World, clock: FakeClock) -> AsyncIterator[App]:
    started = await verifying(world, clock)
    yield started
    await started.close()


async def test_a_valid_card_is_verified_and_the_account_activated(app: App, world: World) -> None:
    rid = "reg-valid-001"
    await up_to_confirmed(app, rid)
    await sign_with(app, rid, world.good)
    registration = await verification_of(app, rid)
    assert registration.state is State.SIGNATURE_VERIFIED
    assert registration.verification is not None
    assert registration.verification.certificate_fingerprint is not None
    assert registration.signature is None, "the raw certificate is not kept after the decision"
    assert await complete(app, rid) == ("applied", None)
    assert (await verification_of(app, rid)).state is State.ACTIVATED


async def test_another_persons_card_is_a_mismatch_and_the_person_may_sign_again(
    app: App, world: World
) -> None:
    rid = "reg-mismatch-1"
    other = world.ca.issue(Person(name="公的　太郎", sex="1"), now=NOW)
    await up_to_confirmed(app, rid)
    await sign_with(app, rid, other)
    registration = await verification_of(app, rid)
    assert registration.state is State.CONFIRMED
    assert registration.verification is not None
    assert registration.verification.code == "identity_mismatch"
    assert await complete(app, rid) == (
        "rejected",
        "入力された利用者情報と読み取られたカードの情報が一致しません",
    )
    await sign_with(app, rid, world.good)  # the right card, a fresh challenge
    assert (await verification_of(app, rid)).state is State.SIGNATURE_VERIFIED


async def test_an_expired_certificate_is_code_21(app: App, world: World) -> None:
    rid = "reg-expired-01"
    expired = world.ca.issue(Person(), not_before=NOW - timedelta(days=30), valid_for=timedelta(days=29))
    await up_to_confirmed(app, rid)
    await sign_with(app, rid, expired)
    assert await complete(app, rid) == (
        "rejected",
        "失効済みのマイナンバーカードの可能性があります。(Code: 21)",
    )


async def test_a_certificate_revoked_on_the_crl_is_code_23(world: World, clock: FakeClock) -> None:
    revoked = world.ca.issue(Person(), now=NOW)
    world.ca.revoke(revoked, at=NOW - timedelta(minutes=2))
    app = await verifying(world, clock)
    try:
        rid = "reg-revoked-1"
        await up_to_confirmed(app, rid)
        await sign_with(app, rid, revoked)
        assert await complete(app, rid) == ("rejected", messages.possibly_revoked("23"))
    finally:
        await app.close()
        world.ca.revoked.clear()


async def test_a_signature_over_another_registrations_challenge_is_refused(app: App, world: World) -> None:
    await up_to_confirmed(app, "reg-victim-01")
    await up_to_confirmed(app, "reg-replay-01")
    stolen = await challenge_of(app, "reg-victim-01")
    await sign_with(app, "reg-replay-01", world.good, challenge=stolen)
    registration = await verification_of(app, "reg-replay-01")
    assert registration.verification is not None
    assert (registration.state, registration.verification.code) == (State.CONFIRMED, "50")


async def test_a_card_without_non_repudiation_is_code_32(app: App, world: World) -> None:
    rid = "reg-usage-001"
    card = world.ca.issue(Person(), now=NOW, key_usage=("digital_signature",))
    await up_to_confirmed(app, rid)
    await sign_with(app, rid, card)
    registration = await verification_of(app, rid)
    assert registration.verification is not None
    assert registration.verification.code == "32"


async def test_a_card_from_an_untrusted_ca_is_code_30(app: App, world: World) -> None:
    rid = "reg-untrust-1"
    stranger = DevCA.create(now=NOW - timedelta(days=1)).issue(Person(), now=NOW)
    await up_to_confirmed(app, rid)
    await sign_with(app, rid, stranger)
    registration = await verification_of(app, rid)
    assert registration.verification is not None
    assert registration.verification.code == "30"


async def test_without_revocation_data_it_retries_then_parks(world: World, clock: FakeClock) -> None:
    app = await verifying(world, clock, crl_files=[world.tmp / "no-such-crl.der"], verification_retry_limit=2)
    try:
        rid = "reg-parked-01"
        await up_to_confirmed(app, rid)
        await sign_with(app, rid, world.good)
        for _ in range(3):
            registration = await verification_of(app, rid)
            assert registration.verification is not None
            assert registration.verification.status in ("retrying", "parked")
            if registration.verification.status == "parked":
                break
            clock.advance(timedelta(minutes=5))
            await app.runtime.sweeper.sweep_once()
            await settle(app)
        registration = await verification_of(app, rid)
        assert registration.verification is not None
        assert registration.verification.status == "parked"
        assert registration.verification.retries == 2
        assert registration.signature is not None, "kept for an operator's replay"
        status, message = await complete(app, rid)
        assert status == "rejected"
        assert message == messages.possibly_revoked(registration.verification.code or "")
        history = [h.event_type for h in await app.orchestrator.history(rid)]
        assert history.count("verification.completed") == 3
    finally:
        await app.close()


async def test_revoked_via_the_ocsp_responder_is_code_23_and_down_is_retried(
    world: World, clock: FakeClock
) -> None:
    from adapters.ca_revocation.responder import serve

    card = world.ca.issue(Person(), now=NOW)
    world.ca.revoke(card, at=NOW - timedelta(minutes=2), reason=x509.ReasonFlags.superseded)
    try:
        async with serve(world.ca) as server:
            server.state.register(card.certificate)
            server.state.register(world.good.certificate)
            app = await verifying(world, clock, revocation="ocsp", ocsp_url=f"{server.url}/ocsp")
            try:
                await up_to_confirmed(app, "reg-ocsp-0001")
                await sign_with(app, "reg-ocsp-0001", card)
                registration = await verification_of(app, "reg-ocsp-0001")
                assert registration.verification is not None
                assert registration.verification.code == "23"

                server.state.down = True
                await up_to_confirmed(app, "reg-ocsp-0002")
                await sign_with(app, "reg-ocsp-0002", world.good)
                registration = await verification_of(app, "reg-ocsp-0002")
                assert registration.verification is not None
                assert (registration.verification.status, registration.verification.code) == (
                    "retrying",
                    "42",
                )
                server.state.down = False
                clock.advance(timedelta(minutes=5))
                await app.runtime.sweeper.sweep_once()
                await settle(app)
                assert (await verification_of(app, "reg-ocsp-0002")).state is State.SIGNATURE_VERIFIED
            finally:
                await app.close()
    finally:
        world.ca.revoked.clear()


async def test_an_ocsp_responder_that_stays_down_is_retried_then_parked(
    world: World, clock: FakeClock
) -> None:
    from adapters.ca_revocation.responder import serve

    async with serve(world.ca) as server:
        server.state.register(world.good.certificate)
        server.state.down = True
        app = await verifying(
            world, clock, revocation="ocsp", ocsp_url=f"{server.url}/ocsp", verification_retry_limit=2
        )
        try:
            rid = "reg-ocsp-down1"
            await up_to_confirmed(app, rid)
            await sign_with(app, rid, world.good)
            for _ in range(2):
                clock.advance(timedelta(minutes=5))
                await app.runtime.sweeper.sweep_once()
                await settle(app)
            registration = await verification_of(app, rid)
            assert registration.verification is not None
            assert (registration.verification.status, registration.verification.code) == ("parked", "42")
            assert server.state.requests["ocsp"] == 3, "the first try and two retries reached the responder"
            assert await complete(app, rid) == ("rejected", messages.possibly_revoked("42"))
        finally:
            await app.close()


async def test_the_card_emulator_carries_many_registrations_to_activation_once_each(
    world: World, clock: FakeClock
) -> None:
    from honnin.emulator import CardEmulator, LocalFeed

    app = await verifying(world, clock)
    emulator = CardEmulator(app.bus, world.good, Person(), clock, LocalFeed(app.outbound, "facility-emu"))
    try:
        await emulator.listen()
        for i in range(20):
            await emulator.register(f"reg-emu-{i:05d}")
        assert await emulator.wait_activated(within=30) == set()
        await settle(app)
        for rid in emulator.expected:
            assert emulator.heard.count(rid, "registration.activated") == 1
            assert (await verification_of(app, rid)).state is State.ACTIVATED
    finally:
        await emulator.close()
        await app.close()


async def test_an_operator_lists_a_parked_verification_and_replays_it_once_the_outage_is_over(
    world: World, clock: FakeClock
) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.harness import KEY

    crl = world.tmp / "late-crl.der"
    app = await verifying(world, clock, crl_files=[crl], verification_retry_limit=1)
    try:
        rid = "reg-replay-01"
        await up_to_confirmed(app, rid)
        await sign_with(app, rid, world.good)
        clock.advance(timedelta(minutes=5))
        await app.runtime.sweeper.sweep_once()
        await settle(app)
        parked = await verification_of(app, rid)
        assert parked.verification is not None
        assert (parked.verification.status, parked.verification.code) == ("parked", "42")

        env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
        env |= {
            "HONNIN_DATA_DIR": str(world.tmp / "data"),
            "HONNIN_DATA_KEY": KEY,
            "HONNIN_LOG_LEVEL": "ERROR",
        }

        async def honnin(*args: str) -> subprocess.CompletedProcess[str]:
            """The command in its own process while this worker's loop keeps running, as beside a
            live worker (a loop blocked here could hold the store's write lock the command needs)."""
            command = [sys.executable, "-m", "honnin.cli", *args]
            run = partial(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
            return await asyncio.to_thread(run)

        listed = await honnin("parked")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split("\t")[:3] == [rid, "42", "1"]

        crl.write_bytes(world.ca.crl(this_update=NOW - timedelta(minutes=1)))  # the outage is over
        replayed = await honnin("replay", rid, "--reason", "CRL restored")
        assert replayed.returncode == 0, replayed.stderr
        app.orchestrator.committed.set()  # the CLI wrote the request; this worker's relay sends it
        for _ in range(100):
            await settle(app)
            if (await verification_of(app, rid)).state is State.SIGNATURE_VERIFIED:
                break
        assert (await verification_of(app, rid)).state is State.SIGNATURE_VERIFIED
        assert (await honnin("parked")).stdout.strip() == "no parked verifications"
        again = await honnin("replay", rid)
        assert again.returncode == 1
        assert "event_not_accepted" in again.stderr
    finally:
        await app.close()
