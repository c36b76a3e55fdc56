"""An xID app emulator: plays seed 003's app over HTTP with a dev CA card and a device key.

It does what the app does and nothing more: PIN1 and PIN2 (and the card's signing password) stay
here, the certificate and signatures go to Honnin, the device key pair is made here and only its
public half is sent. Used by tests and demos; never in production.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.ca_revocation.devca import Card
from orchestrator.xid import consent_message

LINK = re.compile(r"https?://\S+/app/v1/xid/email-confirmations/[A-Za-z0-9_.-]+")


@dataclass
class Answer:
    status: int
    body: Any


@dataclass
class XidApp:
    """One phone with the xID app installed: its client secret, the card, its own key pair."""

    http: aiohttp.ClientSession
    base_url: str
    secret: str
    card: Card
    terms: dict[str, str]
    pin1: str = "1234"  # set on the device (4-12 digits); never sent
    pin2: str = "123456"  # set on the device (6-12 digits); never sent
    device_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    registration_id: str = ""

    @property
    def _one(self) -> str:
        return f"{self.base_url}/app/v1/xid/registrations/{self.registration_id}"

    async def call(self, method: str, path: str, body: Any = None, *, secret: str | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.secret if secret is None else secret}"}
        url = path if path.startswith("http") else self._one + path
        async with self.http.request(method, url, json=body, headers=headers) as response:
            return Answer(response.status, await response.json())

    async def start(self) -> Answer:
        """利用規約とプライバシーポリシー → 同意する; PIN1/PIN2 are set on the device only."""
        answer = await self.call("POST", f"{self.base_url}/app/v1/xid/registrations", {"terms": self.terms})
        if answer.status in (200, 201):
            self.registration_id = answer.body["registration_id"]
        return answer

    async def read_certificate(self, card: Card | None = None) -> Answer:
        """カードを読み取る with the signing password: the certificate goes, its facts come back."""
        der = (card or self.card).der
        return await self.call("POST", "/certificate", {"certificate": base64.b64encode(der).decode()})

    async def consent(self) -> Answer:
        return await self.call("POST", "/consent", {"consent": True})

    async def sign(self, to_sign: dict[str, Any], card: Card | None = None) -> Answer:
        """The card signs the consent message; the app checks it is the documented one first."""
        expected = consent_message(
            self.registration_id,
            to_sign["terms"]["version"],
            to_sign["terms"]["sha256"],
            to_sign["challenge"],
        )
        signed = base64.b64decode(to_sign["to_be_signed"])
        if signed != expected:
            raise AssertionError("the server asks to sign something other than the consent message")
        card = card or self.card
        body = {
            "certificate": base64.b64encode(card.der).decode(),
            "signature": base64.b64encode(card.sign(signed)).decode(),
            "algorithm": "rsa-pkcs1v15-sha256",
        }
        return await self.call("POST", "/signature", body)

    async def wait_for(self, *states: str, within: float = 10.0) -> Answer:
        async with asyncio.timeout(within):
            while True:
                answer = await self.call("GET", "")
                if answer.body.get("state") in states:
                    return answer
                await asyncio.sleep(0.02)

    def public_key(self) -> str:
        der = self.device_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    async def activate(self) -> Answer:
        """ID有効化 (PIN1, then PIN2, checked on the device): the device's public key."""
        return await self.call("POST", "/activation", {"device_public_key": self.public_key()})

    async def enter_email(self, address: str) -> Answer:
        return await self.call("POST", "/email", {"email": address})

    async def open_link(self, url: str, *, press: bool = True) -> Answer:
        """The person taps メールアドレス確認 in the mail, then the page's button."""
        method = "POST" if press else "GET"
        async with self.http.request(method, url, headers={"Accept": "application/json"}) as response:
            return Answer(response.status, await response.json())

    async def start_using(self) -> Answer:
        return await self.call("POST", "/start-using", {})


def link_in(text: str) -> str:
    """The confirmation link in a mail's plain text."""
    found = LINK.search(text)
    if found is None:
        raise AssertionError("no confirmation link in the mail")
    return found[0]
