"""/v1/webhook: a facility registers, reads, tests and removes its webhook endpoint.

PUT answers the signing secret once (a second PUT rotates it; the old one keeps signing for 24 h);
GET never shows a secret. The URL is checked at PUT (https, a public address; its name resolved)
and the sender checks the addresses again at every connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from adapters.http.common import HttpError, ok, read_json
from adapters.web.feed import Cursors, FeedApi
from adapters.webhooks.addresses import AddressPolicy, RefusedUrlError
from orchestrator.outbound import FacilityOutbound
from schemas.api_webhooks import (
    LastDelivery,
    PutWebhookRequest,
    WebhookSecret,
    WebhookStatus,
    WebhookTestSent,
)


@dataclass(frozen=True)
class OutboundApi:
    """What the facility API needs for webhooks and the feed."""

    outbound: FacilityOutbound
    policy: AddressPolicy
    cursor_key: bytes

    def feed(self) -> FeedApi:
        return FeedApi(self.outbound, Cursors(self.cursor_key))

    def webhooks(self) -> WebhookApi:
        return WebhookApi(self.outbound, self.policy)


class WebhookApi:
    def __init__(self, outbound: FacilityOutbound, policy: AddressPolicy) -> None:
        self._outbound = outbound
        self._policy = policy

    async def put(self, request: web.Request, facility: str) -> web.Response:
        body = await read_json(request, PutWebhookRequest)
        try:
            await self._policy.check_url(body.url)
        except RefusedUrlError as exc:
            raise HttpError(422, exc.code, exc.message) from None
        endpoint = await self._outbound.put_endpoint(facility, body.url)
        answer = WebhookSecret(
            url=endpoint.url,
            state=endpoint.state,
            secret=endpoint.secret,
            previous_secret_valid_until=endpoint.previous_until if endpoint.previous_secret else None,
            updated_at=endpoint.updated_at,
        )
        return ok(answer)

    async def get(self, request: web.Request, facility: str) -> web.Response:
        endpoint = await self._outbound.endpoint(facility)
        last = None
        if endpoint.last_attempt_at is not None:
            last = LastDelivery(
                attempted_at=endpoint.last_attempt_at,
                status=endpoint.last_status,
                error=endpoint.last_error,
                delivered_at=endpoint.last_delivered_at,
            )
        answer = WebhookStatus(
            url=endpoint.url,
            state=endpoint.state,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            previous_secret_valid_until=endpoint.previous_until if endpoint.previous_secret else None,
            pending=await self._outbound.pending(facility),
            last_delivery=last,
        )
        return ok(answer)

    async def delete(self, request: web.Request, facility: str) -> web.Response:
        await self._outbound.delete_endpoint(facility)
        return web.Response(status=204)

    async def test(self, request: web.Request, facility: str) -> web.Response:
        return ok(WebhookTestSent(event_id=await self._outbound.send_test(facility)), status=202)
