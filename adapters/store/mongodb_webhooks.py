"""The MongoDB store's webhook endpoints: one document per facility, its secrets sealed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bson import Binary
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from adapters.store.codec import Sealer
from adapters.store.documents import opened
from orchestrator.errors import CorruptRowError, QuarantinedError, StoreUnavailableError, exception_kind
from orchestrator.ports import WebhookEndpoint

Doc = dict[str, Any]


class MongoWebhooks:
    """Mixed into MongoStore (through MongoOutbound): the same database and sealer."""

    if TYPE_CHECKING:
        _db: AsyncDatabase[Doc]
        _sealer: Sealer

        async def _quarantine(
            self, kind: str, key: str, where: Mapping[str, Doc], exc: CorruptRowError
        ) -> QuarantinedError: ...

    async def put_webhook(self, endpoint: WebhookEndpoint) -> None:
        f, previous = endpoint.facility_id, endpoint.previous_secret
        fields = {
            "url": endpoint.url,
            "secret": Binary(self._sealer.seal(endpoint.secret.encode(), f"webhook:{f}")),
            "previous_secret": Binary(self._sealer.seal(previous.encode(), f"webhook-previous:{f}"))
            if previous
            else None,
            "previous_until": endpoint.previous_until,
            "state": endpoint.state,
            "updated_at": endpoint.updated_at,
        }
        on_insert = {
            "created_at": endpoint.created_at,
            "last_attempt_at": None,
            "last_status": None,
            "last_error": None,
            "last_delivered_at": None,
        }
        try:
            await self._db.webhook_endpoints.update_one(
                {"_id": f}, {"$set": fields, "$setOnInsert": on_insert}, upsert=True
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc

    async def webhook(self, facility_id: str) -> WebhookEndpoint | None:
        """The endpoint; one whose secret does not open is quarantined and, until released, absent."""
        try:
            doc = await self._db.webhook_endpoints.find_one({"_id": facility_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return await self._endpoint(doc) if doc else None

    async def webhooks(self) -> list[WebhookEndpoint]:
        try:
            docs = await self._db.webhook_endpoints.find().sort("_id", ASCENDING).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB read failed: {exception_kind(exc)}") from exc
        return [e for d in docs if (e := await self._endpoint(d)) is not None]

    async def _endpoint(self, d: Doc) -> WebhookEndpoint | None:
        f = d["_id"]
        try:
            secret = opened(self._sealer, d.get("secret"), f"webhook:{f}").decode()
            earlier = d.get("previous_secret")
            previous = opened(self._sealer, earlier, f"webhook-previous:{f}").decode() if earlier else None
        except (CorruptRowError, UnicodeDecodeError) as exc:
            corrupt = exc if isinstance(exc, CorruptRowError) else CorruptRowError("the secret is not text")
            await self._quarantine("webhook", f, {"webhook_endpoints": {"_id": f}}, corrupt)
            return None
        return WebhookEndpoint(
            facility_id=f,
            url=d["url"],
            secret=secret,
            previous_secret=previous,
            previous_until=d.get("previous_until"),
            state=d["state"],
            created_at=d["created_at"],
            updated_at=d["updated_at"],
            last_attempt_at=d.get("last_attempt_at"),
            last_status=d.get("last_status"),
            last_error=d.get("last_error"),
            last_delivered_at=d.get("last_delivered_at"),
        )

    async def delete_webhook(self, facility_id: str) -> bool:
        try:
            deleted = await self._db.webhook_endpoints.delete_one({"_id": facility_id})
            await self._db.webhook_deliveries.delete_many({"facility_id": facility_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB write failed: {exception_kind(exc)}") from exc
        return deleted.deleted_count == 1
