"""The stores every contract test runs against: SQLite always, MongoDB when a server is named."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from orchestrator.ports import Store

MONGODB_URL = os.environ.get("HONNIN_MONGODB_URL")
KINDS = ["sqlite", *(["mongodb"] if MONGODB_URL else [])]
"""MongoDB joins when HONNIN_MONGODB_URL names a replica-set member (compose.yaml starts one)."""


async def open_store(kind: str, tmp_path: Path, sealer: Sealer) -> Store:
    if kind == "sqlite":
        return await SqliteStore.open(tmp_path / "contract.db", sealer)
    from adapters.store.mongodb import MongoStore

    assert MONGODB_URL is not None
    return await MongoStore.open(MONGODB_URL, f"honnin_test_{uuid.uuid4().hex[:12]}", sealer)


async def dispose(store: Store) -> None:
    drop = getattr(store, "drop", None)  # MongoDB: each test had a database of its own
    if drop is not None:
        await drop()
    await store.close()


BLOBS = {
    "registration": (("registrations", "id", "data"), ("registrations", "_id", "data")),
    "history": (("history", "event_id", "event"), ("history", "event_id", "event")),
    "outbox": (("outbox", "message_id", "body"), ("outbox", "_id", "body")),
    "feed": (("feed", "event_id", "body"), ("feed", "_id", "body")),
    "webhook": (("webhook_endpoints", "facility_id", "secret"), ("webhook_endpoints", "_id", "secret")),
}
"""kind → (SQLite table, key column, blob column), (MongoDB collection, key field, blob field)."""


class Raw:
    """What a test writes past the Store port: rows as an older version or an attacker left them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sqlite = isinstance(store, SqliteStore)

    async def blob(self, kind: str, key: str) -> bytes:
        if self.sqlite:
            table, column, blob = BLOBS[kind][0]
            rows = await self.store._fetch(f"SELECT {blob} FROM {table} WHERE {column} = ?", (key,))  # type: ignore[attr-defined]
            return bytes(rows[0][0])
        collection, field, blob = BLOBS[kind][1]
        doc = await self.store._db[collection].find_one({field: key})  # type: ignore[attr-defined]
        return bytes(doc[blob])

    async def set_blob(self, kind: str, key: str, value: bytes) -> None:
        if self.sqlite:
            table, column, blob = BLOBS[kind][0]
            async with self.store._transaction() as db:  # type: ignore[attr-defined]
                await db.execute(f"UPDATE {table} SET {blob} = ? WHERE {column} = ?", (value, key))
            return
        from bson import Binary

        collection, field, blob = BLOBS[kind][1]
        await self.store._db[collection].update_one({field: key}, {"$set": {blob: Binary(value)}})  # type: ignore[attr-defined]

    async def tamper(self, kind: str, key: str) -> None:
        """Flip one bit of the sealed blob: AES-GCM's tag no longer matches."""
        blob = bytearray(await self.blob(kind, key))
        blob[-1] ^= 0x01
        await self.set_blob(kind, key, bytes(blob))

    async def insert_registration(self, rid: str, sealed: bytes, *, state: str = "info_entered") -> None:
        """A registration row as the code before schema versions wrote it: no schema_version."""
        at = "2026-11-23T09:00:00.000000+00:00"
        if self.sqlite:
            async with self.store._transaction() as db:  # type: ignore[attr-defined]
                await db.execute(
                    "INSERT INTO registrations (id, version, state, next_deadline_at, updated_at,"
                    " ended_at, data) VALUES (?, 1, ?, NULL, ?, NULL, ?)",
                    (rid, state, at, sealed),
                )
            return
        from datetime import datetime

        from bson import Binary

        doc = {
            "_id": rid,
            "version": 1,
            "outbox_seq": 0,
            "state": state,
            "next_deadline_at": None,
            "updated_at": datetime.fromisoformat(at),
            "ended_at": None,
            "data": Binary(sealed),
        }
        await self.store._db.registrations.insert_one(doc)  # type: ignore[attr-defined]

    async def schema_version(self, rid: str) -> int | None:
        if self.sqlite:
            rows = await self.store._fetch("SELECT schema_version FROM registrations WHERE id = ?", (rid,))  # type: ignore[attr-defined]
            return int(rows[0][0])
        doc = await self.store._db.registrations.find_one({"_id": rid})  # type: ignore[attr-defined]
        return doc.get("schema_version")
