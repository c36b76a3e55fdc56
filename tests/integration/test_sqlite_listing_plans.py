"""Every operator listing filter is an index range on SQLite: the planner searches an index and
never sorts a temporary B-tree, with or without a cursor (EXPLAIN QUERY PLAN on a real file)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from adapters.store.sqlite_listing import listing_sql
from orchestrator.listing import RegistrationQuery

AT = datetime(2026, 11, 23, 9, tzinfo=UTC)
QUERIES = {
    "all": RegistrationQuery(),
    "state": RegistrationQuery(state="confirmed"),
    "parked": RegistrationQuery(verification="parked"),
    "parked-by-code": RegistrationQuery(state="confirmed", verification="parked", code="42"),
    "code": RegistrationQuery(code="44"),
    "facility": RegistrationQuery(facility_id="facility-1"),
    "profile": RegistrationQuery(profile="xid"),
    "created": RegistrationQuery(created_after=AT, created_before=AT),
}


@pytest.mark.parametrize("cursor", [None, (AT, "reg-00000001")], ids=["first-page", "after-cursor"])
@pytest.mark.parametrize("name", list(QUERIES))
async def test_each_listing_searches_an_index_in_its_order(
    tmp_path: Path, sealer: Sealer, name: str, cursor: tuple[datetime, str] | None
) -> None:
    store = await SqliteStore.open(tmp_path / "plans.db", sealer)
    await store.close()
    sql, params = listing_sql(QUERIES[name], cursor, 100)
    with sqlite3.connect(tmp_path / "plans.db") as db:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    assert len(plan) == 1, plan
    assert plan[0].startswith("SEARCH registrations USING INDEX registrations_"), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
