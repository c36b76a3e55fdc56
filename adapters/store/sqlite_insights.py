"""The SQLite store's counts for metrics and the console: the outbox's lag, history by the hour."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from adapters.store.codec import stamp, unstamp
from orchestrator.ports import HistoryCount

INSIGHTS_SCHEMA = """
CREATE INDEX IF NOT EXISTS history_recorded ON history (recorded_at);
"""
"""The chart reads the last day of history by time, never the whole table."""


class SqliteInsights:
    """Mixed into SqliteStore: reads over the same connection."""

    if TYPE_CHECKING:

        async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]: ...

    async def outbox_oldest_unsent(self) -> datetime | None:
        rows = await self._fetch("SELECT MIN(created_at) FROM outbox WHERE sent_at IS NULL")
        return unstamp(rows[0][0]) if rows and rows[0][0] is not None else None

    async def history_counts(self, since: datetime, until: datetime) -> list[HistoryCount]:
        # stamps are UTC and fixed width: the first 13 characters name the hour
        rows = await self._fetch(
            "SELECT substr(recorded_at, 1, 13) AS hour, outcome, from_state, to_state, code, COUNT(*)"
            " FROM history WHERE recorded_at >= ? AND recorded_at < ?"
            " GROUP BY hour, outcome, from_state, to_state, code ORDER BY hour",
            (stamp(since), stamp(until)),
        )
        return [HistoryCount(unstamp(f"{r[0]}:00:00+00:00"), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
