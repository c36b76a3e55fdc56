"""Who is calling an API: a bearer token (`Authorization: Bearer <token>`) looked up in that API's
own table, in constant time.

Each API has a table of its own: facility tokens for `/v1` (HONNIN_FACILITY_TOKENS), app client
secrets for `/app/v1/xid` (HONNIN_APP_CLIENTS), operator tokens for `/ops/v1`
(HONNIN_OPERATOR_TOKENS); settings refuse a token configured in two, so one API's token never
opens another's routes. Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against
every entry without stopping at a match, so neither the content nor the length of a token can be
learnt from timing. A missing or unknown token is answered 401 with the API's own code, message
and `WWW-Authenticate` realm (RFC 6750); the body never says which of the two it was.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from adapters.http.common import Handler, HttpError, error_response

HolderHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
"""A route's handler, given the request and who holds the token (a facility, a client, an operator)."""


@dataclass(frozen=True)
class Realm:
    """How one API answers a request without a token it knows."""

    name: str  # the WWW-Authenticate realm
    code: str
    message: str

    def response(self) -> web.Response:
        response = error_response(401, self.code, self.message)
        response.headers["WWW-Authenticate"] = f'Bearer realm="{self.name}"'
        return response


class BearerUnauthorized(HttpError):
    """401: no token, or one nobody in the table holds."""

    def __init__(self, realm: Realm) -> None:
        super().__init__(401, realm.code, realm.message)


def _digest(token: str) -> bytes:
    """Equal-length digests: `compare_digest` then leaks neither content nor length."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class BearerTable:
    """Bearer token → who holds it, looked up in constant time."""

    def __init__(self, holders: Mapping[str, str], realm: Realm) -> None:
        self._entries = [(_digest(token), holder) for token, holder in holders.items()]
        self.realm = realm

    def holder_of(self, request: web.Request) -> str:
        """Who holds the request's token, or BearerUnauthorized."""
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BearerUnauthorized(self.realm)
        presented = _digest(token.strip())
        found: str | None = None
        for digest, holder in self._entries:  # no early exit: every token costs the same
            if hmac.compare_digest(digest, presented):
                found = holder
        if found is None:
            raise BearerUnauthorized(self.realm)
        return found

    def guard(self, handler: HolderHandler) -> Handler:
        """The route: who is calling first (else the realm's 401), then the handler; its answers
        are never cached (they hold registrations, challenges, facts)."""

        async def route(request: web.Request) -> web.StreamResponse:
            try:
                holder = self.holder_of(request)
            except BearerUnauthorized:
                return self.realm.response()
            response = await handler(request, holder)
            response.headers["Cache-Control"] = "no-store"
            return response

        return route
