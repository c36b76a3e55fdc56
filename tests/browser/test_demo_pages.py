"""A person walks seed 000 in headless Chromium: the reference facility page on a PC, the phone-app
simulator on a phone opened from the page's QR codes, and §3's errors shown in red with their remedy.

The QR codes are read from the rendered page (a screenshot of the code, decoded with zxing-cpp),
as a phone's camera would; every screen is saved in the test's artifacts folder.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from honnin.demo_site.facility import PROGRESS
from honnin.demo_site.serve import Running, running
from honnin.settings import Settings
from orchestrator import messages

pytestmark = pytest.mark.browser

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
RED = "rgb(204, 0, 0)"
NOT_FINAL = "まだ確定していません！ 内容を確認してください。"


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Running]:
    base = Settings(  # type: ignore[call-arg]
        verification_retry_base_seconds=0.5, sweep_interval_seconds=0.1, relay_idle_seconds=0.05
    )
    async with running(tmp_path / "demo", base, "127.0.0.1", 0) as started:
        yield started


class Walk:
    """The PC's browser and the phones the person picks up, with a screenshot at every screen."""

    def __init__(self, browser: Any, demo: Running, artifacts: Path) -> None:
        self.browser, self.demo, self.artifacts = browser, demo, artifacts
        self.shots = 0
        self.signed = 0
        self.pc: Any = None

    async def open(self) -> Any:
        context = await self.browser.new_context(viewport={"width": 960, "height": 900}, locale="ja-JP")
        self.pc = await context.new_page()
        await self.pc.goto(self.demo.url)
        return self.pc

    async def shot(self, page: Any, name: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    async def scan(self, selector: str) -> str:
        """Read a QR code off the PC's screen, as a phone's camera does."""
        import zxingcpp
        from PIL import Image

        picture = await self.pc.locator(selector).screenshot()
        found = zxingcpp.read_barcodes(Image.open(io.BytesIO(picture)), formats=zxingcpp.BarcodeFormat.QRCode)
        assert len(found) == 1, selector
        text: str = found[0].text
        return text

    async def phone(self, url: str, agent: str) -> Any:
        context = await self.browser.new_context(
            user_agent=agent, viewport={"width": 390, "height": 800}, locale="ja-JP", is_mobile=True
        )
        page = await context.new_page()
        await page.goto(url)
        return page

    async def up_to_the_form(self) -> None:
        pc = await self.open()
        await self.shot(pc, "home")
        await pc.click("#register")  # 【アカウント登録】
        assert "利用規約" in await pc.inner_text("h1")
        await self.shot(pc, "terms")
        await pc.click("#agree")  # 【同意する】
        await pc.fill("#login_id", "tarou12345")
        await pc.fill("#password", "facility-pass-1")
        await pc.select_option("#user_type", "勤労者")
        await pc.check("input[name=user_category][value=個人]")
        await pc.check("#identity_document")  # 本人確認書類 = マイナンバーカード
        await pc.fill("#name", "公的 花子")
        await pc.fill("#name_kana", "コウテキ ハナコ")
        await pc.fill("#postal_code", "100-0001")
        await pc.fill("#address", "東京都千代田区千代田")
        await pc.fill("#phone", "03-1234-5678")
        await pc.fill("#email", "hanako@example.jp")

    async def read_card(self, card: str = "valid") -> None:
        """① The iOS QR code → the simulator reads the card with the 4-digit PIN."""
        url = await self.scan("#qr-ios")
        assert url.startswith(self.demo.url.removesuffix("demo/") + "app/v1/links/")
        assert url.endswith("?os=ios")
        phone = await self.phone(url, IPHONE)
        assert await phone.locator("#open-ios").get_attribute("href") == _deep_link(url)
        await self.shot(phone, "phone-landing")
        await phone.click("#simulator")
        assert "これはシミュレーターです。" in await phone.inner_text("#simulator-note")
        await phone.click("#read")  # 【マイナンバーカードの読み込みを行う】
        await phone.check(f"#card-{card}")
        await phone.fill("#pin", "1234")
        await self.shot(phone, "phone-pin")
        await phone.click("#start-scan")  # 【スキャンを開始】
        assert await phone.inner_text("#success") == "マイナンバーカードの読み込みに成功しました。"
        await self.shot(phone, "phone-card-read")

    async def to_the_card_screen(self) -> None:
        pc = self.pc
        await pc.click("#reflect")  # ② 【情報を反映する】
        assert await pc.inner_text("#notice") == "マイナンバーカードの読み取りが完了しました。"
        assert await pc.input_value("#name") == "公的　花子"  # the card's, not as typed
        assert await pc.input_value("#address") == "東京都千代田区千代田１－１"
        await self.shot(pc, "reflected")
        await pc.click("#check")  # 【確認】
        assert await pc.inner_text("#not-final") == NOT_FINAL
        await self.shot(pc, "confirm-screen")
        await pc.click("#to-card")  # without the 注意事項 checkbox: refused in red
        assert await pc.inner_text("#error-message") == "注意事項の確認項目にチェックを入れてください。"
        await pc.check("#notice_acknowledged")
        await pc.click("#to-card")  # 【マイナンバーカードの確認へ】
        assert "マイナンバーカードの確認" in await pc.inner_text("h1")

    async def sign(self, card: str) -> None:
        """① The Android QR code → the simulator signs with the 6-16 character password."""
        url = await self.scan("#qr-android")
        assert url.endswith("?os=android")
        phone = await self.phone(url, ANDROID)
        assert (await phone.locator("#open-android").get_attribute("href") or "").startswith(
            "intent://open?link="
        )
        await phone.click("#simulator")
        await phone.click("#scan")  # 【スキャン開始】
        await phone.check(f"#card-{card}")
        await phone.fill("#password", "ABC123")
        await self.shot(phone, f"phone-sign-{card}")
        await phone.click("#ok")  # 【OK】
        assert await phone.inner_text("#success") == "電子署名処理に成功しました。"
        await self.wait_for_verdict()

    async def wait_for_verdict(self) -> None:
        """The page polls Honnin and says when this signature (the nth) has been checked."""
        self.signed += 1
        await self.pc.wait_for_function(
            "n => { const p = document.getElementById('progress').dataset;"
            " return p.attempt == n && ['passed', 'failed', 'parked'].includes(p.verification); }",
            arg=self.signed,
            timeout=30_000,
        )
        text = await self.pc.inner_text("#progress")
        assert text in ("署名の確認が完了しました。②【完了する】を押してください。", PROGRESS["failed"])

    async def complete(self) -> None:
        await self.pc.click("#complete")  # ② 【完了する】


async def _red(page: Any, selector: str) -> bool:
    return await page.locator(selector).evaluate("e => getComputedStyle(e).color") == RED


def _deep_link(url: str) -> str:
    from urllib.parse import quote

    return "honnin-jpki://open?link=" + quote(url.removesuffix("?os=ios"), safe="")


async def test_the_pc_flow_from_the_form_to_done(browser: Any, demo: Running, artifacts: Path) -> None:
    walk = Walk(browser, demo, artifacts)
    await walk.up_to_the_form()
    pc = walk.pc
    await pc.click("#start")  # the PC shows the iOS and Android QR codes
    assert await pc.locator("#qr-ios").is_visible()
    assert await pc.locator("#qr-android").is_visible()
    await walk.shot(pc, "qr-codes")

    await pc.click("#reflect")  # before the app read the card: seed §3.1's error, in red
    assert await pc.inner_text("#error-message") == messages.CARD_INFO_NOT_READ
    assert await pc.inner_text("#error-remedy") == (
        "再度、アプリからマイナンバーカードを読み取り、②の「情報を反映する」を押してください。"
    )
    assert await _red(pc, "#error-message")
    await walk.shot(pc, "error-card-info")

    await walk.read_card()
    await pc.wait_for_function("document.getElementById('progress').textContent.includes('読み取りが完了')")
    await walk.to_the_card_screen()
    await walk.shot(pc, "card-screen")
    await walk.sign("valid")
    await walk.shot(pc, "signed")
    await walk.complete()
    assert await pc.inner_text("#done") == "アカウント登録が完了いたしました。"
    await walk.shot(pc, "done")
    registration = await _only_registration(demo)
    assert registration.state.value == "activated"


async def test_another_persons_card_is_the_identity_mismatch_then_the_right_card_passes(
    browser: Any, demo: Running, artifacts: Path
) -> None:
    walk = Walk(browser, demo, artifacts)
    await walk.up_to_the_form()
    await walk.pc.click("#start")
    await walk.read_card("valid")
    await walk.to_the_card_screen()
    await walk.sign("other-person")
    await walk.complete()
    pc = walk.pc
    assert await pc.inner_text("#error-message") == messages.IDENTITY_MISMATCH
    assert await pc.inner_text("#error-cause") == (
        "本人確認の際に読み取った情報と異なるマイナンバーカードを使用されている可能性がございます。"
    )
    assert await pc.inner_text("#error-remedy") == (
        "本人確認の際に使用したマイナンバーカードであるか、ご確認の上、再度、署名確認を行ってください。"
    )
    assert await _red(pc, "#error-message")
    assert await _red(pc, "#error-remedy")
    await walk.shot(pc, "error-identity-mismatch")

    await walk.sign("valid")  # the page shows fresh QR codes for the new challenge: sign again
    await walk.complete()
    assert await pc.inner_text("#done") == "アカウント登録が完了いたしました。"


@pytest.mark.parametrize(
    ("card", "code", "cause"),
    [("revoked", "23", "証明書の失効されています。"), ("expired", "21", "証明書の有効期限が切れています。")],
    ids=["revoked-23", "expired-21"],
)
async def test_a_revoked_or_expired_card_shows_its_code_and_the_renewal_remedy(
    browser: Any, demo: Running, artifacts: Path, card: str, code: str, cause: str
) -> None:
    walk = Walk(browser, demo, artifacts)
    await walk.up_to_the_form()
    await walk.pc.click("#start")
    await walk.read_card("valid")
    await walk.to_the_card_screen()
    await walk.sign(card)
    await walk.complete()
    pc = walk.pc
    assert await pc.inner_text("#error-message") == messages.possibly_revoked(code)
    assert await pc.inner_text("#error-cause") == cause
    assert (
        await pc.inner_text("#error-remedy")
        == "マイナンバーカードを更新※の上、再度、署名確認を行ってください。"
    )
    assert await pc.inner_text("#error-note") == (
        "※マイナンバーカードの更新については、お住まいの市区町村窓口へお問い合わせください。"
    )
    assert await _red(pc, "#error-message")
    assert await _red(pc, "#error-remedy")
    await walk.shot(pc, f"error-code-{code}")


async def test_on_a_phone_the_page_opens_the_app_through_the_links_landing_page(
    browser: Any, demo: Running, artifacts: Path
) -> None:
    walk = Walk(browser, demo, artifacts)
    phone = await walk.phone(demo.url, IPHONE)
    await phone.click("#register")
    await phone.click("#agree")
    for selector, value in (("#login_id", "tarou12345"), ("#password", "facility-pass-1")):
        await phone.fill(selector, value)
    await phone.select_option("#user_type", "学生")
    await phone.check("input[name=user_category][value=個人]")
    await phone.check("#identity_document")
    await phone.fill("#name", "公的 花子")
    await phone.fill("#address", "東京都千代田区")
    assert await phone.locator("#qr-ios").count() == 0
    await phone.click("#start")  # 【アプリを起動する】 on the same device
    assert "/app/v1/links/" in phone.url
    assert phone.url.endswith("?os=ios")
    assert await phone.locator("#open-ios").count() == 1
    assert await phone.locator("#open-android").count() == 0
    await walk.shot(phone, "same-device-landing")


async def _only_registration(demo: Running) -> Any:
    [registration_id] = await demo.app.store.in_state("activated", 10)
    stored = await demo.app.store.load(registration_id)
    assert stored is not None
    return stored.registration
