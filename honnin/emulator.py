"""A card emulator: plays the facility's web page and the person's phone app over the bus.

For every registration it starts, it reads the dev CA card's four facts, confirms, signs each
challenge the orchestrator issues with the card's key, and presses 【完了する】 once the signature is
verified. It hears what a facility hears from the event feed (`GET /v1/events` long-polled over
HTTP, or the same feed read in process) and records it, so a test or a benchmark can check that
every registration was activated exactly once. Used by tests, `bench/` and demos; never in production.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import structlog

from adapters.ca_revocation.devca import Card, Person
from orchestrator.identity import CARD_SEX_TO_CERT
from orchestrator.outbound import FacilityOutbound
from orchestrator.ports import Bus, BusMessage, Clock
from orchestrator.tasks import cancel_and_wait
from schemas.events import new_event_id

log = structlog.get_logger("honnin.emulator")

CERT_SEX_TO_CARD = {cert: card for card, cert in CARD_SEX_TO_CERT.items()}


def card_facts(person: Person) -> dict[str, object]:
    """What the card-info application (券面事項入力補助AP) reads: the same person, its encodings."""
    return {
        "name": person.name,
        "address": person.address,
        "birth_date": person.birth_date.isoformat(),
        "sex": CERT_SEX_TO_CARD[person.sex],
    }


@dataclass
class Heard:
    """What the facility was told, per registration: event ids by type (a set: redeliveries fold)."""

    events: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    activated: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, registration_id: str, kind: str) -> int:
        return len(self.events[registration_id][kind])


class Feed(Protocol):
    """Where the emulator hears its facility's events: each call the next ones, long-polled."""

    async def next(self) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class HttpFeed:
    """`GET /v1/events` of a worker, with the facility's bearer token, as a facility would poll it."""

    def __init__(self, base_url: str, token: str, *, wait: float = 10.0, limit: int = 1000) -> None:
        self._url = base_url.rstrip("/") + "/v1/events"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._query = {"wait": str(wait), "limit": str(limit)}
        self._cursor: str | None = None
        self._session: aiohttp.ClientSession | None = None

    async def next(self) -> list[dict[str, Any]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        query = self._query | ({"after": self._cursor} if self._cursor else {})
        async with self._session.get(self._url, params=query, headers=self._headers) as response:
            response.raise_for_status()
            page = await response.json()
        self._cursor = page["cursor"]
        events: list[dict[str, Any]] = page["events"]
        return events

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class LocalFeed:
    """The same feed read in process (a test's worker without an HTTP server)."""

    def __init__(self, outbound: FacilityOutbound, facility_id: str, *, wait: float = 10.0) -> None:
        self._outbound = outbound
        self._facility = facility_id
        self._wait = wait
        self._after = 0

    async def next(self) -> list[dict[str, Any]]:
        events = await self._outbound.read_feed(self._facility, self._after, 1000, self._wait)
        if events:
            self._after = events[-1].seq
        return [json.loads(e.body) for e in events]

    async def close(self) -> None:
        return None


class CardEmulator:
    def __init__(
        self,
        bus: Bus,
        card: Card,
        person: Person,
        clock: Clock,
        feed: Feed,
        *,
        facility_id: str = "facility-emu",
    ) -> None:
        self._bus = bus
        self._card = card
        self._person = person
        self._clock = clock
        self._feed = feed
        self._facility = facility_id
        self._listening: asyncio.Task[None] | None = None
        self.heard = Heard()
        self.expected: set[str] = set()

    async def listen(self) -> None:
        """Read the facility's feed in the background: it hears every challenge issued too."""
        self._listening = asyncio.create_task(self._listen(), name="emulator-feed")

    async def _listen(self) -> None:
        while True:
            try:
                events = await self._feed.next()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # a worker restarting
                log.info("emulator.feed_failed", error=type(exc).__name__)
                await asyncio.sleep(0.2)
                continue
            await asyncio.gather(*(self._on_facility(event) for event in events))  # a page's
            # registrations answer at once, as many phones would; one registration's events are
            # never in one page together (each waits for the answer to the one before)

    async def close(self) -> None:
        listening, self._listening = self._listening, None
        try:
            await cancel_and_wait(listening)
        finally:
            await self._feed.close()

    async def register(self, registration_id: str) -> None:
        """Steps 1, 2 and 4 of the seed; the rest follows from what the orchestrator says."""
        self.expected.add(registration_id)
        applicant = {
            "login_id": f"user-{registration_id[-8:]}",
            "user_type": "勤労者",
            "user_category": "個人",
            "name": self._person.name,
            "address": self._person.address,
        }
        await self._send(
            registration_id,
            "registration.started",
            "web",
            {"facility_id": self._facility, "applicant": applicant},
        )
        await self._send(registration_id, "card.info_read", "app", {"card": card_facts(self._person)})
        await self._send(registration_id, "registration.confirmed", "web", {"notice_acknowledged": True})

    async def wait_activated(self, within: float) -> set[str]:
        """Registrations still not activated when everything is, or the time is up."""
        async with asyncio.timeout(within):
            while self.missing():
                self.heard.activated.clear()
                await self.heard.activated.wait()
        return self.missing()

    def missing(self) -> set[str]:
        return {r for r in self.expected if not self.heard.count(r, "registration.activated")}

    async def _on_challenge(self, event: dict[str, Any]) -> None:
        challenge = base64.b64decode(event["payload"]["challenge"])
        payload = {
            "certificate": base64.b64encode(self._card.der).decode(),
            "signature": base64.b64encode(self._card.sign(challenge)).decode(),
            "algorithm": "rsa-pkcs1v15-sha256",
        }
        await self._send(event["registration_id"], "card.signature_submitted", "app", payload)

    async def _on_facility(self, event: dict[str, Any]) -> None:
        registration_id, kind = event["registration_id"], event["type"]
        if kind == "registration.challenge_issued":
            await self._on_challenge(event)
            return
        first = not self.heard.count(registration_id, kind)
        self.heard.events[registration_id][kind].add(event["event_id"])
        if kind == "registration.signature_verified" and first:
            await self._send(registration_id, "registration.complete_requested", "web", {})
        if kind == "registration.activated":
            self.heard.activated.set()

    async def _send(
        self, registration_id: str, kind: str, source: str, payload: Mapping[str, object]
    ) -> None:
        event_id = str(new_event_id())
        envelope = {
            "event_id": event_id,
            "type": kind,
            "registration_id": registration_id,
            "occurred_at": _iso(self._clock.now()),
            "source": source,
            "schema_version": 1,
            "payload": payload,
        }
        body = json.dumps(envelope, ensure_ascii=False).encode()
        await self._bus.publish(BusMessage(kind, body, event_id))


def _iso(moment: datetime) -> str:
    return moment.isoformat()
