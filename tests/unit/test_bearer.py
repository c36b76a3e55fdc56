"""The bearer tables every API looks its callers up in (adapters.http.bearer): who holds a token,
the API's own 401, answers never cached, and one API's token opening no other's routes."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from adapters.card_bridge.xid_auth import app_clients
from adapters.http.bearer import BearerTable, BearerUnauthorized, Realm
from adapters.ops.auth import operator_tokens
from adapters.web.auth import facility_tokens

REALM = Realm("honnin-test", "test_unauthorized", "a test token is required")
HOLDERS = {"token-of-a-0001": "facility-a", "token-of-b-0002": "facility-b"}


def request(authorization: str | None) -> web.Request:
    headers = {} if authorization is None else {"Authorization": authorization}
    return make_mocked_request("GET", "/x", headers=headers)


@pytest.mark.parametrize(("token", "holder"), list(HOLDERS.items()))
def test_each_token_names_its_own_holder(token: str, holder: str) -> None:
    table = BearerTable(HOLDERS, REALM)
    assert table.holder_of(request(f"Bearer {token}")) == holder
    assert table.holder_of(request(f"bearer   {token}  ")) == holder, "the scheme is case-blind"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic token-of-a-0001",
        "token-of-a-0001",
        "Bearer token-of-a-000",
        "Bearer token-of-a-00011",
        "Bearer TOKEN-OF-A-0001",
    ],
)
def test_anything_but_a_held_token_is_refused(authorization: str | None) -> None:
    with pytest.raises(BearerUnauthorized) as refused:
        BearerTable(HOLDERS, REALM).holder_of(request(authorization))
    assert (refused.value.status, refused.value.code) == (401, "test_unauthorized")


async def test_the_guard_answers_the_realms_401_without_calling_the_handler() -> None:
    called: list[str] = []

    async def handler(req: web.Request, holder: str) -> web.Response:
        called.append(holder)
        return web.json_response({"holder": holder})

    route = BearerTable(HOLDERS, REALM).guard(handler)
    refused = await route(request("Bearer nobody-holds-this"))
    assert isinstance(refused, web.Response)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="honnin-test"'
    assert refused.body is not None
    body = json.loads(bytes(refused.body))  # type: ignore[arg-type]
    assert (body["code"], body["message_en"]) == ("test_unauthorized", "a test token is required")
    assert called == []

    answered = await route(request("Bearer token-of-b-0002"))
    assert answered.status == 200
    assert answered.headers["Cache-Control"] == "no-store"
    assert called == ["facility-b"]


@pytest.mark.parametrize(
    ("make", "realm", "code", "words"),
    [
        (facility_tokens, "honnin", "unauthorized", "a facility bearer token is required"),
        (app_clients, "honnin-app", "unauthorized", "an xID app client credential is required"),
        (operator_tokens, "honnin-ops", "operator_unauthorized", "an operator bearer token is required"),
    ],
)
def test_each_api_refuses_in_its_own_realm_and_words(make: object, realm: str, code: str, words: str) -> None:
    table = make({"its-own-token-0001": "someone"})  # type: ignore[operator]
    assert isinstance(table, BearerTable)
    response = table.realm.response()
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{realm}"'
    assert response.body is not None
    assert json.loads(bytes(response.body))["message_en"].startswith(words)  # type: ignore[arg-type]
    with pytest.raises(BearerUnauthorized) as refused:
        table.holder_of(request("Bearer another-apis-token-0002"))
    assert refused.value.code == code
    assert table.holder_of(request("Bearer its-own-token-0001")) == "someone"
