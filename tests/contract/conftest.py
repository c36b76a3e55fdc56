"""The `store` fixture every store contract test takes: SQLite always, MongoDB when named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.store.codec import Sealer
from orchestrator.errors import StoreUnavailableError
from orchestrator.ports import Store
from tests.conftest import require
from tests.contract.stores import KINDS, dispose, open_store


def _param(kind: str):
    marks = [pytest.mark.integration] if kind == "mongodb" else []
    return pytest.param(kind, marks=marks, id=kind)


@pytest.fixture(params=[_param(k) for k in KINDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path, sealer: Sealer) -> AsyncIterator[Store]:
    try:
        opened = await open_store(request.param, tmp_path, sealer)
    except StoreUnavailableError as exc:  # MongoDB named but not reachable: fails under CI=true
        require("MongoDB", exc.message)
    yield opened
    await dispose(opened)
