"""The page a phone's browser gets for a card-bridge link: open the app (or, in demo mode, the simulator).

The link's URL is what the QR code encodes (`?os=ios` or `?os=android`, one code per OS on the
PC page) and what 【アプリを起動する】 opens. Where the app is installed and registered for the
link's host (a universal link on iOS, an app link on Android), the phone opens the app with the
URL directly; otherwise the browser asks for it with `Accept: text/html` and gets this page,
whose button follows the OS's deep link. The app itself asks for JSON and gets the link's step.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta, timezone

from aiohttp import web

from adapters.card_bridge.links import OSES, Claims, Links, Os
from adapters.http.common import HttpError
from adapters.http.words import bilingual

Simulator = Callable[[str, Os | None], str]
"""The simulator page's URL for a link token (demo mode only)."""

JST = timezone(timedelta(hours=9))
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
_TITLES = {"card_read": "マイナンバーカードの読み取り", "sign": "マイナンバーカードの確認（電子署名）"}
_LEADS = {
    "card_read": "電子署名アプリを起動し、【マイナンバーカードの読み込みを行う】を押して、"
    "数字4桁の券面事項入力補助用パスワードでカードを読み取ってください。",
    "sign": "電子署名アプリを起動し、英数字6～16文字の署名用パスワードで電子署名を行ってください。",
}
_LABELS = {"ios": "iPhone", "android": "Android"}
_INSTALL = (
    "※電子署名アプリがインストールされていない場合は、インストールしてから、もう一度このページを開いてください。"
    "Androidご利用の場合はJPKI利用者ソフトのインストールも必要になります。"
)
_BACK = "読み取りまたは署名が終わりましたら、施設予約システムの画面に戻ってください。"
_PAGE = """<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1.5em;line-height:1.6}}
a.button{{display:inline-block;padding:.8em 1.4em;margin:.3em 0;background:#0a58ca;color:#fff;
border-radius:6px;text-decoration:none;font-weight:bold}}.error{{color:#c00;font-weight:bold}}
.demo{{margin-top:2em;padding:1em;border:2px dashed #b58100;background:#fff8e1}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>
"""


def wants_html(request: web.Request) -> bool:
    """A browser's Accept ranks text/html above JSON; the app's (JSON, `*/*` or none) does not."""
    accept = request.headers.get("Accept", "")
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[kind.strip().lower()] = weight
    anything = weights.get("*/*", 0.0)
    html_weight = weights.get("text/html", weights.get("text/*", anything))
    json_weight = weights.get("application/json", weights.get("application/*", anything))
    return "text/html" in weights and html_weight > json_weight


def os_of(request: web.Request, *, guess: bool = False) -> Os | None:
    """`?os=ios|android` (400 for anything else); without it, the phone's own (when `guess`)."""
    given = request.query.get("os")
    if given is not None:
        if given not in OSES:
            raise HttpError(400, "unknown_os", "os must be ios or android")
        return "ios" if given == "ios" else "android"
    if not guess:
        return None
    agent = request.headers.get("User-Agent", "")
    if any(device in agent for device in ("iPhone", "iPad", "iPod")):
        return "ios"
    return "android" if "Android" in agent else None


def page(
    claims: Claims, token: str, links: Links, os: Os | None, simulator: Simulator | None
) -> web.Response:
    """The landing page: the app's button for this phone (both, when the OS is not known)."""
    url = links.url_of(token)
    buttons = "".join(
        f'<p><a class="button" id="open-{name}" href="{html.escape(links.deep_link(url, name))}">'
        f"アプリを起動する{'' if os else f'（{_LABELS[name]}）'}</a></p>"
        for name in ((os,) if os else OSES)
    )
    until = claims.expires_at.astimezone(JST).strftime("%H時%M分")
    body = (
        f"<p>{_LEADS[claims.step]}</p>{buttons}<p>{_INSTALL}</p>"
        f"<p>このリンクの有効期限は{until}までです。{_BACK}</p>"
    )
    if simulator is not None:
        body += (
            '<div class="demo"><p><strong>開発・デモ用</strong>：このサーバーはデモモードで動いています。'
            "実際のアプリの代わりに、シミュレーターで読み取りと署名を行えます。</p>"
            f'<p><a class="button" id="simulator" href="{html.escape(simulator(token, os))}">'
            "シミュレーターで続ける</a></p></div>"
        )
    text = _PAGE.format(title=_TITLES[claims.step], body=body)
    return web.Response(text=text, content_type="text/html", headers=HEADERS)


def error_page(exc: HttpError) -> web.Response:
    """A link that cannot be used, said in Japanese in red, with the same status the app gets."""
    japanese, _ = bilingual(exc.code, exc.message)
    body = f'<p class="error" id="error" data-code="{html.escape(exc.code)}">{html.escape(japanese)}</p>'
    text = _PAGE.format(title="このリンクは使用できません", body=body)
    return web.Response(text=text, status=exc.status, content_type="text/html", headers=HEADERS)
