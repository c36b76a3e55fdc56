"""What a facility does with its outbound channel: its webhook endpoint, a test event, the feed.

The web adapter calls these after it has checked the caller and the URL; everything is kept in the
store, so every worker answers the same.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from orchestrator.errors import NotFoundError
from orchestrator.ports import Clock, FacilityEvent, Store, WebhookEndpoint
from orchestrator.wakeup import Wakeup

TEST_EVENT = "webhook.test"
FEED_MAX_WAIT = 30.0  # seconds a long poll may hold


class FacilityOutbound:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        wakeup: Wakeup,
        new_secret: Callable[[], str],
        *,
        rotation_overlap: timedelta = timedelta(hours=24),
        feed_poll_seconds: float = 0.05,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wakeup = wakeup
        self._new_secret = new_secret
        self._overlap = rotation_overlap
        self._poll = feed_poll_seconds
        self._released = False  # the worker is stopping: long polls answer at once

    async def put_endpoint(self, facility_id: str, url: str) -> WebhookEndpoint:
        """Register the endpoint, or replace it: a new secret each time, the old one still signing
        beside it for the overlap so the facility can switch without losing a delivery."""
        now = self._clock.now()
        existing = await self._store.webhook(facility_id)
        endpoint = WebhookEndpoint(facility_id, url, self._new_secret(), now, now)
        if existing is not None:
            endpoint = replace(
                existing,
                url=url,
                secret=endpoint.secret,
                updated_at=now,
                state="active",
                previous_secret=existing.secret,
                previous_until=now + self._overlap,
            )
        await self._store.put_webhook(endpoint)
        self._wakeup.notify()  # waiting deliveries may go now
        return endpoint

    async def endpoint(self, facility_id: str) -> WebhookEndpoint:
        found = await self._store.webhook(facility_id)
        if found is None:
            raise NotFoundError("this facility has no webhook endpoint", code="no_webhook")
        return found

    async def delete_endpoint(self, facility_id: str) -> None:
        if not await self._store.delete_webhook(facility_id):
            raise NotFoundError("this facility has no webhook endpoint", code="no_webhook")

    async def pending(self, facility_id: str) -> int:
        return await self._store.delivery_backlog(facility_id)

    async def send_test(self, facility_id: str) -> str:
        """A test event through the delivery path every event takes; its id is returned."""
        now = self._clock.now()
        event_id = str(uuid.uuid4())
        body = {
            "event_id": event_id,
            "type": TEST_EVENT,
            "occurred_at": now.isoformat(),
            "source": "orchestrator",
            "schema_version": 1,
            "payload": {"facility_id": facility_id},
        }
        event = FacilityEvent(facility_id, event_id, TEST_EVENT, None, json.dumps(body).encode(), now)
        if not await self._store.add_delivery(event):
            raise NotFoundError("this facility has no webhook endpoint", code="no_webhook")
        self._wakeup.notify()
        return event_id

    def release_waiting(self) -> None:
        """The worker's HTTP server is stopping: every long poll answers now with what it has (an
        empty page keeps the facility's cursor), instead of being cut off after the server's
        shutdown wait, so the facility asks again at once, of a worker that runs."""
        self._released = True
        self._wakeup.notify()

    def resume_waiting(self) -> None:
        """A server serves (again): long polls hold as usual."""
        self._released = False

    async def read_feed(self, facility_id: str, after: int, limit: int, wait: float) -> list[FacilityEvent]:
        """Events after the cursor; with none yet, hold up to `wait` seconds for the next commit:
        a commit in this worker wakes it at once, one in another worker within one store poll."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, FEED_MAX_WAIT)
        while True:
            ticket = self._wakeup.ticket()
            events = await self._store.feed(facility_id, after, limit)
            remaining = deadline - loop.time()
            if events or remaining <= 0 or self._released:
                return events
            await Wakeup.wait(ticket, min(self._poll, remaining))
