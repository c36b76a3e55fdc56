"""An xID world for tests: a worker (SQLite, in-process bus, the verifier trusting a dev CA), its
HTTP API on loopback, a real SMTP server (aiosmtpd) it mails through, and the app emulator."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.clock import FakeClock
from adapters.http.common import serve
from honnin.bootstrap import App
from honnin.http import build_http
from honnin.xid_emulator import XidApp, link_in
from orchestrator.model import Registration
from tests.integration.harness import start
from tests.integration.test_mail_smtp import Server, smtp_server

NOW = datetime.now(UTC).replace(microsecond=0)
SECRET = "app-secret-of-the-ios-client-0001"
OTHER_SECRET = "app-secret-of-another-client-0002"
FACILITY_TOKEN = "token-of-facility-one-000"
TERMS = {"version": "2026-10", "sha256": hashlib.sha256("xID 利用規約 2026-10".encode()).hexdigest()}
HANAKO = Person(
    name="公的　花子", address="東京都品川区広町２－１－１０", birth_date=date(1966, 11, 10), sex="2"
)


@dataclass
class World:
    app: App
    url: str
    http: aiohttp.ClientSession
    smtp: Server
    clock: FakeClock
    ca: DevCA
    card: Card
    tmp: Path

    def phone(self, secret: str = SECRET, card: Card | None = None) -> XidApp:
        return XidApp(self.http, self.url, secret, card or self.card, dict(TERMS))

    async def registration(self, rid: str) -> Registration:
        return (await self.app.orchestrator.status(rid)).registration

    async def mails(self, count: int, within: float = 10.0) -> list[Any]:
        async with asyncio.timeout(within):
            while len(self.smtp.recorder.received) < count:
                await asyncio.sleep(0.02)
        return [self.smtp.parsed(i) for i in range(count)]

    async def link(self, index: int) -> str:
        mail = (await self.mails(index + 1))[index]
        plain = next(part for part in mail.iter_parts() if part.get_content_type() == "text/plain")
        return link_in(plain.get_content())


@asynccontextmanager
async def xid_world(tmp: Path, ca: DevCA, card: Card, **changes: object) -> AsyncIterator[World]:
    root, crl = tmp / "root.der", tmp / "crl.der"
    root.write_bytes(ca.der)
    crl.write_bytes(ca.crl(this_update=NOW - timedelta(minutes=1)))
    clock = FakeClock(NOW)
    async with smtp_server() as smtp:
        settings: dict[str, object] = {
            "verifier_enabled": True,
            "trust_anchor_files": [root],
            "revocation": "crl",
            "crl_files": [crl],
            "app_clients": f"xid-ios:{SECRET},xid-other:{OTHER_SECRET}",
            "facility_tokens": f"facility-1:{FACILITY_TOKEN}",
            "xid_terms": f"{TERMS['version']}:{TERMS['sha256']}",
            "mail": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_tls": "none",
            "smtp_timeout_seconds": 2.0,
            "mail_from": "no-reply@honnin.example",
        }
        settings.update(changes)
        app = await start(tmp / "data", clock, **settings)
        try:
            async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
                app.email_links.rebase(server.url)
                yield World(app, server.url, http, smtp, clock, ca, card, tmp)
        finally:
            await app.close()


async def enabled(world: World, phone: XidApp) -> None:
    """Start ▸ certificate ▸ consent ▸ signature ▸ verified ▸ ID有効化, each answered as expected."""
    assert (await phone.start()).status == 201
    assert (await phone.read_certificate()).status == 200
    to_sign = await phone.consent()
    assert to_sign.status == 200, to_sign.body
    signed = await phone.sign(to_sign.body)
    assert signed.status == 202, signed.body
    await phone.wait_for("signature_verified")
    activated = await phone.activate()
    assert activated.status == 200, activated.body
