"""Who is calling the xID app API: an app client's bearer secret (HONNIN_APP_CLIENTS).

Secrets are compared as the facility tokens are (`adapters.web.auth.FacilityTokens`: SHA-256
digests, `hmac.compare_digest`, every entry tried). The two tables are separate and settings
refuse a secret or an id in both, so a facility token never opens these routes, nor an app
client's secret the facility API.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from adapters.http.common import HttpError, error_response
from adapters.web.auth import FacilityTokens, Unauthorized

APP_UNAUTHORIZED = "an xID app client credential is required (Authorization: Bearer <secret>)"


class AppUnauthorized(HttpError):
    def __init__(self) -> None:
        super().__init__(401, "unauthorized", APP_UNAUTHORIZED)


def app_unauthorized_response() -> web.Response:
    response = error_response(401, "unauthorized", APP_UNAUTHORIZED)
    response.headers["WWW-Authenticate"] = 'Bearer realm="honnin-app"'
    return response


class AppClients:
    """Bearer secret → app client id, looked up in constant time."""

    def __init__(self, clients: Mapping[str, str]) -> None:
        self._table = FacilityTokens(clients)

    def client_of(self, request: web.Request) -> str:
        try:
            return self._table.facility_of(request)
        except Unauthorized:
            raise AppUnauthorized() from None
