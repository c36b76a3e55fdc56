"""Who is calling the operator API: an operator's own bearer token (HONNIN_OPERATOR_TOKENS).

The tokens are looked up as the facility API's are (SHA-256 digests compared in constant time,
adapters.web.auth), in a table of their own: a facility token never opens `/ops/v1`, and an
operator token never opens `/v1` (settings refuse a token configured for both).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from adapters.http.common import HttpError, error_response
from adapters.web.auth import FacilityTokens, Unauthorized

OPERATOR_UNAUTHORIZED = "an operator bearer token is required (Authorization: Bearer <token>)"


class OperatorUnauthorized(HttpError):
    def __init__(self) -> None:
        super().__init__(401, "operator_unauthorized", OPERATOR_UNAUTHORIZED)


def operator_unauthorized_response() -> web.Response:
    response = error_response(401, "operator_unauthorized", OPERATOR_UNAUTHORIZED)
    response.headers["WWW-Authenticate"] = 'Bearer realm="honnin-ops"'
    return response


class OperatorTokens:
    """Bearer token → operator name (the audit's who)."""

    def __init__(self, operators: Mapping[str, str]) -> None:
        self._tokens = FacilityTokens(operators)

    def operator_of(self, request: web.Request) -> str:
        """The calling operator's name, or OperatorUnauthorized."""
        try:
            return self._tokens.facility_of(request)
        except Unauthorized:
            raise OperatorUnauthorized() from None
