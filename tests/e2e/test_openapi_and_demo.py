"""The OpenAPI document matches what is served, and `honnin demo` shows the seed's outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.clock import FakeClock
from adapters.http.common import serve
from honnin.bootstrap import App
from honnin.http import build_http
from honnin.openapi_routes import ROUTES, openapi_document
from orchestrator import messages
from tests.integration.harness import start

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    started = await start(tmp_path, clock, facility_tokens="facility-1:token-of-facility-one-000")
    yield started
    await started.close()


def served(http_app) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in http_app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


async def test_every_served_route_is_documented_and_every_documented_route_served(app: App) -> None:
    documented = {(r.method, r.path) for r in ROUTES}
    assert served(build_http(app)) == documented


async def test_the_document_is_served_and_every_schema_reference_resolves(app: App) -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/openapi.json") as response:
            assert response.status == 200
            assert await response.json() == document
        async with http.get(f"{server.url}/healthz") as response:
            assert (await response.json())["status"] == "ok"


async def test_an_unknown_path_is_a_404_in_the_error_shape(app: App) -> None:
    async with (
        serve(build_http(app)) as server,
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/v1/nothing-here") as response,
    ):
        assert response.status == 404
        assert set(await response.json()) == {"code", "message", "message_en", "details"}


def test_the_demo_plays_the_flow_and_every_seed_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    result = subprocess.run(
        [sys.executable, "-m", "honnin.cli", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("【完了する】 200: activated") == 3, (
        out
    )  # the flow, the right card after a mismatch, after a retry
    assert messages.CARD_INFO_NOT_READ in out
    assert messages.IDENTITY_MISMATCH in out
    assert messages.possibly_revoked("21") in out
    assert messages.possibly_revoked("23") in out
    assert "マイナンバーカードの読み取りが完了しました。" in out


def test_retryable_steps_document_their_idempotency_key_and_cancel_its_optional_body() -> None:
    paths = openapi_document()["paths"]
    one = "/v1/registrations/{registration_id}"
    for path, method in ((one + "/confirm", "post"), (one + "/complete", "post"), (one, "delete")):
        names = [p["name"] for p in paths[path][method]["parameters"]]
        assert "Idempotency-Key" in names, (path, method)
    assert paths[one]["delete"]["requestBody"]["required"] is False
    assert paths["/v1/registrations"]["post"]["requestBody"]["required"] is True
