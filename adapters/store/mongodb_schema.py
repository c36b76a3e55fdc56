"""The MongoDB store's indexes, and the data key's check (as sqlite_schema's, for the same reason:
a wrong key would make every document look tampered and send the whole store to quarantine)."""

from __future__ import annotations

import contextlib
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, DuplicateKeyError, OperationFailure

from adapters.store.codec import Sealer
from orchestrator.errors import ConfigurationError

Doc = dict[str, Any]

PARTIAL: dict[str, tuple[str, str]] = {
    "registrations_due": ("next_deadline_at", "next_deadline_at_1"),
    "registrations_ended": ("ended_at", "ended_at_1"),
}
"""Partial index name → (its date field, the sparse index an earlier version made on it)."""

_KEY_CHECK = "key_check"
_KEY_CHECK_AAD = "meta:key_check"
_SAMPLE = 8
_WRONG_KEY = "the data key does not open this store: HONNIN_DATA_KEY is not the key it was written with"


async def create_core_indexes(db: AsyncDatabase[Doc]) -> None:
    """Indexes of registrations, history and the outbox; the collections a commit's transaction
    writes exist before any transaction."""
    for name in ("counters", "meta", "quarantine", "dead_letters"):
        with contextlib.suppress(CollectionInvalid):  # made by an earlier start
            await db.create_collection(name)
    for name, (field, sparse) in PARTIAL.items():
        await _replace_sparse(db.registrations, sparse)
        await db.registrations.create_index(
            [(field, ASCENDING)], name=name, partialFilterExpression={field: {"$type": "date"}}
        )
    await db.history.create_index([("registration_id", ASCENDING), ("seq", ASCENDING)])
    await db.outbox.create_index([("sent_at", ASCENDING), ("created_at", ASCENDING), ("idx", ASCENDING)])
    await db.outbox.create_index([("registration_id", ASCENDING)])


async def _replace_sparse(collection: AsyncCollection[Doc], name: str) -> None:
    """Drop an index an earlier version made sparse on a field stored as null (it held every document)."""
    found = (await collection.index_information()).get(name)
    if found is not None and found.get("sparse"):
        with contextlib.suppress(OperationFailure):  # another worker starting dropped it first
            await collection.drop_index(name)


async def check_key(db: AsyncDatabase[Doc], sealer: Sealer) -> None:
    found = await db.meta.find_one({"_id": _KEY_CHECK})
    if found is not None:
        if not _opens(sealer, found.get("value"), _KEY_CHECK_AAD):
            raise ConfigurationError(_WRONG_KEY)
        return
    sample = (
        await db.registrations.find({}, {"data": 1}).sort("updated_at", DESCENDING).limit(_SAMPLE).to_list()
    )
    if sample and not any(_opens(sealer, d.get("data"), f"registration:{d['_id']}") for d in sample):
        raise ConfigurationError(_WRONG_KEY)
    with contextlib.suppress(DuplicateKeyError):  # another worker wrote it first
        await db.meta.insert_one({"_id": _KEY_CHECK, "value": Binary(sealer.seal(b"honnin", _KEY_CHECK_AAD))})


def _opens(sealer: Sealer, blob: object, aad: str) -> bool:
    if not isinstance(blob, bytes | bytearray):
        return False
    try:
        sealer.open(bytes(blob), aad)
    except ConfigurationError:
        return False
    return True
