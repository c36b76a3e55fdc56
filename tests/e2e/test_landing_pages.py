"""Card-bridge links in a phone's browser: a landing page that opens the app (one link per OS), while
the app asking for JSON gets exactly what it got before; the worker as `honnin run` builds it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from adapters.clock import FakeClock
from adapters.http.common import serve
from adapters.http.words import is_english
from honnin.bootstrap import App
from honnin.http import build_http
from schemas.references import namespaced_id
from tests.integration.harness import start

TOKEN = "facility-landing-token-0123456789"
CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"
APPLICANT = {
    "login_id": "tarou12345",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": "公的　花子",
    "address": "東京都千代田区千代田１－１",
}


@dataclass
class Worker:
    app: App
    base: str
    http: aiohttp.ClientSession
    clock: FakeClock

    async def started(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = {"applicant": APPLICANT}
        async with self.http.post(f"{self.base}/v1/registrations", json=body, headers=headers) as response:
            assert response.status == 201
            answer: dict[str, Any] = await response.json()
            return answer

    async def page(self, url: str, agent: str = DESKTOP, accept: str = CHROME) -> tuple[int, str, str]:
        async with self.http.get(url, headers={"Accept": accept, "User-Agent": agent}) as response:
            return response.status, response.content_type, await response.text()


@pytest.fixture
async def worker(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Worker]:
    app = await start(tmp_path, clock, facility_tokens=f"facility-l:{TOKEN}")
    try:
        async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
            app.links.rebase(server.url)
            yield Worker(app, server.url, http, clock)
    finally:
        await app.close()


async def test_the_facility_gets_one_link_per_os_for_its_qr_codes(worker: Worker) -> None:
    link = (await worker.started())["card_read_link"]
    url = link["url"]
    assert link["ios"] == {
        "url": url + "?os=ios",
        "deep_link": "honnin-jpki://open?link=" + quote(url, safe=""),
        "qr_svg_url": url + "/qr.svg?os=ios",
        "qr_png_url": url + "/qr.png?os=ios",
    }
    assert link["android"]["url"] == url + "?os=android"
    assert (
        link["android"]["deep_link"]
        == f"intent://open?link={quote(url, safe='')}#Intent;scheme=honnin-jpki;end"
    )
    assert link["deep_link"] == link["ios"]["deep_link"]  # as before


@pytest.mark.parametrize("os", ["ios", "android"])
async def test_each_os_qr_code_encodes_its_own_link(worker: Worker, os: str) -> None:
    import zxingcpp
    from PIL import Image

    link = (await worker.started())["card_read_link"]
    async with worker.http.get(link[os]["qr_png_url"]) as response:
        assert response.status == 200
        picture = Image.open(io.BytesIO(await response.read()))
    only_qr = zxingcpp.BarcodeFormat.QRCode  # zxing-cpp 3 also reports 1D codes it thinks it sees
    assert [found.text for found in zxingcpp.read_barcodes(picture, formats=only_qr)] == [link[os]["url"]]
    async with worker.http.get(link[os]["qr_svg_url"]) as response:
        assert response.content_type == "image/svg+xml"


async def test_a_qr_code_for_an_os_nobody_knows_is_refused(worker: Worker) -> None:
    link = (await worker.started())["card_read_link"]
    async with worker.http.get(link["url"] + "/qr.svg?os=windows") as response:
        body = await response.json()
    assert (response.status, body["code"]) == (400, "unknown_os")
    assert not is_english(body["message"])


async def test_a_browser_gets_the_landing_page_with_the_app_button_for_its_os(worker: Worker) -> None:
    link = (await worker.started())["card_read_link"]
    status, kind, page = await worker.page(link["ios"]["url"])
    assert (status, kind) == (200, "text/html")
    assert "アプリを起動する" in page
    assert 'id="open-ios"' in page
    assert 'id="open-android"' not in page
    assert f'href="{link["ios"]["deep_link"]}"' in page.replace("&amp;", "&")
    assert "数字4桁の券面事項入力補助用パスワード" in page
    assert "simulator" not in page  # not in demo mode

    _, _, page = await worker.page(link["android"]["url"])
    assert 'id="open-android"' in page
    assert link["android"]["deep_link"] in page.replace("&amp;", "&")


@pytest.mark.parametrize(
    ("agent", "shown"), [(IPHONE, {"ios"}), (ANDROID, {"android"}), (DESKTOP, {"ios", "android"})]
)
async def test_without_os_the_phone_says_which_it_is_and_a_pc_gets_both(
    worker: Worker, agent: str, shown: set[str]
) -> None:
    link = (await worker.started())["card_read_link"]
    _, _, page = await worker.page(link["url"], agent)
    assert {os for os in ("ios", "android") if f'id="open-{os}"' in page} == shown


@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/json, text/html;q=0.5"])
async def test_the_app_still_gets_json(worker: Worker, accept: str | None) -> None:
    link = (await worker.started())["card_read_link"]
    headers = {"Accept": accept} if accept else {}
    async with worker.http.get(link["url"] + "?os=ios", headers=headers) as response:
        assert response.content_type == "application/json"
        body = await response.json()
    assert body["step"] == "card_read"
    assert set(body) == {"step", "registration_id", "expires_at"}


async def test_a_link_that_cannot_be_used_says_why_in_japanese_on_the_page(worker: Worker) -> None:
    link = (await worker.started())["card_read_link"]
    status, _, page = await worker.page(link["url"].replace("/links/", "/links/x") + "?os=ios")
    assert status == 404
    assert "このリンクは無効です。" in page
    status, _, page = await worker.page(link["url"] + "?os=windows")
    assert status == 400
    assert "ios か android" in page
    worker.clock.advance(timedelta(hours=1))
    status, _, page = await worker.page(link["ios"]["url"])
    assert status == 410
    assert 'class="error"' in page
    assert "このリンクは有効期限が切れています。" in page


async def test_the_landing_page_repeats_nothing_it_was_not_given(worker: Worker) -> None:
    link = (await worker.started())["card_read_link"]
    _, _, page = await worker.page(link["url"] + "?os=ios&x=<script>")
    assert "<script>" not in page
    assert "公的" not in page  # no personal fact on a page anyone with the link can open


async def test_a_normal_worker_serves_no_demo_page_and_no_simulator(worker: Worker) -> None:
    link = (await worker.started())["card_read_link"]
    token = link["url"].rsplit("/", 1)[1]
    for method, path in (
        ("GET", "/demo/"),
        ("GET", "/demo/form"),
        ("GET", "/demo/state.json"),
        ("GET", f"/demo/app/{token}"),
        ("POST", f"/demo/app/{token}"),
    ):
        async with worker.http.request(method, worker.base + path) as response:
            assert response.status == 404, path


def test_the_openapi_document_describes_the_os_links_the_landing_page_and_the_error_shape() -> None:
    from honnin.openapi_routes import openapi_document

    document = openapi_document()
    link = document["paths"]["/app/v1/links/{token}"]["get"]
    [os] = [p for p in link["parameters"] if p["name"] == "os"]
    assert (os["in"], os["schema"]["enum"]) == ("query", ["ios", "android"])
    assert "text/html" in link["description"]
    for qr in ("qr.svg", "qr.png"):
        assert "os" in {
            p["name"] for p in document["paths"][f"/app/v1/links/{{token}}/{qr}"]["get"]["parameters"]
        }
    schemas = document["components"]["schemas"]
    assert {"code", "message", "message_en", "details"} <= set(schemas["ErrorBody"]["properties"])
    assert {"ios", "android"} <= set(schemas["Link"]["properties"])
    assert "remedy" in schemas["VerificationStatus"]["properties"]


async def test_a_signing_link_that_cannot_sign_is_a_page_in_japanese(worker: Worker) -> None:
    started = await worker.started()
    rid = started["registration_id"]  # the facility's own id; links carry Honnin's derived one
    sign = worker.app.links.issue(namespaced_id("facility-l", rid), "sign", 1)
    status, _, page = await worker.page(sign.ios.url)
    assert status == 409  # confirmed not yet: nothing to sign
    assert "まだ署名できません。" in page
    gone = worker.app.links.issue("reg-nobody-here-01", "sign", 1)
    status, _, page = await worker.page(gone.android.url)
    assert status == 404
    assert "指定された" in page
    async with worker.http.delete(
        f"{worker.base}/v1/registrations/{rid}", headers={"Authorization": f"Bearer {TOKEN}"}
    ):
        pass
    status, _, page = await worker.page(sign.url)
    assert status == 410
    assert "この登録は既に終了しています。" in page
