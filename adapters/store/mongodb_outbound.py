"""The MongoDB store's outbound half: the facility feed, webhook endpoints and their deliveries.

A commit's facility events become `feed` documents inside the commit's transaction, numbered from
a per-facility counter document the transaction increments: a second commit for the same facility
conflicts on it and is retried by `with_transaction` after the first commits, so the numbers follow
the commit order and serve as the feed's cursor. Deliveries read their body from the feed document
(a test event, which has none, carries its own).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import Binary
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, PyMongoError

from adapters.store.codec import Sealer
from adapters.store.documents import envelope_checked, opened
from adapters.store.mongodb_operations import is_duplicate
from adapters.store.mongodb_webhooks import MongoWebhooks
from orchestrator.errors import (
    CorruptRowError,
    PermanentError,
    QuarantinedError,
    StoreUnavailableError,
    exception_kind,
)
from orchestrator.ports import Commit, DeliveryAttempt, FacilityEvent, PendingDelivery

Doc = dict[str, Any]


async def create_outbound_indexes(db: AsyncDatabase[Doc]) -> None:
    """The collections a commit's transaction writes exist before any transaction (the counters
    have no index of their own to create them)."""
    with contextlib.suppress(CollectionInvalid):  # made by an earlier start
        await db.create_collection("counters")
    await db.feed.create_index([("facility_id", ASCENDING), ("seq", ASCENDING)], unique=True)
    await db.feed.create_index([("registration_id", ASCENDING)])
    await db.feed.create_index([("created_at", ASCENDING)])
    await db.webhook_deliveries.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
    await db.webhook_deliveries.create_index([("facility_id", ASCENDING), ("state", ASCENDING)])
    await db.webhook_deliveries.create_index([("registration_id", ASCENDING)])
    await db.webhook_endpoints.create_index([("state", ASCENDING)])


def _claimable(now: datetime) -> Doc:
    return {
        "state": "pending",
        "next_attempt_at": {"$lte": now},
        "$or": [{"claimed_until": None}, {"claimed_until": {"$lt": now}}],
    }


class MongoOutbound(MongoWebhooks):
    """Mixed into MongoStore: the same client, database and sealer."""

    if TYPE_CHECKING:
        _db: AsyncDatabase[Doc]
        _sealer: Sealer

        async def _quarantine(
            self, kind: str, key: str, where: Mapping[str, Doc], exc: CorruptRowError
        ) -> QuarantinedError: ...

        async def _transact(self, work: Any, what: str) -> Any: ...

    async def _quarantine_feed(self, event_id: str, exc: CorruptRowError) -> None:
        """A feed document that does not decode goes with its delivery (which would send that body)."""
        where = {"feed": {"_id": event_id}, "webhook_deliveries": {"_id": event_id}}
        await self._quarantine("feed", event_id, where, exc)

    async def _write_facility_events(self, commit: Commit, session: AsyncClientSession) -> None:
        by_facility: dict[str, list[FacilityEvent]] = defaultdict(list)
        for event in commit.facility_events:
            by_facility[event.facility_id].append(event)
        for facility, events in by_facility.items():
            counter = await self._db.counters.find_one_and_update(
                {"_id": f"feed:{facility}"},
                {"$inc": {"seq": len(events)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            assert counter is not None  # an upsert returning the document after
            first = int(counter["seq"]) - len(events) + 1
            try:
                await self._db.feed.insert_many(
                    [self._feed_doc(e, first + i) for i, e in enumerate(events)], session=session
                )
                if await self._db.webhook_endpoints.find_one({"_id": facility}, {"_id": 1}, session=session):
                    await self._db.webhook_deliveries.insert_many(
                        [_delivery_doc(e, None) for e in events], session=session
                    )
            except PyMongoError as exc:  # insert_many raises BulkWriteError, not DuplicateKeyError
                if is_duplicate(exc):  # derived ids collided: a bug, never to be retried
                    raise PermanentError("a feed event id exists already", code="feed_collision") from exc
                raise

    def _feed_doc(self, e: FacilityEvent, seq: int) -> Doc:
        return {
            "_id": e.event_id,
            "facility_id": e.facility_id,
            "seq": seq,
            "event_type": e.event_type,
            "registration_id": e.registration_id,
            "body": Binary(self._sealer.seal(e.body, f"feed:{e.event_id}")),
            "created_at": e.created_at,
        }

    async def _forget_registrations(self, ids: list[str], session: AsyncClientSession) -> None:
        await self._db.feed.delete_many({"registration_id": {"$in": ids}}, session=session)
        await self._db.webhook_deliveries.delete_many({"registration_id": {"$in": ids}}, session=session)

    async def feed(self, facility_id: str, after: int, limit: int) -> list[FacilityEvent]:
        try:
            cursor = self._db.feed.find({"facility_id": facility_id, "seq": {"$gt": after}}).sort(
                "seq", ASCENDING
            )
            docs = await cursor.limit(limit).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        events = []
        for d in docs:
            try:
                body = envelope_checked(
                    opened(self._sealer, d.get("body"), f"feed:{d['_id']}"), "a feed body"
                )
            except CorruptRowError as exc:  # the facility reads on past it
                await self._quarantine_feed(d["_id"], exc)
                continue
            events.append(
                FacilityEvent(
                    facility_id=d["facility_id"],
                    event_id=d["_id"],
                    event_type=d["event_type"],
                    registration_id=d["registration_id"],
                    body=body,
                    created_at=d["created_at"],
                    seq=int(d["seq"]),
                )
            )
        return events

    async def purge_feed(self, before: datetime, limit: int) -> int:
        """One transaction: feed events past the retention with their deliveries, and old test deliveries."""

        async def purge(session: AsyncClientSession) -> int:
            docs = (
                await self._db.feed.find({"created_at": {"$lt": before}}, {"_id": 1}, session=session)
                .limit(limit)
                .to_list()
            )
            ids = [d["_id"] for d in docs]
            if ids:
                await self._db.webhook_deliveries.delete_many({"_id": {"$in": ids}}, session=session)
                await self._db.feed.delete_many({"_id": {"$in": ids}}, session=session)
            await self._db.webhook_deliveries.delete_many(
                {"body": {"$ne": None}, "created_at": {"$lt": before}}, session=session
            )
            return len(ids)

        return int(await self._transact(purge, "feed purge"))

    async def add_delivery(self, event: FacilityEvent) -> bool:
        body = Binary(self._sealer.seal(event.body, f"delivery:{event.event_id}"))
        try:
            if await self._db.webhook_endpoints.find_one({"_id": event.facility_id}, {"_id": 1}) is None:
                return False
            await self._db.webhook_deliveries.insert_one(_delivery_doc(event, body))
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        return True

    async def claim_deliveries(
        self, worker: str, now: datetime, lease_seconds: float, limit: int, per_endpoint: int
    ) -> list[PendingDelivery]:
        """Round-robin over active endpoints with due deliveries, each below its in-flight bound
        (two workers claiming at the same instant may briefly exceed it: the bound is best effort)."""
        until = now + timedelta(seconds=lease_seconds)
        try:
            room = await self._room(now, per_endpoint)
            docs: list[Doc] = []
            while room and len(docs) < limit:
                for facility in list(room):
                    doc = await self._db.webhook_deliveries.find_one_and_update(
                        {"facility_id": facility, **_claimable(now)},
                        {"$set": {"claimed_by": worker, "claimed_until": until}},
                        sort=[("next_attempt_at", ASCENDING), ("created_at", ASCENDING)],
                        return_document=ReturnDocument.AFTER,
                    )
                    room[facility] -= 1
                    if doc is None or room[facility] <= 0:
                        del room[facility]
                    if doc is not None:
                        docs.append(doc)
                    if len(docs) >= limit:
                        break
            return await self._pending(docs)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB delivery claim failed: {exception_kind(exc)}") from exc

    async def _room(self, now: datetime, per_endpoint: int) -> dict[str, int]:
        """Active endpoints with something due, and how many more each may have in flight."""
        active = [
            d["_id"] for d in await self._db.webhook_endpoints.find({"state": "active"}, {"_id": 1}).to_list()
        ]
        due = await self._db.webhook_deliveries.distinct(
            "facility_id", {"facility_id": {"$in": active}, **_claimable(now)}
        )
        flying = await (
            await self._db.webhook_deliveries.aggregate(
                [
                    {"$match": {"state": "pending", "claimed_until": {"$gte": now}}},
                    {"$group": {"_id": "$facility_id", "n": {"$sum": 1}}},
                ]
            )
        ).to_list()
        in_flight = {d["_id"]: int(d["n"]) for d in flying}
        return {
            f: per_endpoint - in_flight.get(f, 0) for f in sorted(due) if per_endpoint > in_flight.get(f, 0)
        }

    async def _pending(self, docs: list[Doc]) -> list[PendingDelivery]:
        claimed = []
        for d in docs:
            endpoint = await self.webhook(d["facility_id"])
            if endpoint is None:  # deleted since the claim
                continue
            body = await self._delivery_body(d)
            if body is None:  # purged or quarantined since the claim
                continue
            claimed.append(
                PendingDelivery(
                    event_id=d["_id"],
                    facility_id=d["facility_id"],
                    event_type=d["event_type"],
                    body=body,
                    attempts=int(d["attempts"]),
                    scheduled_from=d["scheduled_from"],
                    endpoint=endpoint,
                )
            )
        return claimed

    async def _delivery_body(self, d: Doc) -> bytes | None:
        """A test event carries its body; any other reads its feed document's."""
        event_id = d["_id"]
        if d.get("body") is not None:
            try:
                return envelope_checked(
                    opened(self._sealer, d["body"], f"delivery:{event_id}"), "a delivery body"
                )
            except CorruptRowError as exc:
                await self._quarantine("delivery", event_id, {"webhook_deliveries": {"_id": event_id}}, exc)
                return None
        fed = await self._db.feed.find_one({"_id": event_id}, {"body": 1})
        if fed is None:
            return None
        try:
            return envelope_checked(opened(self._sealer, fed.get("body"), f"feed:{event_id}"), "a feed body")
        except CorruptRowError as exc:
            await self._quarantine_feed(event_id, exc)
            return None

    async def record_attempt(self, worker: str, attempt: DeliveryAttempt) -> None:
        try:
            doc = await self._db.webhook_deliveries.find_one_and_update(
                {"_id": attempt.event_id, "claimed_by": worker},
                {
                    "$set": {
                        "state": attempt.state,
                        "next_attempt_at": attempt.next_attempt_at or attempt.at,
                        "last_status": attempt.status,
                        "last_error": attempt.error,
                        "claimed_by": None,
                        "claimed_until": None,
                    },
                    "$inc": {"attempts": 1},
                },
            )
            if doc is None:  # the lease ran out and another worker took it: its word counts
                return
            last = {"last_attempt_at": attempt.at, "last_status": attempt.status, "last_error": attempt.error}
            if attempt.state == "delivered":
                last["last_delivered_at"] = attempt.at
            await self._db.webhook_endpoints.update_one({"_id": doc["facility_id"]}, {"$set": last})
            if attempt.endpoint_state is not None:
                await self._db.webhook_endpoints.update_one(
                    {"_id": doc["facility_id"], "state": "active"},
                    {"$set": {"state": attempt.endpoint_state}},
                )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc

    async def replay_deliveries(self, facility_id: str, since: datetime | None, now: datetime) -> int:
        match: Doc = {"facility_id": facility_id, "state": {"$ne": "delivered"}}
        if since is not None:
            match["created_at"] = {"$gte": since}
        fresh = {
            "state": "pending",
            "attempts": 0,
            "scheduled_from": now,
            "next_attempt_at": now,
            "claimed_by": None,
            "claimed_until": None,
        }
        try:
            result = await self._db.webhook_deliveries.update_many(match, {"$set": fresh})
            await self._db.webhook_endpoints.update_one(
                {"_id": facility_id}, {"$set": {"state": "active", "updated_at": now}}
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        return int(result.modified_count)

    async def delivery_backlog(self, facility_id: str | None = None) -> int:
        match: Doc = {"state": {"$ne": "delivered"}}
        if facility_id is not None:
            match["facility_id"] = facility_id
        try:
            return await self._db.webhook_deliveries.count_documents(match)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc

    async def _blocked_registrations(self, now: datetime, worker: str) -> list[str]:
        """Registrations with an unsent outbox message that `worker` may not claim now: held back
        after a refused publish, or leased to another worker. Their later messages wait behind it
        (a commit takes its lease only when nothing of its registration is unsent, so a message
        another worker holds is the registration's earliest)."""
        found = await self._db.outbox.distinct(
            "registration_id",
            {"sent_at": None, "claimed_by": {"$ne": worker}, "claimed_until": {"$gte": now}},
        )
        return [str(r) for r in found]

    async def defer_outbox(self, message_ids: Sequence[str], until: datetime) -> None:
        try:
            await self._db.outbox.update_many(
                {"_id": {"$in": list(message_ids)}, "sent_at": None},
                {"$set": {"claimed_by": "", "claimed_until": until}},
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc


def _delivery_doc(e: FacilityEvent, body: Binary | None) -> Doc:
    return {
        "_id": e.event_id,
        "facility_id": e.facility_id,
        "registration_id": e.registration_id,
        "event_type": e.event_type,
        "body": body,
        "state": "pending",
        "attempts": 0,
        "scheduled_from": e.created_at,
        "next_attempt_at": e.created_at,
        "created_at": e.created_at,
        "last_status": None,
        "last_error": None,
        "claimed_by": None,
        "claimed_until": None,
    }
