"""The MongoDB store's counts for metrics and the console: the outbox's lag, history by the hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from orchestrator.errors import StoreUnavailableError, exception_kind
from orchestrator.ports import HistoryCount

Doc = dict[str, Any]


async def create_insights_indexes(db: AsyncDatabase[Doc]) -> None:
    """The chart reads the last day of history by time, never the whole collection."""
    await db.history.create_index([("recorded_at", ASCENDING)])


class MongoInsights:
    """Mixed into MongoStore."""

    if TYPE_CHECKING:
        _db: AsyncDatabase[Doc]

    async def outbox_oldest_unsent(self) -> datetime | None:
        try:  # the (sent_at, created_at, idx) index answers it
            doc = await self._db.outbox.find_one(
                {"sent_at": None}, {"created_at": 1}, sort=[("sent_at", ASCENDING), ("created_at", ASCENDING)]
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return _utc(doc["created_at"]) if doc else None

    async def history_counts(self, since: datetime, until: datetime) -> list[HistoryCount]:
        keys = {k: f"${k}" for k in ("outcome", "from_state", "to_state", "code")}
        pipeline: list[Doc] = [
            {"$match": {"recorded_at": {"$gte": since, "$lt": until}}},
            {
                "$group": {
                    "_id": {"hour": {"$dateTrunc": {"date": "$recorded_at", "unit": "hour"}}, **keys},
                    "count": {"$sum": 1},
                }
            },
            {"$sort": {"_id.hour": 1}},
        ]
        try:
            cursor = await self._db.history.aggregate(pipeline)
            found = [d async for d in cursor]
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return [
            HistoryCount(
                _utc(d["_id"]["hour"]),
                d["_id"]["outcome"],
                d["_id"]["from_state"],
                d["_id"]["to_state"],
                d["_id"].get("code"),
                int(d["count"]),
            )
            for d in found
        ]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
