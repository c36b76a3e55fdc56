"""The SQLite store's operator listings and audit: indexed columns beside the sealed document.

`registrations` holds, beside `data`, the columns a listing filters on (none of them a personal
fact): created_at, reference, profile, facility_id, verification, code, retries. A file made
before they existed gains them at open (sqlite_schema.ADDED_COLUMNS) with NULLs, which
`honnin migrate` fills; until then such rows show in `registration_counts().unindexed`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import aiosqlite

from adapters.store.codec import stamp, unstamp
from orchestrator.listing import (
    AuditRecord,
    Cursor,
    RegistrationCounts,
    RegistrationQuery,
    RegistrationSummary,
    summary_of,
)
from orchestrator.model import Registration

LISTING_COLUMNS = {
    "created_at": "TEXT",
    "reference": "TEXT",
    "profile": "TEXT",
    "facility_id": "TEXT",
    "verification": "TEXT",
    "code": "TEXT",
    "retries": "INTEGER",
}
"""Added to `registrations` by sqlite_schema (nullable: a row written before them has none)."""

LISTING_INDEXES = """
CREATE INDEX IF NOT EXISTS registrations_listing ON registrations (created_at, id);
CREATE INDEX IF NOT EXISTS registrations_state_listing ON registrations (state, created_at, id);
CREATE INDEX IF NOT EXISTS registrations_verification ON registrations (verification, code, created_at, id)
    WHERE verification IS NOT NULL;
CREATE INDEX IF NOT EXISTS registrations_code ON registrations (code, created_at, id) WHERE code IS NOT NULL;
CREATE INDEX IF NOT EXISTS registrations_facility ON registrations (facility_id, created_at, id);
CREATE INDEX IF NOT EXISTS registrations_profile ON registrations (profile, created_at, id);
CREATE INDEX IF NOT EXISTS registrations_updated ON registrations (updated_at);
"""
"""Made after the columns exist (an old file gets the columns first)."""

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    channel TEXT NOT NULL,
    action TEXT NOT NULL,
    parameters TEXT NOT NULL,
    affected INTEGER NOT NULL,
    dry_run INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_operator ON audit (operator, id);
"""

_SUMMARY = (
    "id, reference, state, profile, facility_id, created_at, updated_at, verification, code, retries, version"
)
_AUDIT = "id, at, operator, channel, action, parameters, affected, dry_run"
_FILTERS = (
    ("state", "state = ?"),
    ("verification", "verification = ?"),
    ("code", "code = ?"),
    ("facility_id", "facility_id = ?"),
    ("profile", "profile = ?"),
    ("created_after", "created_at >= ?"),
    ("created_before", "created_at < ?"),
    ("updated_after", "updated_at >= ?"),
    ("updated_before", "updated_at < ?"),
)


def listing_values(registration: Registration) -> tuple[object, ...]:
    """The listing columns' values, in LISTING_COLUMNS' order."""
    s = summary_of(registration)
    return (stamp(s.created_at), s.reference, s.profile, s.facility_id, s.verification, s.code, s.retries)


LISTING_SET = ", ".join(f"{name} = ?" for name in LISTING_COLUMNS)
LISTING_NAMES = ", ".join(LISTING_COLUMNS)


class SqliteListing:
    """Mixed into SqliteStore: the same connection, lock and transactions."""

    if TYPE_CHECKING:

        def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]: ...

    async def registrations(
        self, query: RegistrationQuery, after: Cursor | None = None, limit: int = 100
    ) -> list[RegistrationSummary]:
        conditions, params = ["created_at IS NOT NULL"], []
        for name, condition in _FILTERS:
            value = getattr(query, name)
            if value is not None:
                conditions.append(condition)
                params.append(value if isinstance(value, str) else stamp(value))
        if after is not None:
            conditions.append("(created_at, id) > (?, ?)")
            params += [stamp(after[0]), after[1]]
        rows = await self._fetch(
            f"SELECT {_SUMMARY} FROM registrations WHERE {' AND '.join(conditions)}"  # noqa: S608 - fixed texts
            " ORDER BY created_at, id LIMIT ?",
            (*params, limit),
        )
        return [_summary(r) for r in rows]

    async def registration_counts(self) -> RegistrationCounts:
        async def grouped(column: str) -> dict[str, int]:
            rows = await self._fetch(
                f"SELECT {column}, COUNT(*) FROM registrations WHERE {column} IS NOT NULL"  # noqa: S608
                f" GROUP BY {column}"
            )
            return {str(r[0]): int(r[1]) for r in rows}

        unindexed = await self._fetch("SELECT COUNT(*) FROM registrations WHERE created_at IS NULL")
        return RegistrationCounts(
            by_state=await grouped("state"),
            by_verification=await grouped("verification"),
            by_code=await grouped("code"),
            unindexed=int(unindexed[0][0]),
        )

    async def add_audit(self, record: AuditRecord) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO audit (at, operator, channel, action, parameters, affected, dry_run)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    stamp(record.at),
                    record.operator,
                    record.channel,
                    record.action,
                    json.dumps(record.parameters, sort_keys=True, ensure_ascii=False),
                    record.affected,
                    int(record.dry_run),
                ),
            )
        return int(cursor.lastrowid or 0)

    async def audit_records(
        self, before: int | None = None, limit: int = 100, *, operator: str | None = None
    ) -> list[AuditRecord]:
        rows = await self._fetch(
            f"SELECT {_AUDIT} FROM audit WHERE (? IS NULL OR id < ?) AND (? IS NULL OR operator = ?)"  # noqa: S608
            " ORDER BY id DESC LIMIT ?",
            (before, before, operator, operator, limit),
        )
        return [
            AuditRecord(
                id=r[0],
                at=unstamp(r[1]),
                operator=r[2],
                channel=r[3],
                action=r[4],
                parameters=json.loads(r[5]),
                affected=r[6],
                dry_run=bool(r[7]),
            )
            for r in rows
        ]


def _summary(r: sqlite3.Row) -> RegistrationSummary:
    return RegistrationSummary(
        id=r[0],
        reference=r[1],
        state=r[2],
        profile=r[3],
        facility_id=r[4],
        created_at=unstamp(r[5]),
        updated_at=unstamp(r[6]),
        verification=r[7],
        code=r[8],
        retries=int(r[9] or 0),
        version=int(r[10]),
    )
