from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from adapters.clock import FakeClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from tests import factory

pytest_plugins = ["tests.leaks"]

KEY = bytes(range(32))

# Property tests are bounded so the suite stays quick: `honnin` (the default) tries few examples
# with a fixed seed per test; `--hypothesis-profile thorough` digs for as long as it takes.
hypothesis_settings.register_profile("honnin", max_examples=40, deadline=None, print_blob=True)
hypothesis_settings.register_profile("thorough", max_examples=2_000, deadline=None, print_blob=True)
hypothesis_settings.load_profile("honnin")


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
