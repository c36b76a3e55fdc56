"""A reference facility page for integrators: seed 000's screens, served by a facility backend.

Copy it. Its server talks to Honnin only through the public `/v1` API over HTTP with the
facility's bearer token, as your backend would; the browser never sees the token. Each visitor's
form lives in a server-side session (here in memory). The steps, in the seed's order:
【アカウント登録】 → 利用規約 【同意する】 → 登録者情報 → ① 【アプリを起動する】 (a phone) or the iOS and
Android QR codes (a PC): `POST /v1/registrations` → ② 【情報を反映する】: `POST …/reflect` fills
氏名 and 住所 from the card → 【確認】 → 確認画面 with the 注意事項 checkbox → 【マイナンバーカードの確認へ】:
`POST …/confirm` → ① sign with the app → ② 【完了する】: `POST …/complete` → done. Every Honnin error
is shown in red as Honnin words it: `message` and, after seed §3's errors, the `remedy` detail.
The password stays with the facility (hashed here); Honnin has no field for it.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

BASE = "/demo/"
COOKIE = "honnin_demo_facility"
FIELDS: tuple[str, ...] = ("login_id", "user_type", "user_category", "identity_document", "name")
FIELDS += ("name_kana", "postal_code", "address", "phone", "email")
CHOICES = {"user_type": ("勤労者", "学生", "一般"), "user_category": ("個人", "団体")}
REQUIRED = {
    "login_id": "ログインIDを入力してください。",
    "user_type": "利用者種別を選択してください。",
    "user_category": "利用者区分を選択してください。",
    "identity_document": "本人確認書類で「マイナンバーカード」を選択してください。",
    "name": "氏名を入力してください。",
    "address": "住所を入力してください。",
}
INPUT_WRONG = "入力項目に誤りがあります。入力内容をご確認ください。"
NOT_REFLECTED = "②【情報を反映する】を押して、マイナンバーカードの情報を反映してください。"
NOTICE_UNCHECKED = "注意事項の確認項目にチェックを入れてください。"
PROGRESS = {  # what the page says while it waits for the phone (Honnin's state → the page's words)
    "info_entered": "スマートフォンのアプリで、マイナンバーカードを読み取ってください。",
    "card_read": "アプリでの読み取りが完了しました。②【情報を反映する】を押してください。",
    "confirmed": "スマートフォンのアプリで、電子署名を行ってください。",
    "verifying": "署名を確認しています。しばらくお待ちください。",
    "signature_verified": "署名の確認が完了しました。②【完了する】を押してください。",
    "failed": "署名を確認できませんでした。②【完了する】を押すと理由が表示されます。"
    "もう一度署名する場合は、①からやり直してください。",
}
_LETTERS = string.ascii_letters  # session ids are also request ids: Honnin refuses 12 digits in ids


@dataclass
class Visitor:
    """One browser's registration in progress, as the facility keeps it."""

    id: str
    agreed: bool = False
    form: dict[str, str] = field(default_factory=dict)
    password_hash: str | None = None
    starts: int = 0  # a new registration after the previous one ended
    registration_id: str | None = None
    card_link: dict[str, Any] | None = None
    sign_link: dict[str, Any] | None = None
    reflected: bool = False
    error: dict[str, Any] | None = None  # shown once, after a redirect
    notice: str | None = None
    done: bool = False


class FacilityPage:
    def __init__(self, token: str, honnin_url: str | None = None) -> None:
        self._token = token  # the facility's /v1 bearer token: server side only
        self._honnin_url = honnin_url  # None: Honnin is this very server (the demo)
        self._visitors: dict[str, Visitor] = {}
        self._pages = Environment(
            loader=PackageLoader("honnin.demo_site"), autoescape=select_autoescape(["html"])
        )

    # -- talking to Honnin -------------------------------------------------------------------

    async def honnin(
        self, request: web.Request, method: str, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> tuple[int, dict[str, Any]]:
        """One call of Honnin's facility API: (status, JSON body). Errors are bodies too."""
        headers["Authorization"] = f"Bearer {self._token}"
        url = f"{self._honnin_url or own_url(request)}/v1{path}"
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, json=body, headers=headers) as answer,
        ):
            return answer.status, await answer.json()

    # -- the screens ---------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        return self._render("home.html", self._visitor(request))

    async def terms(self, request: web.Request) -> web.Response:
        visitor = self._visitor(request)
        if request.method == "POST":  # 【同意する】
            visitor.agreed = True
            raise _redirect(visitor, "form")
        return self._render("terms.html", visitor)

    async def form(self, request: web.Request) -> web.Response:
        visitor = self._visitor(request)
        if not visitor.agreed:
            raise _redirect(visitor, "terms")
        if request.method == "GET":
            link = visitor.card_link if visitor.registration_id else None
            phone = _phone(request)
            return self._render("form.html", visitor, link=link, reflected=_reflected(visitor), phone=phone)
        posted = await request.post()
        _keep(visitor, posted)
        action = posted.get("action")
        if action == "start":
            await self._start(request, visitor)
        elif action == "reflect":
            await self._reflect(request, visitor)
        elif _checked(visitor):  # 【確認】
            raise _redirect(visitor, "confirm")
        raise _redirect(visitor, "form")

    async def _start(self, request: web.Request, visitor: Visitor) -> None:
        """① 【アプリを起動する】 / the QR codes: the registration starts with the form as typed."""
        if not _valid(visitor):
            return
        if visitor.registration_id and await self._ended(request, visitor):
            visitor.starts += 1
        applicant = {name: visitor.form[name] for name in FIELDS if visitor.form.get(name)}
        applicant["identity_document"] = "my_number_card"
        body = {"applicant": applicant, "request_id": f"{visitor.id}-{_letter(visitor.starts)}"}
        status, answer = await self.honnin(request, "POST", "/registrations", body)
        if status not in (200, 201):
            visitor.error = answer
            return
        if answer["registration_id"] != visitor.registration_id:  # a new one: read the card again
            visitor.reflected, visitor.sign_link, visitor.done = False, None, False
        visitor.registration_id, visitor.card_link = answer["registration_id"], answer["card_read_link"]
        phone = _phone(request)
        if phone:  # the same device: its browser opens the link, whose page opens the app
            raise web.HTTPSeeOther(answer["card_read_link"][phone]["url"])

    async def _reflect(self, request: web.Request, visitor: Visitor) -> None:
        """② 【情報を反映する】: the card's 氏名 and 住所 fill the form, or the seed's error."""
        status, answer = await self.honnin(
            request, "POST", f"/registrations/{visitor.registration_id}/reflect"
        )
        if status != 200:
            visitor.error = answer
            return
        visitor.form.update(name=answer["card"]["name"], address=answer["card"]["address"])
        visitor.reflected, visitor.notice = True, answer["message"]

    async def confirm(self, request: web.Request) -> web.Response:
        """確認画面, then 【マイナンバーカードの確認へ】 with the 注意事項 checkbox ticked."""
        visitor = self._visitor(request)
        if not visitor.reflected:
            raise _redirect(visitor, "form")
        if request.method == "GET":
            return self._render("confirm.html", visitor)
        posted = await request.post()
        if posted.get("action") == "edit":  # 修正する
            raise _redirect(visitor, "form")
        if posted.get("notice_acknowledged") != "yes":
            visitor.error = {"message": NOTICE_UNCHECKED, "details": []}
            raise _redirect(visitor, "confirm")
        body: dict[str, Any] = {"notice_acknowledged": True}
        body |= {name: visitor.form[name] for name in ("phone", "email") if visitor.form.get(name)}
        path = f"/registrations/{visitor.registration_id}/confirm"
        key = f"{visitor.id}-{_letter(visitor.starts)}-confirm"  # a double click is one step
        status, answer = await self.honnin(request, "POST", path, body, **{"Idempotency-Key": key})
        if status != 200:
            visitor.error = answer
            raise _redirect(visitor, "confirm")
        visitor.sign_link = answer["sign_link"] | {"attempt": answer["attempt"]}
        raise _redirect(visitor, "card")

    async def card(self, request: web.Request) -> web.Response:
        """マイナンバーカード確認画面: ① sign with the app, ② 【完了する】."""
        visitor = self._visitor(request)
        if visitor.sign_link is None:
            raise _redirect(visitor, "form")
        if request.method == "GET":
            await self._fresh_sign_link(request, visitor)
            return self._render("card.html", visitor, link=visitor.sign_link, phone=_phone(request))
        status, answer = await self.honnin(
            request, "POST", f"/registrations/{visitor.registration_id}/complete"
        )
        if status != 200:  # the seed's error for the last verification, with its remedy
            visitor.error = answer
            raise _redirect(visitor, "card")
        visitor.done = True
        raise _redirect(visitor, "done")

    async def _fresh_sign_link(self, request: web.Request, visitor: Visitor) -> None:
        """After a failed verification Honnin issues a new challenge: the QR codes must follow it."""
        status, answer = await self.honnin(request, "GET", f"/registrations/{visitor.registration_id}")
        current = status == 200 and answer["challenge_attempt"] == (visitor.sign_link or {}).get("attempt")
        if status == 200 and answer["state"] == "confirmed" and not current:
            path = f"/registrations/{visitor.registration_id}/sign-link"
            status, fresh = await self.honnin(request, "POST", path)
            if status == 200:
                visitor.sign_link = fresh["sign_link"] | {"attempt": fresh["attempt"]}

    async def done(self, request: web.Request) -> web.Response:
        visitor = self._visitor(request)
        if not visitor.done:
            raise _redirect(visitor, "")
        return self._render("done.html", visitor, login_id=visitor.form.get("login_id", ""))

    async def state(self, request: web.Request) -> web.Response:
        """What the page's script polls: Honnin's state, in the page's words."""
        visitor = self._visitor(request)
        if not visitor.registration_id:
            return web.json_response({"state": None, "progress": ""})
        status, answer = await self.honnin(request, "GET", f"/registrations/{visitor.registration_id}")
        state = answer.get("state") if status == 200 else None
        verification = (answer.get("verification") or {}) if status == 200 else {}
        if state == "confirmed" and verification.get("status") in ("pending", "retrying"):
            progress = PROGRESS["verifying"]
        elif state == "confirmed" and verification.get("status") in ("failed", "parked"):
            progress = PROGRESS["failed"]
        else:
            progress = PROGRESS.get(state or "", "")
        shown = {"state": state, "progress": progress, "verification": verification.get("status")}
        shown["attempt"] = verification.get("attempt")
        return web.json_response(shown, headers={"Cache-Control": "no-store"})

    async def _ended(self, request: web.Request, visitor: Visitor) -> bool:
        status, answer = await self.honnin(request, "GET", f"/registrations/{visitor.registration_id}")
        return status == 404 or answer.get("state") in ("expired", "cancelled", "activated")

    # -- sessions and pages --------------------------------------------------------------------

    def _visitor(self, request: web.Request) -> Visitor:
        """This browser's session (cookie), or a new one."""
        known = self._visitors.get(request.cookies.get(COOKIE, ""))
        if known is not None:
            return known
        if len(self._visitors) >= 1000:  # a demo's memory, not a store: the oldest go first
            del self._visitors[next(iter(self._visitors))]
        visitor = Visitor("".join(secrets.choice(_LETTERS) for _ in range(32)))
        self._visitors[visitor.id] = visitor
        return visitor

    def _render(self, name: str, visitor: Visitor, **values: Any) -> web.Response:
        error, visitor.error = visitor.error, None
        notice, visitor.notice = visitor.notice, None
        values.setdefault("phone", None)
        values.setdefault("password_set", visitor.password_hash is not None)
        page = self._pages.get_template(name).render(
            base=BASE, form=visitor.form, error=error, notice=notice, **values
        )
        response = web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})
        _set_cookie(response, visitor)
        return response


def add_facility_routes(app: web.Application, page: FacilityPage) -> None:
    """The page's routes under /demo/."""
    app.router.add_get(BASE, page.home, name="demo.home")
    app.router.add_route("*", BASE + "terms", page.terms, name="demo.terms")
    app.router.add_route("*", BASE + "form", page.form, name="demo.form")
    app.router.add_route("*", BASE + "confirm", page.confirm, name="demo.confirm")
    app.router.add_route("*", BASE + "card", page.card, name="demo.card")
    app.router.add_get(BASE + "done", page.done, name="demo.done")
    app.router.add_get(BASE + "state.json", page.state, name="demo.state")


def own_url(request: web.Request) -> str:
    """This server's own address (the socket the request came in on): Honnin runs here too."""
    host, port = request.transport.get_extra_info("sockname")[:2] if request.transport else ("127.0.0.1", 80)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _phone(request: web.Request) -> str | None:
    agent = request.headers.get("User-Agent", "")
    if any(device in agent for device in ("iPhone", "iPad", "iPod")):
        return "ios"
    return "android" if "Android" in agent else None


def _redirect(visitor: Visitor, screen: str) -> web.HTTPSeeOther:
    response = web.HTTPSeeOther(BASE + screen)
    _set_cookie(response, visitor)
    return response


def _set_cookie(response: web.StreamResponse, visitor: Visitor) -> None:
    response.set_cookie(COOKIE, visitor.id, path=BASE, httponly=True, samesite="Lax")


def _keep(visitor: Visitor, posted: Any) -> None:
    """Remember what was typed (氏名 and 住所 stay as the card gave them once reflected)."""
    for name in FIELDS:
        if name in posted and not (visitor.reflected and name in ("name", "address")):
            visitor.form[name] = str(posted[name]).strip()
    password = str(posted.get("password", ""))
    if password:  # the facility's own login password: kept hashed, never sent to Honnin
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1).hex()
        visitor.password_hash = f"{salt.hex()}:{digest}" if len(password) >= 8 else None


def _problems(visitor: Visitor) -> list[str]:
    found = [text for name, text in REQUIRED.items() if not visitor.form.get(name)]
    for name, options in CHOICES.items():
        if visitor.form.get(name) and visitor.form[name] not in options:
            found.append(REQUIRED[name])
    if visitor.password_hash is None:
        found.append("パスワードを8文字以上で入力してください。")
    return found


def _valid(visitor: Visitor) -> bool:
    problems = _problems(visitor)
    if problems:
        visitor.error = {"message": INPUT_WRONG, "details": [], "fields": problems}
    return not problems


def _checked(visitor: Visitor) -> bool:
    """【確認】: the form is complete and the card's information was reflected."""
    if not _valid(visitor):
        return False
    if not visitor.reflected:
        visitor.error = {"message": NOT_REFLECTED, "details": []}
    return visitor.reflected


def _reflected(visitor: Visitor) -> tuple[str, ...]:
    return ("name", "address") if visitor.reflected else ()


def _letter(number: int) -> str:
    """A counter without digits (request ids hold at most 11)."""
    return string.ascii_lowercase[number % 26] * (1 + number // 26)
