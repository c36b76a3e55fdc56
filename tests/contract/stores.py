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
