"""`honnin demo --serve`: demo mode only where it is asked for, its folder, the simulator's checks,
and a facility page that talks to Honnin through the public API alone."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.clock import FakeClock
from adapters.http.common import application
from honnin.demo_site import facility, mount
from honnin.demo_site.prepare import CARDS, FACILITY, facility_token, load_card, prepare
from honnin.demo_site.serve import Running, running
from honnin.http import build_http
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from tests.integration.harness import start

ROOT = Path(__file__).resolve().parents[2]
CHROME = "text/html,application/xhtml+xml,*/*;q=0.8"
APPLICANT = {
    "login_id": "t1",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": "公的　花子",
    "address": "東京都",
}


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Running]:
    base = Settings(verification_retry_base_seconds=0.5, sweep_interval_seconds=0.1)  # type: ignore[call-arg]
    async with running(tmp_path / "demo", base, "127.0.0.1", 0) as started:
        yield started


async def _card_link(demo: Running, http: aiohttp.ClientSession) -> str:
    headers = {"Authorization": f"Bearer {facility_token(demo.folder)}"}
    api = demo.url.removesuffix("/demo/")
    async with http.post(
        f"{api}/v1/registrations", json={"applicant": APPLICANT}, headers=headers
    ) as response:
        assert response.status == 201
        url: str = (await response.json())["card_read_link"]["url"]
        return url


def test_the_demo_folder_is_made_once_and_its_token_is_private(tmp_path: Path) -> None:
    prepare(tmp_path)
    root, token = (tmp_path / "ca" / "root.pem").read_bytes(), facility_token(tmp_path)
    assert (tmp_path / "facility-token").stat().st_mode & 0o777 == 0o600
    assert len(token) > 20
    for card in CARDS:
        assert load_card(tmp_path, card.name).certificate is not None
    prepare(tmp_path)  # a restart keeps the CA, the cards and the token; the CRL is written again
    assert (tmp_path / "ca" / "root.pem").read_bytes() == root
    assert facility_token(tmp_path) == token
    with pytest.raises(KeyError):
        load_card(tmp_path, "../../root")


async def test_demo_mode_refuses_an_unprepared_folder(tmp_path: Path, clock: FakeClock) -> None:
    app = await start(tmp_path, clock, demo=True, demo_dir=tmp_path / "nothing-here")
    try:
        with pytest.raises(ConfigurationError, match="honnin demo --serve"):
            build_http(app)
        with pytest.raises(ConfigurationError):
            mount(application(), app.settings)
    finally:
        await app.close()


async def test_in_demo_mode_the_landing_page_offers_the_simulator(demo: Running) -> None:
    async with aiohttp.ClientSession() as http:
        url = await _card_link(demo, http)
        async with http.get(url + "?os=android", headers={"Accept": CHROME}) as response:
            page = await response.text()
        token = url.rsplit("/", 1)[1]
        assert f'href="/demo/app/{token}?os=android"' in page
        async with http.get(demo.url.removesuffix("/demo/") + f"/demo/app/{token}?os=android") as response:
            simulator = await response.text()
        assert "これはシミュレーターです。" in simulator
        assert "マイナンバーカードの読み込みを行う" in simulator


async def test_the_simulator_checks_the_pin_and_password_forms_and_sends_neither(demo: Running) -> None:
    api = demo.url.removesuffix("/demo/")
    async with aiohttp.ClientSession() as http:
        url = await _card_link(demo, http)
        simulator = f"{api}/demo/app/{url.rsplit('/', 1)[1]}?screen=pin"
        for pin in ("123", "12345", "abcd", "１２３４"):
            async with http.post(simulator, data={"card": "valid", "pin": pin, "action": "read"}) as response:
                assert "券面事項入力補助用パスワード（数字4桁）を入力してください。" in await response.text()
        async with http.post(
            simulator, data={"card": "no-such-card", "pin": "1234", "action": "read"}
        ) as response:
            assert "カードを選択してください。" in await response.text()
        [rid] = await demo.app.store.in_state("info_entered", 10)
        async with http.post(simulator, data={"card": "valid", "pin": "1234", "action": "read"}) as response:
            # the bridge refuses unknown fields (a `pin` would be a 422): success means none was sent
            assert "マイナンバーカードの読み込みに成功しました。" in await response.text()
        async with http.post(simulator, data={"card": "valid", "pin": "1234", "action": "read"}) as response:
            assert 'class="error"' in await response.text()  # a link is used once: the bridge's words
        history = await demo.app.orchestrator.history(rid)
        assert [entry.event_type for entry in history] == ["registration.started", "card.info_read"]


def test_the_facility_page_talks_to_honnin_only_over_http() -> None:
    """It is the integrators' model: nothing of Honnin's own code, only HTTP and templates."""
    tree = ast.parse(Path(facility.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {
        "__future__",
        "hashlib",
        "secrets",
        "string",
        "dataclasses",
        "typing",
        "aiohttp",
        "jinja2",
    }
    assert re.findall(r'"/v1\{path\}"|/v1', Path(facility.__file__).read_text())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}


def test_honnin_demo_serve_prints_its_url_serves_the_page_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "honnin.cli", "demo", "--serve", "--port", "0"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.match(r"^Honnin demo: (http://127\.0\.0\.1:\d+/demo/) ", first)
        assert url, first
        lines = [process.stdout.readline() for _ in range(4)]
        folder = Path(re.search(r"development CA (\S+)/ca,", "".join(lines)).group(1))  # type: ignore[union-attr]
        assert folder.is_absolute()
        assert folder.exists()
        import urllib.request

        with urllib.request.urlopen(url.group(1), timeout=10) as answer:  # loopback
            assert "アカウント登録" in answer.read().decode()
        assert FACILITY in "".join(lines)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, out + err
    assert not folder.exists()  # the temporary folder goes with the demo
