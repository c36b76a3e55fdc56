"""The embedded store: one SQLite file in WAL mode; one transaction per commit, outbox included."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite

from adapters.store.codec import Sealer, stamp, unstamp
from adapters.store.sqlite_outbound import OUTBOUND_SCHEMA, SqliteOutbound
from orchestrator.errors import (
    DuplicateEventError,
    PermanentError,
    StoreUnavailableError,
    VersionConflictError,
    exception_kind,
)
from orchestrator.model import Registration, State
from orchestrator.ports import Commit, HistoryEntry, OutboxMessage, StoredRegistration

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_deadline_at TEXT,
    updated_at TEXT NOT NULL,
    ended_at TEXT,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS registrations_due ON registrations (next_deadline_at)
    WHERE next_deadline_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS registrations_ended ON registrations (ended_at)
    WHERE ended_at IS NOT NULL AND state != 'activated';
CREATE TABLE IF NOT EXISTS processed_events (
    event_id TEXT PRIMARY KEY,
    registration_id TEXT NOT NULL,
    processed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    registration_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    code TEXT,
    message TEXT,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS history_registration ON history (registration_id, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    registration_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    claimed_by TEXT,
    claimed_until TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_unsent_registration ON outbox (registration_id, seq) WHERE sent_at IS NULL;
"""
"""A message held back after a refused publish has claimed_by '': nobody's until claimed_until, and
no later message of its registration is claimed before it."""


class SqliteStore(SqliteOutbound):
    """Safe for several processes on one file: writes take the lock up front (BEGIN IMMEDIATE)."""

    def __init__(self, db: aiosqlite.Connection, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer
        self._lock = asyncio.Lock()  # one connection, one transaction at a time

    @classmethod
    async def open(cls, path: Path, sealer: Sealer, *, busy_timeout_ms: int = 10_000) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(
                f"cannot open the SQLite store at {path}: {exception_kind(exc)}"
            ) from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.executescript(_SCHEMA + OUTBOUND_SCHEMA)
        except sqlite3.Error as exc:
            await db.close()  # its thread would keep the process alive
            raise StoreUnavailableError(
                f"cannot open the SQLite store at {path}: {exception_kind(exc)}"
            ) from exc
        return cls(db, sealer)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT; on any exit by exception, cancellation included, ROLLBACK.

        The connection's thread runs statements in order, so a ROLLBACK queued after a
        cancelled BEGIN still ends that BEGIN's transaction.
        """
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await self._db.execute("ROLLBACK")  # "no transaction is active" is fine
                if isinstance(exc, sqlite3.OperationalError):  # locked, busy, I/O: may pass
                    raise StoreUnavailableError(f"the SQLite store failed: {exception_kind(exc)}") from exc
                raise

    async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            try:
                async with self._db.execute(sql, params) as cursor:
                    return list(await cursor.fetchall())
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"the SQLite store failed: {exception_kind(exc)}") from exc

    async def load(self, registration_id: str) -> StoredRegistration | None:
        rows = await self._fetch("SELECT version, data FROM registrations WHERE id = ?", (registration_id,))
        if not rows:
            return None
        version, data = rows[0]
        plain = self._sealer.open(data, f"registration:{registration_id}")
        return StoredRegistration(Registration.model_validate_json(plain), version)

    async def is_processed(self, event_id: str) -> bool:
        rows = await self._fetch("SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,))
        return bool(rows)

    async def commit(self, commit: Commit) -> int:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO processed_events (event_id, registration_id, processed_at) VALUES (?, ?, ?)",
                    (commit.event_id, commit.registration_id, stamp(commit.history.recorded_at)),
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateEventError(f"event {commit.event_id} was processed already") from exc
            version = await self._write_registration(db, commit)
            await self._append(db, commit)
            await self._write_facility_events(db, commit)
        return version

    async def _write_registration(self, db: aiosqlite.Connection, commit: Commit) -> int:
        expected = commit.expected_version
        reg = commit.registration
        if reg is None:
            async with db.execute(
                "SELECT version FROM registrations WHERE id = ?", (commit.registration_id,)
            ) as cur:
                row = await cur.fetchone()
            if (row[0] if row else 0) != expected:
                raise VersionConflictError(f"registration {commit.registration_id} moved on")
            return expected
        deadline = reg.next_deadline()
        columns = (
            reg.state.value,
            stamp(deadline) if deadline else None,
            stamp(reg.updated_at),
            stamp(reg.ended_at) if reg.ended_at else None,
            self._sealer.seal(reg.model_dump_json().encode(), f"registration:{reg.id}"),
        )
        if expected == 0:
            try:
                await db.execute(
                    "INSERT INTO registrations"
                    " (id, version, state, next_deadline_at, updated_at, ended_at, data)"
                    " VALUES (?, 1, ?, ?, ?, ?, ?)",
                    (reg.id, *columns),
                )
            except sqlite3.IntegrityError as exc:
                raise VersionConflictError(f"registration {reg.id} exists already") from exc
            return 1
        cursor = await db.execute(
            "UPDATE registrations SET version = version + 1, state = ?, next_deadline_at = ?,"
            " updated_at = ?, ended_at = ?, data = ? WHERE id = ? AND version = ?",
            (*columns, reg.id, expected),
        )
        if cursor.rowcount != 1:
            raise VersionConflictError(f"registration {reg.id} is not at version {expected}")
        return expected + 1

    async def _append(self, db: aiosqlite.Connection, commit: Commit) -> None:
        h = commit.history
        await db.execute(
            "INSERT INTO history (registration_id, event_id, event_type, source, occurred_at, recorded_at,"
            " outcome, from_state, to_state, code, message, event)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                h.registration_id,
                h.event_id,
                h.event_type,
                h.source,
                stamp(h.occurred_at),
                stamp(h.recorded_at),
                h.outcome,
                h.from_state,
                h.to_state,
                h.code,
                h.message,
                self._sealer.seal(h.event, f"history:{h.event_id}"),
            ),
        )
        try:
            await db.executemany(
                "INSERT INTO outbox (message_id, routing_key, registration_id, body, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        m.message_id,
                        m.routing_key,
                        m.registration_id,
                        self._sealer.seal(m.body, f"outbox:{m.message_id}"),
                        stamp(m.created_at),
                    )
                    for m in commit.outbox
                ],
            )
        except sqlite3.IntegrityError as exc:  # derived ids collided: a bug, never to be retried
            raise PermanentError("an outbox message id exists already", code="outbox_collision") from exc

    async def history(self, registration_id: str) -> list[HistoryEntry]:
        rows = await self._fetch(
            "SELECT registration_id, event_id, event_type, source, occurred_at, recorded_at, outcome,"
            " from_state, to_state, code, message, event FROM history WHERE registration_id = ? ORDER BY seq",
            (registration_id,),
        )
        return [
            HistoryEntry(
                registration_id=r[0],
                event_id=r[1],
                event_type=r[2],
                source=r[3],
                occurred_at=unstamp(r[4]),
                recorded_at=unstamp(r[5]),
                outcome=r[6],
                from_state=r[7],
                to_state=r[8],
                code=r[9],
                message=r[10],
                event=self._sealer.open(r[11], f"history:{r[1]}"),
            )
            for r in rows
        ]

    async def due(self, now: datetime, limit: int) -> list[str]:
        rows = await self._fetch(
            "SELECT id FROM registrations WHERE next_deadline_at IS NOT NULL AND next_deadline_at <= ?"
            " ORDER BY next_deadline_at LIMIT ?",
            (stamp(now), limit),
        )
        return [r[0] for r in rows]

    async def claim_outbox(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> list[OutboxMessage]:
        until = stamp(now + timedelta(seconds=lease_seconds))
        async with self._transaction() as db:
            async with db.execute(
                "SELECT seq, message_id, routing_key, registration_id, body, created_at FROM outbox"
                " WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)"
                " AND NOT EXISTS (SELECT 1 FROM outbox AS held WHERE held.registration_id ="
                " outbox.registration_id AND held.sent_at IS NULL AND held.claimed_by = ''"
                " AND held.claimed_until >= ? AND held.seq < outbox.seq)"
                " ORDER BY seq LIMIT ?",
                (stamp(now), worker, stamp(now), limit),
            ) as cursor:
                rows = list(await cursor.fetchall())
            await db.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq = ?",
                [(worker, until, r[0]) for r in rows],
            )
        return [
            OutboxMessage(
                message_id=r[1],
                routing_key=r[2],
                registration_id=r[3],
                body=self._sealer.open(r[4], f"outbox:{r[1]}"),
                created_at=unstamp(r[5]),
                seq=r[0],
            )
            for r in rows
        ]

    async def mark_sent(self, message_ids: Sequence[str], now: datetime) -> None:
        async with self._transaction() as db:
            await db.executemany(
                "UPDATE outbox SET sent_at = ?, claimed_by = NULL, claimed_until = NULL WHERE message_id = ?",
                [(stamp(now), m) for m in message_ids],
            )

    async def defer_outbox(self, message_ids: Sequence[str], until: datetime) -> None:
        async with self._transaction() as db:
            await db.executemany(
                "UPDATE outbox SET claimed_by = '', claimed_until = ?"
                " WHERE message_id = ? AND sent_at IS NULL",
                [(stamp(until), m) for m in message_ids],
            )

    async def purge_ended(self, before: datetime, limit: int) -> int:
        """Ended without activation: the registration, its history, its sent outbox rows, its feed
        events and deliveries go; processed event ids stay (they hold no personal fact and keep
        deduplication honest)."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT id FROM registrations WHERE ended_at IS NOT NULL AND ended_at < ? AND state != ?"
                " LIMIT ?",
                (stamp(before), State.ACTIVATED.value, limit),
            ) as cursor:
                ids = [(r[0],) for r in await cursor.fetchall()]
            await db.executemany("DELETE FROM history WHERE registration_id = ?", ids)
            await db.executemany("DELETE FROM outbox WHERE registration_id = ? AND sent_at IS NOT NULL", ids)
            await self._forget_registrations(db, ids)
            await db.executemany("DELETE FROM registrations WHERE id = ?", ids)
        return len(ids)

    async def in_state(self, state: str, limit: int) -> list[str]:
        rows = await self._fetch(
            "SELECT id FROM registrations WHERE state = ? ORDER BY updated_at LIMIT ?", (state, limit)
        )
        return [r[0] for r in rows]

    async def outbox_backlog(self) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
        return int(rows[0][0])

    async def close(self) -> None:
        await self._db.close()
