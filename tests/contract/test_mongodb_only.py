"""What only the MongoDB store has: partial indexes the queries can use, a collision found in a
batch write, the run that must fail under CI=true when the named server is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from adapters.store.codec import Sealer
from adapters.store.mongodb_operations import is_duplicate
from orchestrator.errors import StoreUnavailableError
from orchestrator.model import State
from tests.conftest import require
from tests.contract.stores import MONGODB_URL, dispose, open_store
from tests.contract.test_store_contract import NOW, commit, registration

ROOT = Path(__file__).resolve().parents[2]


def test_a_duplicate_is_recognised_in_a_batch_write_as_in_a_single_one() -> None:
    """insert_many raises BulkWriteError, never DuplicateKeyError: the collision branch reads it."""
    batch = {"writeErrors": [{"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"}], "nInserted": 1}
    assert is_duplicate(BulkWriteError(batch))
    assert not is_duplicate(BulkWriteError({"writeErrors": [{"index": 0, "code": 121, "errmsg": "invalid"}]}))
    assert not is_duplicate(BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64}]}))
    assert is_duplicate(DuplicateKeyError("E11000", 11000))
    assert not is_duplicate(OperationFailure("other", 2))


def test_under_ci_a_named_mongodb_that_is_not_there_fails_the_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env |= {"CI": "true", "HONNIN_MONGODB_URL": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500"}
    test = (
        "tests/contract/test_store_contract.py::test_a_new_registration_is_saved_at_version_1_and_loads_back"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0, run.stdout
    assert "MongoDB is required under CI=true" in run.stdout
    assert "1 passed" in run.stdout, "the SQLite run still passes"


@pytest.fixture
async def mongo(tmp_path: Path, sealer: Sealer) -> AsyncIterator[object]:
    if MONGODB_URL is None:
        pytest.skip("HONNIN_MONGODB_URL names no MongoDB")
    try:
        store = await open_store("mongodb", tmp_path, sealer)
    except StoreUnavailableError as exc:
        require("MongoDB", exc.message)
    yield store
    await dispose(store)


def _index_of(plan: dict[str, object]) -> list[str]:
    text = json.dumps(plan["queryPlanner"], default=str)  # type: ignore[index]
    return [name for name in ("registrations_due", "registrations_ended") if f'"{name}"' in text] + (
        ["COLLSCAN"] if "COLLSCAN" in text else []
    )


@pytest.mark.integration
async def test_the_deadline_and_purge_queries_use_their_partial_indexes(mongo) -> None:
    from adapters.store.mongodb import due_query, ended_query

    for n in range(20):
        rid = f"reg-index-{n:04d}"
        ended = {"state": State.CANCELLED, "ended_at": NOW} if n % 2 else {}
        await mongo.commit(commit(f"e{n}", registration(rid, **ended), 0, rid=rid))
    registrations = mongo._db.registrations
    info = await registrations.index_information()
    for name, field in (("registrations_due", "next_deadline_at"), ("registrations_ended", "ended_at")):
        assert info[name]["partialFilterExpression"] == {field: {"$type": "date"}}
        assert "sparse" not in info[name]
    due = await registrations.find(due_query(NOW + timedelta(hours=2))).sort("next_deadline_at", 1).explain()
    assert _index_of(due) == ["registrations_due"]
    ended = await registrations.find(ended_query(NOW + timedelta(days=1))).limit(100).explain()
    assert _index_of(ended) == ["registrations_ended"]
    assert len(await mongo.due(NOW + timedelta(hours=2), 100)) == 10, "the open ones only"


@pytest.mark.integration
async def test_an_earlier_versions_sparse_index_is_replaced(tmp_path: Path, sealer: Sealer, mongo) -> None:
    from adapters.store.mongodb import MongoStore

    registrations = mongo._db.registrations
    await registrations.drop_index("registrations_due")
    await registrations.create_index([("next_deadline_at", 1)], sparse=True)  # as the earlier version did
    reopened = await MongoStore.open(MONGODB_URL, mongo._db.name, sealer)
    await reopened.close()
    info = await registrations.index_information()
    assert "next_deadline_at_1" not in info
    assert "partialFilterExpression" in info["registrations_due"]
