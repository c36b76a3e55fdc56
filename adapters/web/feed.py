"""GET /v1/events: the facility's events in commit order, long-polled, behind an opaque cursor.

A cursor is base64url of the feed position and a MAC over it and the facility, so it cannot be
forged, altered or used by another facility (400 `invalid_cursor`). Without `after` the feed starts
at its oldest event kept (events stay for the retention period).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from adapters.http.common import Handler, HttpError, timeout_middleware
from orchestrator.outbound import FEED_MAX_WAIT, FacilityOutbound

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
FEED_ROUTE = "web.events"
_MAC = 12


class Cursors:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, facility: str, seq: int) -> bytes:
        message = facility.encode() + b"\x00" + struct.pack(">Q", seq)
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC]

    def encode(self, facility: str, seq: int) -> str:
        raw = struct.pack(">Q", seq) + self._mac(facility, seq)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, facility: str, cursor: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 8 + _MAC:
            raise HttpError(400, "invalid_cursor", "the cursor is not one this feed gave")
        (seq,) = struct.unpack(">Q", raw[:8])
        if not hmac.compare_digest(raw[8:], self._mac(facility, seq)):
            raise HttpError(400, "invalid_cursor", "the cursor is not one this feed gave")
        return int(seq)


def _number(query: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = query.get(name)
    if text is None:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise HttpError(400, f"invalid_{name}", f"{name} must be a number from {low:g} to {high:g}")
    return value


class FeedApi:
    def __init__(self, outbound: FacilityOutbound, cursors: Cursors) -> None:
        self._outbound = outbound
        self._cursors = cursors

    async def events(self, request: web.Request, facility: str) -> web.Response:
        """Events after `after`; with none yet, waits up to `wait` seconds (at most 30) for one."""
        query = request.query
        after = self._cursors.decode(facility, query["after"]) if query.get("after") else 0
        limit = _number(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        if not limit.is_integer():
            raise HttpError(400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
        wait = _number(query, "wait", 0, 0, FEED_MAX_WAIT)
        events = await self._outbound.read_feed(facility, after, int(limit), wait)
        last = events[-1].seq if events else after
        page = {
            "events": [json.loads(e.body) for e in events],
            "cursor": self._cursors.encode(facility, last),
        }
        return web.json_response(page, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def long_poll_aware(seconds: float, long_routes: frozenset[str] = frozenset({FEED_ROUTE})) -> Middleware:
    """The usual request time limit for every route but the long-polling ones, which the application's
    own (longer) limit bounds: mount it outermost on an application built with that longer limit."""
    bounded = timeout_middleware(seconds)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        if route.name in long_routes:
            return await handler(request)
        return await bounded(request, handler)

    return middleware


LONG_POLL_LIMIT = FEED_MAX_WAIT + 15.0
"""The application-wide limit under `long_poll_aware`: the longest wait and a margin."""
