"""The phone-app simulator, served in demo and development mode only (`HONNIN_DEMO=true`).

It plays the 電子署名アプリ and the card: the card-bridge link's landing page (the QR code, or
【アプリを起動する】) opens it with the link's token. It shows the seed's app screens, reads the chosen
development-CA card's four facts and posts them through the card bridge, or signs the link's
challenge with that card's key on the server and posts the signature: the HTTP calls a real app
makes. The PIN and the password are checked for their form only (4 digits; 6-16 letters and
digits) and go nowhere, as a real app hands them to the card.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from adapters.ca_revocation import parse_identity
from honnin.demo_site.facility import own_url
from honnin.demo_site.prepare import CARDS, load_card
from orchestrator.identity import CARD_SEX_TO_CERT

PATH = "/demo/app/"
PIN = re.compile(r"^[0-9]{4}$")
PASSWORD = re.compile(r"^[A-Za-z0-9]{6,16}$")
PIN_WRONG = "券面事項入力補助用パスワード（数字4桁）を入力してください。"
PASSWORD_WRONG = "署名用パスワード（英数字6～16文字）を入力してください。"  # noqa: S105 - a message
CARD_READ = "マイナンバーカードの読み込みに成功しました。"
SIGNED = "電子署名処理に成功しました。"
BACK = {
    "card_read": "施設予約システムの画面に戻り、②【情報を反映する】を押してください。",
    "sign": "施設予約システムの画面に戻り、②【完了する】を押してください。",
}
_CERT_SEX_TO_CARD = {cert: card for card, cert in CARD_SEX_TO_CERT.items()}


class Simulator:
    def __init__(self, folder: Path) -> None:
        self._folder = folder  # the demo's dev CA (ca/cards/<card>.pem and -key.pem)
        self._pages = Environment(
            loader=PackageLoader("honnin.demo_site"), autoescape=select_autoescape(["html"])
        )

    def url(self, token: str, os: str | None) -> str:
        """Where the landing page sends a browser in demo mode."""
        return f"{PATH}{token}" + (f"?os={os}" if os else "")

    async def show(self, request: web.Request) -> web.Response:
        """The app's first screen for the link's step, or its PIN / password screen."""
        status, link = await self._bridge(request, "GET", "")
        if status != 200:
            return self._render(request, error=link["message"])
        screen = request.query.get("screen", "start")
        return self._render(
            request, step=link["step"], screen=screen if screen in ("pin", "password") else "start"
        )

    async def act(self, request: web.Request) -> web.Response:
        """【スキャンを開始】 (read the card) or 【OK】 (sign), with the chosen card."""
        posted = await request.post()
        card_name, action = str(posted.get("card", "")), posted.get("action")
        try:
            card = load_card(self._folder, card_name)
        except KeyError:
            return self._render(request, error="カードを選択してください。")
        if action == "read":
            if not PIN.match(str(posted.get("pin", ""))):
                return self._render(request, step="card_read", screen="pin", error=PIN_WRONG)
            status, answer = await self._bridge(request, "POST", "/card-info", {"card": _facts(card.der)})
            done, step = CARD_READ, "card_read"
        else:
            if not PASSWORD.match(str(posted.get("password", ""))):
                return self._render(request, step="sign", screen="password", error=PASSWORD_WRONG)
            status, answer = await self._sign(request, card.der, card.sign)
            done, step = SIGNED, "sign"
        if status not in (200, 202):
            return self._render(request, error=answer["message"])
        return self._render(request, success=answer.get("message", done), back=BACK[step])

    async def _sign(self, request: web.Request, der: bytes, sign: Any) -> tuple[int, dict[str, Any]]:
        status, challenge = await self._bridge(request, "GET", "/challenge")
        if status != 200:
            return status, challenge
        body = {
            "certificate": base64.b64encode(der).decode(),
            "signature": base64.b64encode(sign(base64.b64decode(challenge["challenge"]))).decode(),
            "algorithm": "rsa-pkcs1v15-sha256",
        }
        return await self._bridge(request, "POST", "/signature", body)

    async def _bridge(
        self, request: web.Request, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The card bridge, as the real app calls it: JSON over HTTP with the link's token."""
        url = f"{own_url(request)}/app/v1/links/{request.match_info['token']}{path}"
        headers = {"Accept": "application/json"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, json=body, headers=headers) as answer,
        ):
            return answer.status, await answer.json()

    def _render(self, request: web.Request, **values: Any) -> web.Response:
        os = request.query.get("os") if request.query.get("os") in ("ios", "android") else None
        values.setdefault("step", None)
        values.setdefault("screen", "start")
        scan = "スキャン開始" if os == "android" else "スキャンを開始"
        page = self._pages.get_template("simulator.html").render(os=os, cards=CARDS, scan=scan, **values)
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return web.Response(text=page, content_type="text/html", headers=headers)


def _facts(der: bytes) -> dict[str, object]:
    """What the card-info application (券面事項入力補助AP) would read: the certificate's person."""
    identity = parse_identity(der)
    return {
        "name": identity.name,
        "address": identity.address,
        "birth_date": identity.birth_date.isoformat() if identity.birth_date else None,
        "sex": _CERT_SEX_TO_CARD[identity.sex],
    }


def add_simulator_routes(app: web.Application, simulator: Simulator) -> None:
    app.router.add_get(PATH + "{token}", simulator.show, name="demo.simulator")
    app.router.add_post(PATH + "{token}", simulator.act, name="demo.simulator_act")
