"""The production store: MongoDB through PyMongo's async client (Motor is end-of-life).

A commit is one multi-document transaction (MongoDB must run as a replica set; compose.yaml
starts a single-node one): the processed event id (unique `_id`), the version-checked
registration, the history entry numbered from the registration's own commit counter (so history
reads in commit order, whatever the workers' clocks say), the outbox messages, and the facility
events with their deliveries (mongodb_outbound). Purges are transactions too.

Indexes on fields that are null when unset are partial (`partialFilterExpression` with `$type:
"date"`): a sparse index would hold every document, as null is a value. The queries that should
use them say `$type: "date"` too (`due_query`, `ended_query`), or the planner may not pick them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from adapters.store.codec import Sealer
from adapters.store.documents import envelope_checked, opened, registration_from, registration_plain
from adapters.store.mongodb_insights import MongoInsights, create_insights_indexes
from adapters.store.mongodb_listing import MongoListing, create_listing_indexes, listing_fields
from adapters.store.mongodb_operations import MongoOperations, create_operations_indexes, is_duplicate
from adapters.store.mongodb_outbound import MongoOutbound, create_outbound_indexes
from adapters.store.mongodb_schema import check_key, create_core_indexes
from orchestrator.errors import (
    CorruptRowError,
    DuplicateEventError,
    PermanentError,
    QuarantinedError,
    StoreUnavailableError,
    VersionConflictError,
    exception_kind,
)
from orchestrator.model import State
from orchestrator.ports import Commit, Committed, HistoryEntry, OutboxMessage, StoredRegistration
from orchestrator.versions import REGISTRATION_VERSION

Doc = dict[str, Any]


def in_commit_order(docs: list[Doc]) -> list[Doc]:
    """Oldest first (`created_at`, the committing worker's clock), except that each registration's
    rows keep their commit order (`idx`) among the places they take: two workers' clocks may
    disagree by more than the time between a registration's two commits."""
    docs = sorted(docs, key=lambda d: (d["created_at"], d["idx"]))
    places: dict[str, list[int]] = {}
    for place, doc in enumerate(docs):
        places.setdefault(doc["registration_id"], []).append(place)
    ordered = list(docs)
    for spots in places.values():
        for spot, doc in zip(spots, sorted((docs[i] for i in spots), key=lambda d: d["idx"]), strict=True):
            ordered[spot] = doc
    return ordered


def due_query(now: datetime) -> Doc:
    """Open registrations whose next deadline has passed: served by the partial index `registrations_due`."""
    return {"next_deadline_at": {"$type": "date", "$lte": now}}


def ended_query(before: datetime) -> Doc:
    """Ended without activation before `before`: served by the partial index `registrations_ended`."""
    return {"ended_at": {"$type": "date", "$lt": before}, "state": {"$ne": State.ACTIVATED.value}}


class MongoStore(MongoOutbound, MongoOperations, MongoListing, MongoInsights):
    def __init__(self, client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc], sealer: Sealer) -> None:
        self._client = client
        self._db = db
        self._sealer = sealer

    @classmethod
    async def open(cls, url: str, database: str, sealer: Sealer) -> MongoStore:
        client: AsyncMongoClient[Doc] = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
        db = client[database]
        try:
            await create_core_indexes(db)
            await create_outbound_indexes(db)
            await create_operations_indexes(db)
            await create_insights_indexes(db)
            await create_listing_indexes(db)
            await check_key(db, sealer)
        except BaseException as exc:
            await client.close()
            if isinstance(exc, PyMongoError):
                raise StoreUnavailableError(f"cannot reach MongoDB: {exception_kind(exc)}") from exc
            raise
        return cls(client, db, sealer)

    async def load(self, registration_id: str) -> StoredRegistration | None:
        try:
            doc = await self._db.registrations.find_one({"_id": registration_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB load failed: {exception_kind(exc)}") from exc
        if doc is None:
            if await self._is_quarantined("registration", registration_id):
                raise QuarantinedError(f"registration {registration_id} is in the quarantine")
            return None
        try:
            registration = registration_from(
                opened(self._sealer, doc.get("data"), f"registration:{registration_id}")
            )
        except CorruptRowError as exc:
            where = {"registrations": {"_id": registration_id}}
            raise await self._quarantine("registration", registration_id, where, exc) from exc
        return StoredRegistration(registration, int(doc["version"]))

    async def load_for_event(self, registration_id: str, event_id: str) -> StoredRegistration | None:
        if await self.is_processed(event_id):
            raise DuplicateEventError(f"event {event_id} was processed already")
        return await self.load(registration_id)

    async def is_processed(self, event_id: str) -> bool:
        try:
            return await self._db.processed_events.find_one({"_id": event_id}, {"_id": 1}) is not None
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc

    async def commit(self, commit: Commit) -> Committed:
        async def write(session: AsyncClientSession) -> Committed:
            try:
                await self._db.processed_events.insert_one(
                    {
                        "_id": commit.event_id,
                        "registration_id": commit.registration_id,
                        "processed_at": commit.history.recorded_at,
                    },
                    session=session,
                )
            except DuplicateKeyError as exc:
                raise DuplicateEventError(f"event {commit.event_id} was processed already") from exc
            version, seq = await self._write_registration(commit, session)
            ahead = await self._append(
                commit, seq, await self._next(f"history:{commit.registration_id}", session), session
            )
            await self._write_facility_events(commit, session)
            return Committed(version, leased=ahead is not None, behind=ahead or ())

        try:
            async with self._client.start_session() as session:
                return await session.with_transaction(write)
        except (DuplicateEventError, VersionConflictError, PermanentError):
            raise  # PermanentError covers an outbox or feed id collision
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB commit failed: {exception_kind(exc)}") from exc

    async def _write_registration(self, commit: Commit, session: AsyncClientSession) -> tuple[int, int]:
        """The new version, and where this commit's outbox messages start in the registration's
        own sequence (BSON dates keep milliseconds only: two commits may share a `created_at`)."""
        expected, reg, emitted = commit.expected_version, commit.registration, len(commit.outbox)
        if reg is None:
            if expected == 0:
                if await self._db.registrations.find_one(
                    {"_id": commit.registration_id}, {"_id": 1}, session=session
                ):
                    raise VersionConflictError(f"registration {commit.registration_id} exists now")
                return 0, 0
            # No new state, but the refusal was decided on `expected`: writing the document makes
            # a concurrent writer conflict with this transaction.
            touched = await self._db.registrations.find_one_and_update(
                {"_id": commit.registration_id, "version": expected},
                {"$inc": {"outbox_seq": emitted}},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if touched is None:
                raise VersionConflictError(f"registration {commit.registration_id} moved on")
            return expected, int(touched["outbox_seq"]) - emitted
        deadline = reg.next_deadline()
        fields = {
            "state": reg.state.value,
            "next_deadline_at": deadline,
            "updated_at": reg.updated_at,
            "ended_at": reg.ended_at,
            "data": Binary(self._sealer.seal(registration_plain(reg), f"registration:{reg.id}")),
            "schema_version": REGISTRATION_VERSION,
            **listing_fields(reg),
        }
        if expected == 0:
            try:
                await self._db.registrations.insert_one(
                    {"_id": reg.id, "version": 1, "outbox_seq": emitted, **fields}, session=session
                )
            except DuplicateKeyError as exc:
                raise VersionConflictError(f"registration {reg.id} exists already") from exc
            return 1, 0
        updated = await self._db.registrations.find_one_and_update(
            {"_id": reg.id, "version": expected},
            {"$set": fields, "$inc": {"version": 1, "outbox_seq": emitted}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if updated is None:
            raise VersionConflictError(f"registration {reg.id} is not at version {expected}")
        return int(updated["version"]), int(updated["outbox_seq"]) - emitted

    async def _append(
        self, commit: Commit, seq: int, position: int, session: AsyncClientSession
    ) -> tuple[str, ...] | None:
        """The history entry at `position` in its registration's commit order, and the outbox
        rows; when they took the commit's lease, the messages unsent ahead of them, else None."""
        h = commit.history
        await self._db.history.insert_one(
            {
                "registration_id": h.registration_id,
                "seq": position,
                "event_id": h.event_id,
                "event_type": h.event_type,
                "source": h.source,
                "occurred_at": h.occurred_at,
                "recorded_at": h.recorded_at,
                "outcome": h.outcome,
                "from_state": h.from_state,
                "to_state": h.to_state,
                "code": h.code,
                "message": h.message,
                "event": Binary(self._sealer.seal(h.event, f"history:{h.event_id}")),
            },
            session=session,
        )
        if not commit.outbox:
            return None
        return await self._insert_outbox(commit, seq, session)

    async def _ahead(self, commit: Commit, session: AsyncClientSession) -> tuple[str, ...] | None:
        """The messages of the commit's registrations still unsent, oldest first, when each is
        leased to the commit's worker and its lease runs; None when one is free, held back after a
        refusal, or another worker's (as SQLite's `_ahead`)."""
        lease = commit.lease
        if lease is None:
            return None
        registrations = list(dict.fromkeys(m.registration_id for m in commit.outbox))
        unsent: Doc = {"registration_id": {"$in": registrations}, "sent_at": None}
        docs = (
            await self._db.outbox.find(unsent, {"_id": 1}, session=session).sort("idx", ASCENDING).to_list()
        )
        if not docs:
            return ()
        now = commit.history.recorded_at
        not_ours = [
            {"claimed_by": {"$ne": lease.worker}},
            {"claimed_until": None},
            {"claimed_until": {"$lt": now}},
        ]
        if await self._db.outbox.find_one({**unsent, "$or": not_ours}, {"_id": 1}, session=session):
            return None
        return tuple(str(d["_id"]) for d in docs)

    async def _insert_outbox(
        self, commit: Commit, seq: int, session: AsyncClientSession
    ) -> tuple[str, ...] | None:
        ahead = await self._ahead(commit, session)
        lease = commit.lease if ahead is not None else None  # else behind an earlier one, for a sweep
        try:
            await self._db.outbox.insert_many(
                [
                    {
                        "_id": m.message_id,
                        "routing_key": m.routing_key,
                        "registration_id": m.registration_id,
                        "body": Binary(self._sealer.seal(m.body, f"outbox:{m.message_id}")),
                        "created_at": m.created_at,
                        "idx": seq + i,
                        "sent_at": None,
                        "claimed_by": lease.worker if lease else None,
                        "claimed_until": lease.until if lease else None,
                    }
                    for i, m in enumerate(commit.outbox)
                ],
                session=session,
            )
        except PyMongoError as exc:  # insert_many raises BulkWriteError, insert_one DuplicateKeyError
            if is_duplicate(exc):  # derived ids collided: a bug, never to be retried
                raise PermanentError("an outbox message id exists already", code="outbox_collision") from exc
            raise
        return ahead

    async def history(self, registration_id: str) -> list[HistoryEntry]:
        """In commit order (`seq`); entries written before it existed have none and come first."""
        try:
            cursor = self._db.history.find({"registration_id": registration_id}).sort(
                [("seq", ASCENDING), ("recorded_at", ASCENDING), ("_id", ASCENDING)]
            )
            docs = await cursor.to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        entries = []
        for d in docs:
            try:
                event = envelope_checked(
                    opened(self._sealer, d.get("event"), f"history:{d['event_id']}"), "a history event"
                )
            except CorruptRowError as exc:  # the rest of the history is still worth reading
                await self._quarantine("history", d["event_id"], {"history": {"_id": d["_id"]}}, exc)
                continue
            entries.append(
                HistoryEntry(
                    registration_id=d["registration_id"],
                    event_id=d["event_id"],
                    event_type=d["event_type"],
                    source=d["source"],
                    occurred_at=d["occurred_at"],
                    recorded_at=d["recorded_at"],
                    outcome=d["outcome"],
                    from_state=d["from_state"],
                    to_state=d["to_state"],
                    code=d["code"],
                    message=d["message"],
                    event=event,
                )
            )
        return entries

    async def due(self, now: datetime, limit: int) -> list[str]:
        try:
            cursor = (
                self._db.registrations.find(due_query(now), {"_id": 1})
                .sort("next_deadline_at", ASCENDING)
                .limit(limit)
            )
            return [d["_id"] for d in await cursor.to_list()]
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc

    async def _unpreceded(self, docs: list[Doc], taken: set[str], worker: str) -> list[Doc]:
        """The claimed rows that no unsent row of their registration outside the claim precedes.

        The claim is not one transaction: another relay claiming at the same moment may take a
        registration's first free row while this one takes the next. A row behind such a one is
        not returned, and given back if this claim took it; what this worker held already stays
        its own."""
        kept: list[Doc] = []
        back: list[str] = []
        by_registration: dict[str, list[Doc]] = {}
        for doc in docs:
            by_registration.setdefault(doc["registration_id"], []).append(doc)
        for registration_id, rows in by_registration.items():
            ids = [row["_id"] for row in rows]
            last = max(row["idx"] for row in rows)
            gap = await self._db.outbox.find_one(
                {
                    "registration_id": registration_id,
                    "sent_at": None,
                    "idx": {"$lt": last},
                    "_id": {"$nin": ids},
                },
                {"idx": 1},
                sort=[("idx", ASCENDING)],
            )
            for row in rows:
                if gap is None or row["idx"] < gap["idx"]:
                    kept.append(row)
                elif row["_id"] in taken:
                    back.append(row["_id"])
        if back:
            await self._db.outbox.update_many(
                {"_id": {"$in": back}, "claimed_by": worker, "sent_at": None},
                {"$set": {"claimed_by": None, "claimed_until": None}},
            )
        return kept

    async def release_outbox(self, worker: str) -> int:
        try:
            done = await self._db.outbox.update_many(
                {"claimed_by": worker, "sent_at": None}, {"$set": {"claimed_by": None, "claimed_until": None}}
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        return int(done.modified_count)

    async def claim_outbox(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxMessage]:
        """This worker's unexpired claims first, then free rows claimed one at a time, so two
        relays never hold the same row; of each registration only what nothing unsent outside the
        claim precedes, in commit order (`idx`)."""
        until = now + timedelta(seconds=lease_seconds)
        order = [("created_at", ASCENDING), ("idx", ASCENDING)]
        try:
            held = {"registration_id": {"$nin": await self._blocked_registrations(now, worker)}}
            docs = (
                await self._db.outbox.find(
                    {"sent_at": None, "claimed_by": worker, "claimed_until": {"$gte": now}, **held}
                )
                .sort(order)
                .limit(limit)
                .to_list()
            )
            taken: set[str] = set()  # claimed now (the rest were this worker's already)
            free = {"sent_at": None, "$or": [{"claimed_until": None}, {"claimed_until": {"$lt": now}}]}
            claim = {"$set": {"claimed_by": worker, "claimed_until": until}}
            while len(docs) < limit:
                doc = await self._db.outbox.find_one_and_update(
                    {**free, **held}, claim, sort=order, return_document=ReturnDocument.AFTER
                )
                if doc is None:
                    break
                docs.append(doc)
                taken.add(doc["_id"])
                while True:  # its registration's earlier free rows too: a clock behind made it look older
                    earlier = await self._db.outbox.find_one_and_update(
                        {**free, "registration_id": doc["registration_id"], "idx": {"$lt": doc["idx"]}},
                        claim,
                        sort=[("idx", ASCENDING)],
                        return_document=ReturnDocument.AFTER,
                    )
                    if earlier is None:
                        break
                    docs.append(earlier)
                    taken.add(earlier["_id"])
            docs = await self._unpreceded(docs, taken, worker)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB outbox claim failed: {exception_kind(exc)}") from exc
        docs = in_commit_order(docs)
        claimed = []
        for d in docs:
            try:
                body = envelope_checked(
                    opened(self._sealer, d.get("body"), f"outbox:{d['_id']}"), "an outbox body"
                )
            except CorruptRowError as exc:  # the rest goes on; this one waits for an operator
                await self._quarantine("outbox", d["_id"], {"outbox": {"_id": d["_id"]}}, exc)
                continue
            claimed.append(
                OutboxMessage(
                    message_id=d["_id"],
                    routing_key=d["routing_key"],
                    registration_id=d["registration_id"],
                    body=body,
                    created_at=d["created_at"],
                    seq=d["idx"],
                )
            )
        return claimed

    async def mark_sent(self, message_ids: Sequence[str], now: datetime) -> None:
        try:
            await self._db.outbox.update_many(
                {"_id": {"$in": list(message_ids)}},
                {"$set": {"sent_at": now, "claimed_by": None, "claimed_until": None}},
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc

    async def purge_ended(self, before: datetime, limit: int) -> int:
        """One transaction: the registrations, their history, sent outbox rows, feed events and
        deliveries go together or not at all; processed event ids stay."""

        async def purge(session: AsyncClientSession) -> int:
            docs = (
                await self._db.registrations.find(ended_query(before), {"_id": 1}, session=session)
                .limit(limit)
                .to_list()
            )
            ids = [d["_id"] for d in docs]
            if ids:
                await self._db.history.delete_many({"registration_id": {"$in": ids}}, session=session)
                await self._db.counters.delete_many(
                    {"_id": {"$in": [f"history:{i}" for i in ids]}}, session=session
                )
                await self._db.outbox.delete_many(
                    {"registration_id": {"$in": ids}, "sent_at": {"$ne": None}}, session=session
                )
                await self._forget_registrations(ids, session)
                await self._db.registrations.delete_many({"_id": {"$in": ids}}, session=session)
            return len(ids)

        return int(await self._transact(purge, "purge"))

    async def in_state(self, state: str, limit: int) -> list[str]:
        try:
            cursor = self._db.registrations.find({"state": state}, {"_id": 1}).sort("updated_at", ASCENDING)
            return [d["_id"] for d in await cursor.limit(limit).to_list()]
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc

    async def outbox_backlog(self) -> int:
        try:
            return await self._db.outbox.count_documents({"sent_at": None})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc

    async def drop(self) -> None:
        """Tests only: forget the whole database."""
        await self._client.drop_database(self._db.name)

    async def close(self) -> None:
        await self._client.close()
