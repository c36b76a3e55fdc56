"""The SQLite store's operator half: the quarantine, dead letters and `honnin migrate`.

A read that meets a row it cannot decode moves that row (and rows that only make sense with it)
into `quarantine` in a transaction of its own, logs it and goes on with the rest; reads of the
same key then fail with QuarantinedError until an operator releases or discards the entry.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiosqlite
import structlog

from adapters.store.codec import Sealer, stamp, unstamp
from adapters.store.documents import opened, raw_json, registration_from, registration_plain, rows_of
from adapters.store.sqlite_listing import LISTING_SET, listing_values
from orchestrator.errors import CorruptRowError, PermanentError, QuarantinedError, failure_reason
from orchestrator.ports import BusMessage, DeadLetter, MigrationBatch, QuarantineEntry
from orchestrator.versions import REGISTRATION_VERSION

log = structlog.get_logger("honnin.store")

Where = Mapping[str, tuple[str, Sequence[object]]]
"""table → (condition, parameters): the rows a quarantine moves together."""

_TABLES = frozenset(
    {"registrations", "history", "outbox", "feed", "webhook_deliveries", "webhook_endpoints", "dead_letters"}
)
_ENTRY = "id, kind, key, reason, raw, quarantined_at"
_LETTER = "id, queue, message_id, routing_key, headers, body, reason, attempts, first_seen_at, last_seen_at"


def dead_letter_aad(queue: str, message_id: str) -> str:
    return f"dead_letter:{queue}:{message_id}"


class SqliteOperations:
    """Mixed into SqliteStore: the same connection, lock and transactions."""

    if TYPE_CHECKING:
        _sealer: Sealer

        def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]: ...

    async def _quarantine(self, kind: str, key: str, where: Where, exc: CorruptRowError) -> QuarantinedError:
        """Move the rows aside with why; the error a read of them raises from now on."""
        reason = failure_reason(exc)
        moved: dict[str, list[dict[str, object]]] = {}
        async with self._transaction() as db:
            for table, (condition, params) in where.items():
                async with db.execute(f"SELECT * FROM {table} WHERE {condition}", params) as cursor:  # noqa: S608
                    names = [d[0] for d in cursor.description]
                    rows = [dict(zip(names, r, strict=True)) for r in await cursor.fetchall()]
                if rows:
                    await db.execute(f"DELETE FROM {table} WHERE {condition}", params)  # noqa: S608
                    moved[table] = rows
            if moved:  # another worker may have moved them first
                await db.execute(
                    "INSERT INTO quarantine (kind, key, reason, raw, quarantined_at) VALUES (?, ?, ?, ?, ?)",
                    (kind, key, reason, raw_json(moved), stamp(datetime.now(UTC))),
                )
        if moved:
            log.error("store.row_quarantined", kind=kind, key=key, reason=reason)
        return QuarantinedError(f"{kind} {key} is in the quarantine ({reason})")

    async def list_quarantine(
        self, kind: str | None = None, after: int = 0, limit: int = 100
    ) -> list[QuarantineEntry]:
        rows = await self._fetch(
            f"SELECT {_ENTRY} FROM quarantine WHERE id > ? AND (? IS NULL OR kind = ?)"  # noqa: S608
            " ORDER BY id LIMIT ?",
            (after, kind, kind, limit),
        )
        return [_entry(r) for r in rows]

    async def quarantined(self, entry_id: int) -> QuarantineEntry | None:
        rows = await self._fetch(f"SELECT {_ENTRY} FROM quarantine WHERE id = ?", (entry_id,))  # noqa: S608
        return _entry(rows[0]) if rows else None

    async def release_quarantined(self, entry_id: int) -> bool:
        async with self._transaction() as db:
            async with db.execute("SELECT raw FROM quarantine WHERE id = ?", (entry_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return False
            for table, rows in rows_of(row[0]).items():
                await _put_back(db, table, rows)
            await db.execute("DELETE FROM quarantine WHERE id = ?", (entry_id,))
        log.info("store.quarantine_released", entry=entry_id)
        return True

    async def discard_quarantined(self, entry_id: int) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM quarantine WHERE id = ?", (entry_id,))
        if cursor.rowcount:
            log.warning("store.quarantine_discarded", entry=entry_id)
        return bool(cursor.rowcount)

    async def quarantine_count(self, kind: str | None = None) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM quarantine WHERE ? IS NULL OR kind = ?", (kind, kind))
        return int(rows[0][0])

    async def add_dead_letter(self, letter: DeadLetter, at: datetime) -> None:
        m = letter.message
        first = stamp(letter.first_seen_at or at)
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO dead_letters (queue, message_id, routing_key, headers, body, reason, attempts,"
                " first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (queue, message_id) DO UPDATE SET routing_key = excluded.routing_key,"
                " headers = excluded.headers, body = excluded.body, reason = excluded.reason,"
                " attempts = excluded.attempts, last_seen_at = excluded.last_seen_at,"
                " first_seen_at = MIN(first_seen_at, excluded.first_seen_at)",
                (
                    letter.queue,
                    m.message_id,
                    m.routing_key,
                    json.dumps(m.headers, sort_keys=True),
                    self._sealer.seal(m.body, dead_letter_aad(letter.queue, m.message_id)),
                    letter.reason,
                    letter.attempts,
                    first,
                    stamp(at),
                ),
            )

    async def dead_letters(
        self, queue: str | None = None, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        rows = await self._fetch(
            f"SELECT {_LETTER} FROM dead_letters WHERE id > ? AND (? IS NULL OR queue = ?)"  # noqa: S608
            " ORDER BY id LIMIT ?",
            (after, queue, queue, limit),
        )
        return [letter for r in rows if (letter := await self._letter(r)) is not None]

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        rows = await self._fetch(f"SELECT {_LETTER} FROM dead_letters WHERE id = ?", (letter_id,))  # noqa: S608
        return await self._letter(rows[0]) if rows else None

    async def _letter(self, r: sqlite3.Row) -> DeadLetter | None:
        try:
            body = opened(self._sealer, r[5], dead_letter_aad(r[1], r[2]))
            headers = json.loads(r[4])
        except (CorruptRowError, ValueError) as exc:
            corrupt = exc if isinstance(exc, CorruptRowError) else CorruptRowError("headers are not JSON")
            await self._quarantine("dead_letter", str(r[0]), {"dead_letters": ("id = ?", (r[0],))}, corrupt)
            return None
        return DeadLetter(
            queue=r[1],
            message=BusMessage(r[3], body, r[2], headers),
            reason=r[6],
            attempts=r[7],
            id=r[0],
            first_seen_at=unstamp(r[8]),
            last_seen_at=unstamp(r[9]),
        )

    async def delete_dead_letter(self, letter_id: int) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))
        return bool(cursor.rowcount)

    async def dead_letter_count(self, queue: str | None = None) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) FROM dead_letters WHERE ? IS NULL OR queue = ?", (queue, queue)
        )
        return int(rows[0][0])

    async def migrate(self, after: str, limit: int, *, dry_run: bool) -> MigrationBatch:
        """Old rows (or rows without the listing columns), read through the upgrade steps and written
        back at the current version with their listing columns, under the same optimistic version, so
        a worker's commit in between wins and the row is skipped."""
        rows = await self._fetch(
            "SELECT id, version, data FROM registrations WHERE (schema_version < ? OR created_at IS NULL)"
            " AND id > ? ORDER BY id LIMIT ?",
            (REGISTRATION_VERSION, after, limit),
        )
        upgraded: list[tuple[object, ...]] = []
        quarantined = 0
        for rid, version, data in rows:
            try:
                registration = registration_from(opened(self._sealer, data, f"registration:{rid}"))
            except CorruptRowError as exc:
                quarantined += 1
                if not dry_run:
                    await self._quarantine("registration", rid, {"registrations": ("id = ?", (rid,))}, exc)
                continue
            blob = self._sealer.seal(registration_plain(registration), f"registration:{rid}")
            upgraded.append((blob, *listing_values(registration), rid, version))
        rewritten = len(upgraded)
        if upgraded and not dry_run:
            rewritten = 0
            async with self._transaction() as db:
                for sealed, *listing, rid, version in upgraded:
                    cursor = await db.execute(
                        f"UPDATE registrations SET data = ?, schema_version = ?, {LISTING_SET}"  # noqa: S608
                        " WHERE id = ? AND version = ? AND (schema_version < ? OR created_at IS NULL)",
                        (sealed, REGISTRATION_VERSION, *listing, rid, version, REGISTRATION_VERSION),
                    )
                    rewritten += cursor.rowcount
        last = rows[-1][0] if rows else after
        return MigrationBatch(len(rows), rewritten, len(upgraded) - rewritten, quarantined, last)


async def _put_back(db: aiosqlite.Connection, table: str, rows: list[dict[str, object]]) -> None:
    """Rows as they were, into the table they came from (a name checked against this store's own)."""
    if table not in _TABLES:
        raise PermanentError(f"the entry names a table this store does not have: {table[:40]}")
    async with db.execute(f"PRAGMA table_info({table})") as cursor:
        columns = {r[1] for r in await cursor.fetchall()}
    for row in rows:
        names = [name for name in row if name in columns]
        marks = ", ".join("?" for _ in names)
        try:
            await db.execute(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",  # noqa: S608 - checked names
                [row[name] for name in names],
            )
        except sqlite3.IntegrityError as exc:
            raise PermanentError(
                f"a {table} row with this key exists again: discard one of them", code="release_conflict"
            ) from exc


def _entry(r: sqlite3.Row) -> QuarantineEntry:
    return QuarantineEntry(id=r[0], kind=r[1], key=r[2], reason=r[3], raw=r[4], quarantined_at=unstamp(r[5]))
