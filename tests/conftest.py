from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.clock import FakeClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from tests import factory

KEY = bytes(range(32))


def require(service: str, reason: str) -> None:
    """A missing outside service skips locally and fails under CI=true, where it is required."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{service} is required under CI=true: {reason}")
    pytest.skip(f"{service} not available: {reason}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(factory.NOW)


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(KEY)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "honnin.db"


@pytest.fixture
async def sqlite_store(db_path: Path, sealer: Sealer) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(db_path, sealer)
    yield store
    await store.close()
