"""`honnin demo`: the seed manual's flow and its failures, over real HTTP, on the embedded default.

A development CA issues cards; a worker (SQLite in a temporary folder, the in-process bus, the
verifier) serves the facility API and the card bridge on a free loopback port; the demo then
plays the facility's web page and the phone app through both APIs and prints every step.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.http.common import serve
from honnin.bootstrap import App, bootstrap
from honnin.emulator import card_facts
from honnin.http import build_http
from honnin.settings import Settings

TOKEN = "demo-facility-token-0123456789"  # noqa: S105 - the demo's own facility, loopback only
HANAKO = Person()
TARO = Person(name="公的　太郎", sex="1", birth_date=date(1985, 7, 7))


@dataclass
class Phone:
    """The phone app: reads the card with the 4-digit PIN, signs with the signing password."""

    http: aiohttp.ClientSession

    async def read_card(self, link: dict[str, Any], person: Person) -> dict[str, Any]:
        return await _call(self.http, "POST", link["url"] + "/card-info", {"card": card_facts(person)})

    async def sign(self, link: dict[str, Any], card: Card) -> dict[str, Any]:
        challenge = await _call(self.http, "GET", link["url"] + "/challenge")
        signature = card.sign(base64.b64decode(challenge["challenge"]))
        body = {
            "certificate": base64.b64encode(card.der).decode(),
            "signature": base64.b64encode(signature).decode(),
            "algorithm": "rsa-pkcs1v15-sha256",
        }
        return await _call(self.http, "POST", link["url"] + "/signature", body)


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> dict[str, Any]:
    async with http.request(method, url, json=body) as response:
        data: dict[str, Any] = await response.json()
        data["_status"] = response.status
        return data


class Demo:
    def __init__(self, app: App, base: str, http: aiohttp.ClientSession, say: Callable[[str], None]) -> None:
        self.app = app
        self.base = base
        self.http = http
        self.phone = Phone(http)
        self.say = say

    async def web(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        return await _call(self.http, method, f"{self.base}/v1{path}", body)

    async def settle(self) -> None:
        """Let the worker apply, relay and verify what the last step started."""
        join = getattr(self.app.bus, "join", None)
        for _ in range(3):
            if join is not None:
                await join(within=30)
            await asyncio.sleep(0.05)

    async def start(self, person: Person) -> tuple[str, dict[str, Any]]:
        applicant = {
            "login_id": "tarou12345",
            "user_type": "勤労者",
            "user_category": "個人",
            "name": person.name,
            "name_kana": "コウテキ　ハナコ",
            "address": person.address,
            "phone": "03-1234-5678",
            "email": "hanako@example.jp",
        }
        started = await self.web("POST", "/registrations", {"applicant": applicant})
        self.say(f"  【アプリを起動する】 registration {started['registration_id']}: {started['state']}")
        link = started["card_read_link"]
        self.say(
            f"    the app opens {link['deep_link'].split('?')[0]}?link=…; a PC shows the QR code …/qr.svg"
        )
        return started["registration_id"], started["card_read_link"]

    async def reflect(self, rid: str) -> None:
        answer = await self.web("POST", f"/registrations/{rid}/reflect")
        self.say(f"  【情報を反映する】 {answer['_status']}: {answer['message']}")

    async def confirm(self, rid: str) -> dict[str, Any]:
        answer = await self.web("POST", f"/registrations/{rid}/confirm", {"notice_acknowledged": True})
        shown = answer.get("state", answer.get("message"))
        self.say(f"  【マイナンバーカードの確認へ】 {answer['_status']}: {shown}")
        link: dict[str, Any] = answer["sign_link"]
        return link

    async def sign(self, link: dict[str, Any], card: Card) -> None:
        answer = await self.phone.sign(link, card)
        self.say(f"  app: signature {answer['_status']}: {answer['message']}")
        await self.settle()

    async def publish_crl(self, crl: Path, der: bytes) -> None:
        """The CA publishes a new CRL file; the verifier re-reads it in the background (here: now)."""
        await asyncio.to_thread(crl.write_bytes, der)
        refresh = getattr(self.app.revocation, "refresh", None)
        if refresh is not None:
            await refresh()

    async def read_and_sign(self, person: Person, card: Card) -> str:
        """Steps 1 to 5 with the app reading `person`'s card-info and signing with `card`."""
        rid, link = await self.start(person)
        await self.phone.read_card(link, person)
        await self.settle()
        await self.sign(await self.confirm(rid), card)
        return rid

    async def complete(self, rid: str) -> dict[str, Any]:
        answer = await self.web("POST", f"/registrations/{rid}/complete")
        shown = answer.get("state") if answer["_status"] == 200 else answer["message"]
        self.say(f"  【完了する】 {answer['_status']}: {shown}")
        return answer


async def scenarios(demo: Demo, ca: DevCA, crl: Path, now: datetime) -> None:
    good = ca.issue(HANAKO, now=now)
    say = demo.say

    say("1. iPhone/Android: the whole flow")
    rid, link = await demo.start(HANAKO)
    say(f"  app: card read {(await demo.phone.read_card(link, HANAKO))['message']}")
    await demo.settle()
    await demo.reflect(rid)
    await demo.sign(await demo.confirm(rid), good)
    await demo.complete(rid)

    say("2. 【情報を反映する】 before the app read the card")
    rid, _ = await demo.start(HANAKO)
    await demo.reflect(rid)

    say("3. another card than the one read: mismatch, then the right card")
    rid = await demo.read_and_sign(HANAKO, ca.issue(TARO, now=now))
    await demo.complete(rid)
    fresh = await demo.web("POST", f"/registrations/{rid}/sign-link")
    await demo.sign(fresh["sign_link"], good)
    await demo.complete(rid)

    say("4. an expired certificate (Code: 21)")
    expired = ca.issue(HANAKO, not_before=now - timedelta(days=40), valid_for=timedelta(days=30))
    await demo.complete(await demo.read_and_sign(HANAKO, expired))

    say("5. a revoked certificate (Code: 23)")
    revoked = ca.issue(HANAKO, now=now)
    ca.revoke(revoked, at=now - timedelta(minutes=1))
    await demo.publish_crl(crl, ca.crl(this_update=now - timedelta(seconds=30)))
    await demo.complete(await demo.read_and_sign(HANAKO, revoked))

    say("6. revocation data out of date for a moment (Code: 41): retried by Honnin, then success")
    await demo.publish_crl(crl, ca.crl(this_update=datetime.now(UTC), next_update=timedelta(seconds=1)))
    await asyncio.sleep(1.5)  # the CRL in force passes its nextUpdate before the next one arrives
    rid = await demo.read_and_sign(HANAKO, good)
    await demo.complete(rid)
    await asyncio.to_thread(crl.write_bytes, ca.crl(this_update=datetime.now(UTC)))
    say("  (a fresh CRL arrives; Honnin retries from its persisted schedule)")
    for _ in range(40):
        await asyncio.sleep(0.25)
        await demo.settle()
        status = await demo.web("GET", f"/registrations/{rid}")
        if status.get("state") == "signature_verified":
            break
    await demo.complete(rid)


async def run_demo(say: Callable[[str], None]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="honnin-demo-"))
    try:
        now = datetime.now(UTC)
        ca = DevCA.create(now=now - timedelta(days=100))
        ca.save(folder / "ca")
        crl = folder / "ca" / "crl.der"
        await asyncio.to_thread(crl.write_bytes, ca.crl(this_update=now - timedelta(seconds=30)))
        settings = Settings(
            data_dir=folder / "data",
            trust_anchor_files=[folder / "ca" / "root.pem"],
            crl_files=[crl],
            accept_test_certificates=True,  # the development CA issues test-environment certificates
            facility_tokens=SecretStr(f"demo-facility:{TOKEN}"),
            verification_retry_base_seconds=0.5,
            sweep_interval_seconds=0.1,
            relay_idle_seconds=0.05,
            log_level="ERROR",
            http_port=0,
        )
        app = await bootstrap(settings)
        try:
            await app.runtime.start()
            async with serve(build_http(app), settings.http_host, 0) as server:
                app.links.rebase(server.url)
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with aiohttp.ClientSession(headers=headers) as http:
                    await scenarios(Demo(app, server.url, http, say), ca, crl, now)
        finally:
            await app.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
