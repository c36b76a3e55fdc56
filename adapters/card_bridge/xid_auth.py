"""Who is calling the xID app API: an app client's bearer secret (HONNIN_APP_CLIENTS).

Secrets are compared as the facility tokens are (`adapters.http.bearer`: SHA-256 digests,
`hmac.compare_digest`, every entry tried). The two tables are separate and settings refuse a
secret or an id in both, so a facility token never opens these routes, nor an app client's
secret the facility API.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.http.bearer import BearerTable, Realm

APP_UNAUTHORIZED = "an xID app client credential is required (Authorization: Bearer <secret>)"
APP_REALM = Realm("honnin-app", "unauthorized", APP_UNAUTHORIZED)


def app_clients(clients: Mapping[str, str]) -> BearerTable:
    """Bearer secret → app client id, looked up in constant time."""
    return BearerTable(clients, APP_REALM)
