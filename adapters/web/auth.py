"""Who is calling the facility API, and which retry a request is: bearer tokens, idempotency keys.

Each facility has its own bearer token (`Authorization: Bearer <token>`), looked up in constant
time in a table of the facility API's own (`adapters.http.bearer`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

from aiohttp import web

from adapters.http.bearer import BearerTable, Realm
from adapters.http.common import HttpError
from schemas.events import derived_event_id
from schemas.privacy import MAX_ID_DIGITS, digit_count

UNAUTHORIZED = "a facility bearer token is required (Authorization: Bearer <token>)"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


FACILITY_REALM = Realm("honnin", "unauthorized", UNAUTHORIZED)


def facility_tokens(facilities: Mapping[str, str]) -> BearerTable:
    """Facility bearer token → facility id (HONNIN_FACILITY_TOKENS)."""
    return BearerTable(facilities, FACILITY_REALM)


def idempotency_key(request: web.Request) -> str | None:
    """The caller's `Idempotency-Key` header, checked: it becomes part of an event id."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _KEY.match(key) or digit_count(key) > MAX_ID_DIGITS:
        raise HttpError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : - with at most 11 digits",
        )
    return key


def event_id_for(facility: str, route: str, registration_id: str, key: str | None) -> uuid.UUID:
    """With a key, the same (facility, key, route, registration) is the same event; else a new one."""
    if key is None:
        return uuid.uuid4()
    return derived_event_id("web", facility, route, registration_id, key)


def start_event_id(facility: str, request_id: str | None, registration_id: str | None) -> uuid.UUID:
    """A retried start is the same event: keyed by the request id, else by the caller's own id."""
    if request_id is not None:
        return derived_event_id("web", facility, "start", "request", request_id)
    if registration_id is not None:
        return derived_event_id("web", facility, "start", "registration", registration_id)
    return uuid.uuid4()


def start_registration_id(facility: str, request_id: str | None, registration_id: str | None) -> str:
    """The caller's id, else one derived from the request id (a retry finds it), else a random one."""
    if registration_id is not None:
        return registration_id
    if request_id is not None:
        return _generated(derived_event_id("web", facility, "registration-id", request_id))
    return _generated(uuid.uuid4())


def _generated(value: uuid.UUID) -> str:
    """`reg-` and 32 letters: hex digits could line up as 12 digits, refused as an individual number."""
    return "reg-" + value.hex.translate(_LETTERS)
