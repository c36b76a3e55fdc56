"""The MongoDB store's operator half: the quarantine, dead letters and `honnin migrate`.

Like SQLite's (sqlite_operations): a read that meets a document it cannot decode moves it, and the
documents that only make sense with it, into `quarantine` in one transaction, logs it and goes on.
Entries and dead letters are numbered from counter documents, so ids are whole numbers on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from bson import Binary, json_util
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from adapters.store.codec import Sealer
from adapters.store.documents import opened, registration_from, registration_plain
from adapters.store.mongodb_listing import UNINDEXED, listing_fields
from orchestrator.errors import (
    CorruptRowError,
    PermanentError,
    QuarantinedError,
    StoreUnavailableError,
    exception_kind,
    failure_reason,
)
from orchestrator.ports import BusMessage, DeadLetter, MigrationBatch, QuarantineEntry
from orchestrator.versions import REGISTRATION_VERSION

log = structlog.get_logger("honnin.store")

Doc = dict[str, Any]
Where = Mapping[str, Doc]
"""collection → filter: the documents a quarantine moves together."""

_COLLECTIONS = frozenset(
    {"registrations", "history", "outbox", "feed", "webhook_deliveries", "webhook_endpoints", "dead_letters"}
)
OLDER_REGISTRATIONS: Doc = {
    "$or": [
        {"schema_version": {"$exists": False}},
        {"schema_version": {"$lt": REGISTRATION_VERSION}},
        UNINDEXED,
    ]
}
"""Documents written before versions have none: they are version 1; documents written before the
listing fields lack `created_at` (mongodb_listing)."""


async def create_operations_indexes(db: AsyncDatabase[Doc]) -> None:
    await db.quarantine.create_index([("kind", ASCENDING), ("key", ASCENDING)])
    await db.dead_letters.create_index([("queue", ASCENDING), ("message_id", ASCENDING)], unique=True)


def dead_letter_aad(queue: str, message_id: str) -> str:
    return f"dead_letter:{queue}:{message_id}"


def is_duplicate(exc: PyMongoError) -> bool:
    """A duplicate key: DuplicateKeyError from a single write, a BulkWriteError from insert_many."""
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return any(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
    return False


class MongoOperations:
    """Mixed into MongoStore: the same client, database and sealer."""

    if TYPE_CHECKING:
        _client: AsyncMongoClient[Doc]
        _db: AsyncDatabase[Doc]
        _sealer: Sealer

    async def _next(self, name: str, session: AsyncClientSession | None = None) -> int:
        counter = await self._db.counters.find_one_and_update(
            {"_id": name},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert counter is not None  # an upsert returning the document after
        return int(counter["seq"])

    async def _quarantine(self, kind: str, key: str, where: Where, exc: CorruptRowError) -> QuarantinedError:
        """Move the documents aside with why, in one transaction; the error a read of them raises."""
        reason = failure_reason(exc)

        async def move(session: AsyncClientSession) -> bool:
            moved: dict[str, list[Doc]] = {}
            for name, match in where.items():
                docs = await self._db[name].find(match, session=session).to_list()
                if docs:
                    await self._db[name].delete_many(
                        {"_id": {"$in": [d["_id"] for d in docs]}}, session=session
                    )
                    moved[name] = docs
            if moved:  # another worker may have moved them first
                entry = {
                    "_id": await self._next("quarantine", session),
                    "kind": kind,
                    "key": key,
                    "reason": reason,
                    "rows": moved,
                    "quarantined_at": datetime.now(UTC),
                }
                await self._db.quarantine.insert_one(entry, session=session)
            return bool(moved)

        if await self._transact(move, "quarantine"):
            log.error("store.row_quarantined", kind=kind, key=key, reason=reason)
        return QuarantinedError(f"{kind} {key} is in the quarantine ({reason})")

    async def _transact(self, work: Any, what: str) -> Any:
        try:
            async with self._client.start_session() as session:
                return await session.with_transaction(work)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB {what} failed: {exception_kind(exc)}") from exc

    async def _is_quarantined(self, kind: str, key: str) -> bool:
        return (
            await self._read(self._db.quarantine.find_one({"kind": kind, "key": key}, {"_id": 1})) is not None
        )

    @staticmethod
    async def _read(pending: Any) -> Any:
        try:
            return await pending
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc

    async def list_quarantine(
        self, kind: str | None = None, after: int = 0, limit: int = 100
    ) -> list[QuarantineEntry]:
        match: Doc = {"_id": {"$gt": after}, **({"kind": kind} if kind else {})}
        docs = await self._read(self._db.quarantine.find(match).sort("_id", ASCENDING).limit(limit).to_list())
        return [_entry(d) for d in docs]

    async def quarantined(self, entry_id: int) -> QuarantineEntry | None:
        doc = await self._read(self._db.quarantine.find_one({"_id": entry_id}))
        return _entry(doc) if doc else None

    async def release_quarantined(self, entry_id: int) -> bool:
        async def release(session: AsyncClientSession) -> bool:
            doc = await self._db.quarantine.find_one({"_id": entry_id}, session=session)
            if doc is None:
                return False
            for name, docs in doc["rows"].items():
                if name not in _COLLECTIONS:
                    raise PermanentError(
                        f"the entry names a collection this store does not have: {name[:40]}"
                    )
                try:
                    await self._db[name].insert_many(docs, session=session)
                except PyMongoError as exc:
                    if is_duplicate(exc):
                        raise PermanentError(
                            f"a {name} document with this key exists again: discard one of them",
                            code="release_conflict",
                        ) from exc
                    raise
            await self._db.quarantine.delete_one({"_id": entry_id}, session=session)
            return True

        released = bool(await self._transact(release, "release"))
        if released:
            log.info("store.quarantine_released", entry=entry_id)
        return released

    async def discard_quarantined(self, entry_id: int) -> bool:
        try:
            deleted = await self._db.quarantine.delete_one({"_id": entry_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        if deleted.deleted_count:
            log.warning("store.quarantine_discarded", entry=entry_id)
        return deleted.deleted_count == 1

    async def quarantine_count(self, kind: str | None = None) -> int:
        return int(await self._read(self._db.quarantine.count_documents({"kind": kind} if kind else {})))

    async def add_dead_letter(self, letter: DeadLetter, at: datetime) -> None:
        m = letter.message
        try:
            await self._db.dead_letters.find_one_and_update(
                {"queue": letter.queue, "message_id": m.message_id},
                {
                    "$set": {
                        "routing_key": m.routing_key,
                        "headers": dict(m.headers),
                        "body": Binary(
                            self._sealer.seal(m.body, dead_letter_aad(letter.queue, m.message_id))
                        ),
                        "reason": letter.reason,
                        "attempts": letter.attempts,
                        "last_seen_at": at,
                    },
                    "$min": {"first_seen_at": letter.first_seen_at or at},
                    "$setOnInsert": {"_id": await self._next("dead_letters")},
                },
                upsert=True,
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc

    async def dead_letters(
        self, queue: str | None = None, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        match: Doc = {"_id": {"$gt": after}, **({"queue": queue} if queue else {})}
        docs = await self._read(
            self._db.dead_letters.find(match).sort("_id", ASCENDING).limit(limit).to_list()
        )
        return [letter for d in docs if (letter := await self._letter(d)) is not None]

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        doc = await self._read(self._db.dead_letters.find_one({"_id": letter_id}))
        return await self._letter(doc) if doc else None

    async def _letter(self, d: Doc) -> DeadLetter | None:
        try:
            body = opened(self._sealer, d.get("body"), dead_letter_aad(d["queue"], d["message_id"]))
        except CorruptRowError as exc:
            await self._quarantine("dead_letter", str(d["_id"]), {"dead_letters": {"_id": d["_id"]}}, exc)
            return None
        return DeadLetter(
            queue=d["queue"],
            message=BusMessage(
                d["routing_key"], body, d["message_id"], {str(k): str(v) for k, v in d["headers"].items()}
            ),
            reason=d["reason"],
            attempts=int(d["attempts"]),
            id=int(d["_id"]),
            first_seen_at=d.get("first_seen_at"),
            last_seen_at=d.get("last_seen_at"),
        )

    async def delete_dead_letter(self, letter_id: int) -> bool:
        try:
            deleted = await self._db.dead_letters.delete_one({"_id": letter_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        return deleted.deleted_count == 1

    async def dead_letter_count(self, queue: str | None = None) -> int:
        return int(await self._read(self._db.dead_letters.count_documents({"queue": queue} if queue else {})))

    async def migrate(self, after: str, limit: int, *, dry_run: bool) -> MigrationBatch:
        """Older documents through the upgrade steps, written back under the same version (see SQLite's)."""
        match = {"_id": {"$gt": after}, **OLDER_REGISTRATIONS}
        docs = await self._read(
            self._db.registrations.find(match, {"data": 1, "version": 1})
            .sort("_id", ASCENDING)
            .limit(limit)
            .to_list()
        )
        rewritten = quarantined = upgraded = 0
        for d in docs:
            rid = d["_id"]
            try:
                registration = registration_from(opened(self._sealer, d.get("data"), f"registration:{rid}"))
            except CorruptRowError as exc:
                quarantined += 1
                if not dry_run:
                    await self._quarantine("registration", rid, {"registrations": {"_id": rid}}, exc)
                continue
            upgraded += 1
            if dry_run:
                continue
            sealed = Binary(self._sealer.seal(registration_plain(registration), f"registration:{rid}"))
            try:
                result = await self._db.registrations.update_one(
                    {"_id": rid, "version": d["version"], **OLDER_REGISTRATIONS},
                    {
                        "$set": {
                            "data": sealed,
                            "schema_version": REGISTRATION_VERSION,
                            **listing_fields(registration),
                        }
                    },
                )
            except PyMongoError as exc:
                raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
            rewritten += result.modified_count
        rewritten = upgraded if dry_run else rewritten
        last = docs[-1]["_id"] if docs else after
        return MigrationBatch(len(docs), rewritten, upgraded - rewritten, quarantined, last)


def _entry(d: Doc) -> QuarantineEntry:
    return QuarantineEntry(
        id=int(d["_id"]),
        kind=d["kind"],
        key=d["key"],
        reason=d["reason"],
        raw=json_util.dumps(d["rows"], sort_keys=True),
        quarantined_at=d["quarantined_at"],
    )
