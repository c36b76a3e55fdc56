"""An operator in headless Chromium: logs in with an operator token, sees the charts and the parked
list, replays every parked Code 42 (a dry run first, then the confirmation), and sees the
registrations move on once the revocation source is back. The screenshot is kept and checked."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from PIL import Image

from adapters.bus.inprocess import InProcessBus
from adapters.ca_revocation.devca import DevCA, Person
from adapters.ca_revocation.responder import serve as responder
from adapters.clock import FakeClock
from orchestrator.model import State
from orchestrator.ports import BusMessage
from tests.integration.harness import settle
from tests.integration.receivers import Worker, until, worker
from tests.integration.test_verification_flow import complete, sign_with, up_to_confirmed, verification_of

pytestmark = pytest.mark.browser

NOW = datetime.now(UTC).replace(microsecond=0)
OPERATOR, TOKEN = "ops-alice", "alice-operator-token-0123456789"
PARKED = ("reg-park-0001", "reg-park-0002")


async def arrange(w: Worker, ca: DevCA, ocsp: Any, clock: FakeClock) -> None:
    """One activated, one failed with Code 23, two parked with Code 42, one dead letter."""
    good, revoked, *fresh = (ca.issue(Person(), now=NOW) for _ in range(4))
    ca.revoke(revoked, at=NOW - timedelta(minutes=2), reason=x509.ReasonFlags.superseded)
    for card in (good, revoked, *fresh):
        ocsp.state.register(card.certificate)
    await up_to_confirmed(w.app, "reg-done-0001")
    await sign_with(w.app, "reg-done-0001", good)
    assert await complete(w.app, "reg-done-0001") == ("applied", None)
    await up_to_confirmed(w.app, "reg-fail-0001")
    await sign_with(w.app, "reg-fail-0001", revoked)
    ocsp.state.down = True  # the revocation source is down: retried, then parked
    for rid, card in zip(PARKED, fresh, strict=True):
        await up_to_confirmed(w.app, rid)
        await sign_with(w.app, rid, card)
    clock.advance(timedelta(minutes=5))
    await w.app.runtime.sweeper.sweep_once()
    await settle(w.app)
    for rid in PARKED:
        assert (await verification_of(w.app, rid)).verification.status == "parked"
    await w.app.bus.publish(BusMessage("registration.started", b"{not json", "poison-0001"))
    bus = w.app.bus
    assert isinstance(bus, InProcessBus)
    await until(lambda: bus.dead_letters)
    await w.app.store.add_dead_letter(bus.dead_letters[0], clock.now())  # where bootstrap's bus keeps it


async def test_an_operator_replays_the_parked_42s_from_the_console(
    browser, artifacts: Path, tmp_path: Path
) -> None:
    ca = DevCA.create(now=NOW - timedelta(days=1))
    (tmp_path / "root.der").write_bytes(ca.der)
    clock = FakeClock(NOW)
    async with (
        responder(ca) as ocsp,
        worker(
            tmp_path / "data",
            clock,
            operator_tokens=f"{OPERATOR}:{TOKEN}",
            verifier_enabled=True,
            trust_anchor_files=[tmp_path / "root.der"],
            revocation="ocsp",
            ocsp_url=f"{ocsp.url}/ocsp",
            verification_retry_limit=1,
        ) as w,
    ):
        await arrange(w, ca, ocsp, clock)
        context = await browser.new_context(viewport={"width": 1180, "height": 900}, locale="ja-JP")
        page = await context.new_page()
        await page.goto(f"{w.base}/ops/")
        assert page.url.endswith("/ops/login"), "no session: the login page"
        await page.fill("#token", TOKEN)
        await page.click("#login")
        await page.wait_for_selector("#chart-states")
        assert page.url.endswith("/ops/")

        shot = artifacts / "console.png"
        await page.screenshot(path=str(shot), full_page=True)
        await check_screenshot(page, shot)
        states = page.locator("#chart-states circle.point")
        assert await states.count() >= 5, "points for info_entered, card_read, confirmed, verified, activated"
        codes = page.locator("#chart-codes g.series")
        assert sorted([await g.get_attribute("data-series") for g in await codes.all()]) == ["23", "42"]
        assert await page.locator("#chart-codes g[data-series='42']").get_attribute("data-total") == "4"
        parked_rows = [
            await r.get_attribute("data-registration") for r in await page.locator("#parked tr.row").all()
        ]
        assert sorted(parked_rows) == list(PARKED)
        assert await page.locator("#failed tr.row").get_attribute("data-registration") == "reg-fail-0001"
        assert await page.locator("#dead-letters tr.row").count() == 1
        assert "Parked verifications" in await page.content()

        await page.click("button.replay-code[data-code='42']")
        await page.wait_for_selector("#confirm")
        assert await page.locator("#items tr[data-outcome='would_replay']").count() == 2
        assert "2 件が再実行されます" in await page.inner_text("#summary")
        await page.screenshot(path=str(artifacts / "dry-run.png"), full_page=True)
        for rid in PARKED:  # a dry run changes nothing
            assert (await verification_of(w.app, rid)).verification.status == "parked"

        ocsp.state.down = False  # the source is back
        await page.click("#confirm")
        await page.wait_for_selector("#back")
        assert await page.locator("#items tr[data-outcome='replayed']").count() == 2
        await settle(w.app)
        for rid in PARKED:
            await page.goto(f"{w.base}/ops/registrations/{rid}")
            assert await page.get_attribute("#state", "data-state") == State.SIGNATURE_VERIFIED.value
        await page.screenshot(path=str(artifacts / "moved.png"), full_page=True)
        await page.goto(f"{w.base}/ops/")
        assert await page.locator("#parked tr.row").count() == 0
        assert await page.locator("#audit tr").count() == 3, "the header, the dry run and the replay"
        for rid in PARKED:
            assert await complete(w.app, rid) == ("applied", None)
            assert (await verification_of(w.app, rid)).state is State.ACTIVATED
        await context.close()


async def check_screenshot(page: Any, shot: Path) -> None:
    """The PNG is real, and the state chart's area holds colour other than the background."""
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000
    image = Image.open(io.BytesIO(data)).convert("RGB")
    box = await page.locator("#chart-states").bounding_box()
    assert box is not None
    region = image.crop(
        (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
    )
    palette = {(0x1D, 0x4F, 0x91), (0xC0, 0x39, 0x2B), (0x27, 0xAE, 0x60), (0xE6, 0x7E, 0x22)}
    raw = region.tobytes()
    pixels = (tuple(raw[i : i + 3]) for i in range(0, len(raw), 3))
    coloured = sum(1 for pixel in pixels if _near(pixel, palette))  # type: ignore[arg-type]
    assert coloured > 300, f"the chart's lines and points are drawn ({coloured} coloured pixels)"


def _near(pixel: tuple[int, int, int], palette: set[tuple[int, int, int]]) -> bool:
    return any(sum(abs(a - b) for a, b in zip(pixel, colour, strict=True)) < 40 for colour in palette)
