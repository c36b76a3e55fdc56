"""The MongoDB store's operator listings and audit (as SQLite's, sqlite_listing).

Registration documents carry, beside the sealed `data`, the fields a listing filters on: created_at,
reference, profile, facility_id, verification, code, retries — none a personal fact. Documents
written before them lack them (`created_at` missing) until `honnin migrate` rewrites them.
Listings sort by (created_at, _id); BSON keeps milliseconds, and the cursor a page hands out
carries the stored value, so the next page starts exactly after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from orchestrator.errors import StoreUnavailableError, exception_kind
from orchestrator.listing import (
    AuditRecord,
    Cursor,
    RegistrationCounts,
    RegistrationQuery,
    RegistrationSummary,
    summary_of,
)
from orchestrator.model import Registration

Doc = dict[str, Any]
UNINDEXED: Doc = {"created_at": {"$exists": False}}
_LISTED = {"created_at": {"$type": "date"}}
_BOUNDS = (
    ("created_after", "created_at", "$gte"),
    ("created_before", "created_at", "$lt"),
    ("updated_after", "updated_at", "$gte"),
    ("updated_before", "updated_at", "$lt"),
)
_EQUAL = ("state", "verification", "code", "facility_id", "profile")
_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]


def listing_fields(registration: Registration) -> Doc:
    """The fields written beside `data` at every commit (and by `honnin migrate`)."""
    s = summary_of(registration)
    return {
        "created_at": s.created_at,
        "reference": s.reference,
        "profile": s.profile,
        "facility_id": s.facility_id,
        "verification": s.verification,
        "code": s.code,
        "retries": s.retries,
    }


async def create_listing_indexes(db: AsyncDatabase[Doc]) -> None:
    """One index per filter, each ending in the listing's order so a page is an index range."""
    await db.registrations.create_index(_ORDER, name="registrations_listing")
    for name in ("state", "facility_id", "profile"):
        await db.registrations.create_index(
            [(name, ASCENDING), *_ORDER], name=f"registrations_{name}_listing"
        )
    await db.registrations.create_index(
        [("verification", ASCENDING), ("code", ASCENDING), *_ORDER], name="registrations_verification"
    )
    await db.registrations.create_index([("code", ASCENDING), *_ORDER], name="registrations_code")
    await db.registrations.create_index([("updated_at", ASCENDING)], name="registrations_updated")
    await db.audit.create_index([("operator", ASCENDING), ("_id", DESCENDING)])


def listing_query(query: RegistrationQuery, after: Cursor | None) -> Doc:
    match: Doc = dict(_LISTED)
    for name in _EQUAL:
        value = getattr(query, name)
        if value is not None:
            match[name] = value
    for name, field, op in _BOUNDS:
        value = getattr(query, name)
        if value is not None:
            match.setdefault(field, {}).update({op: value})
    if after is not None:
        at, rid = after
        match["$or"] = [{"created_at": {"$gt": at}}, {"created_at": at, "_id": {"$gt": rid}}]
    return match


class MongoListing:
    """Mixed into MongoStore: the same database and counters."""

    if TYPE_CHECKING:
        _db: AsyncDatabase[Doc]

        async def _next(self, name: str, session: AsyncClientSession | None = None) -> int: ...

    async def registrations(
        self, query: RegistrationQuery, after: Cursor | None = None, limit: int = 100
    ) -> list[RegistrationSummary]:
        try:
            cursor = self._db.registrations.find(listing_query(query, after), {"data": 0})
            docs = await cursor.sort(_ORDER).limit(limit).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return [_summary(d) for d in docs]

    async def registration_counts(self) -> RegistrationCounts:
        try:
            groups = {name: await self._grouped(name) for name in ("state", "verification", "code")}
            unindexed = await self._db.registrations.count_documents(UNINDEXED)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return RegistrationCounts(groups["state"], groups["verification"], groups["code"], unindexed)

    async def _grouped(self, field: str) -> dict[str, int]:
        pipeline: list[Doc] = [
            {"$match": {field: {"$type": "string"}}},
            {"$group": {"_id": f"${field}", "n": {"$sum": 1}}},
        ]
        cursor = await self._db.registrations.aggregate(pipeline)
        return {str(d["_id"]): int(d["n"]) async for d in cursor}

    async def add_audit(self, record: AuditRecord) -> int:
        try:
            audit_id = await self._next("audit")
            await self._db.audit.insert_one(
                {
                    "_id": audit_id,
                    "at": record.at,
                    "operator": record.operator,
                    "channel": record.channel,
                    "action": record.action,
                    "parameters": record.parameters,
                    "affected": record.affected,
                    "dry_run": record.dry_run,
                }
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        return audit_id

    async def audit_records(
        self, before: int | None = None, limit: int = 100, *, operator: str | None = None
    ) -> list[AuditRecord]:
        match: Doc = {}
        if before is not None:
            match["_id"] = {"$lt": before}
        if operator is not None:
            match["operator"] = operator
        try:
            docs = await self._db.audit.find(match).sort("_id", DESCENDING).limit(limit).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return [
            AuditRecord(
                id=int(d["_id"]),
                at=d["at"],
                operator=d["operator"],
                channel=d["channel"],
                action=d["action"],
                parameters=dict(d["parameters"]),
                affected=int(d["affected"]),
                dry_run=bool(d["dry_run"]),
            )
            for d in docs
        ]


def _summary(d: Doc) -> RegistrationSummary:
    created: datetime = d["created_at"]
    return RegistrationSummary(
        id=d["_id"],
        reference=d["reference"],
        state=d["state"],
        profile=d["profile"],
        facility_id=d["facility_id"],
        created_at=created,
        updated_at=d["updated_at"],
        verification=d.get("verification"),
        code=d.get("code"),
        retries=int(d.get("retries") or 0),
        version=int(d["version"]),
    )
