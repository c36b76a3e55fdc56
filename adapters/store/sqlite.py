"""The embedded store: one SQLite file in WAL mode; each commit, outbox included, in one transaction.

Commits are durable by default (`synchronous=FULL`: a commit acknowledged is on disk even after a
power loss, before the relay hands its events to the broker); `NORMAL` may lose the last commits
on power loss (never on a process crash) and is faster. Rows that do not decode go to the
quarantine (sqlite_operations) instead of failing the read that meets them again and again.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import aiosqlite

from adapters.store.codec import Sealer, stamp, unstamp
from adapters.store.documents import (
    DecodedRegistrations,
    envelope_checked,
    opened,
    registration_from,
    registration_plain,
)
from adapters.store.sqlite_insights import SqliteInsights
from adapters.store.sqlite_listing import LISTING_NAMES, LISTING_SET, SqliteListing, listing_values
from adapters.store.sqlite_operations import SqliteOperations
from adapters.store.sqlite_outbound import SqliteOutbound
from adapters.store.sqlite_schema import prepare
from adapters.store.sqlite_writer import GroupWriter, Readers, busy
from orchestrator.errors import (
    ConfigurationError,
    CorruptRowError,
    DuplicateEventError,
    PermanentError,
    QuarantinedError,
    StoreUnavailableError,
    VersionConflictError,
    exception_kind,
)
from orchestrator.model import State
from orchestrator.ports import Commit, Committed, HistoryEntry, OutboxLease, OutboxMessage, StoredRegistration
from orchestrator.tasks import close_all
from orchestrator.versions import REGISTRATION_VERSION

Synchronous = Literal["FULL", "NORMAL"]
READERS = 2
"""Reader connections beside the writer: each has a thread, so reads overlap the writer's fsync."""
_REGISTRATION_ROWS = (
    "SELECT version, data, 0 FROM registrations WHERE id = ?"
    " UNION ALL SELECT 0, NULL, 1 FROM quarantine WHERE kind = 'registration' AND key = ?"
)
"""A registration's row (kind 0) and its quarantine entry (kind 1), whichever exist."""
_LOAD = _REGISTRATION_ROWS + " ORDER BY 3 LIMIT 1"
"""The registration's row, else its quarantine entry."""
_LOAD_FOR_EVENT = (
    _REGISTRATION_ROWS  # noqa: S608 - constants only: the values are parameters
    + " UNION ALL SELECT 0, NULL, 2 FROM processed_events WHERE event_id = ? ORDER BY 3 DESC"
)
"""Those rows and whether the event was processed (kind 2): that first, the row last."""
_PROCESSED = 2


def _ahead(
    db: sqlite3.Connection, messages: Sequence[OutboxMessage], lease: OutboxLease, now: datetime
) -> tuple[str, ...] | None:
    """The messages of these messages' registrations still unsent, oldest first, when each is
    leased to the lease's worker and its lease runs (these may follow them on that worker's direct
    path); None when one is free, held back after a refusal, or another worker's."""
    ahead: list[str] = []
    running = stamp(now)  # a lease that ends before this has run out
    for registration_id in dict.fromkeys(m.registration_id for m in messages):
        for message_id, claimed_by, until in db.execute(
            "SELECT message_id, claimed_by, claimed_until FROM outbox"
            " WHERE registration_id = ? AND sent_at IS NULL ORDER BY seq",
            (registration_id,),
        ):
            if claimed_by != lease.worker or until is None or until < running:
                return None
            ahead.append(message_id)
    return tuple(ahead)


def _inline_reader(path: Path) -> sqlite3.Connection | None:
    """The connection `Readers.point` uses on the loop's thread: never waits, never writes."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
        db.execute("PRAGMA query_only = 1")
    except sqlite3.Error:
        return None  # the reader threads serve every read
    return db


async def _prepare(db: aiosqlite.Connection, sealer: Sealer, wait: float) -> None:
    """WAL and the schema, tried again for `wait` seconds while another worker starting on the same
    file holds its lock: SQLite answers some of these steps with SQLITE_BUSY at once, without its
    busy handler (turning a new file to WAL needs the exclusive lock; a statement whose snapshot
    another process's commit made stale), and that worker then failed to start. `prepare` is one
    transaction and rolls back, so trying it again is safe. Each try's own busy handler gets only
    the time left, so the whole wait stays within `wait`; the pause between tries grows from 1 ms
    to 50 ms (the other worker's preparation takes tens of milliseconds)."""
    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        left_ms = max(1, int((deadline - time.monotonic()) * 1000))
        await db.execute(f"PRAGMA busy_timeout = {left_ms}")
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await prepare(db, sealer)
            return
        except sqlite3.OperationalError as exc:
            if not busy(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.05)


class SqliteStore(SqliteOutbound, SqliteOperations, SqliteListing, SqliteInsights):
    """Safe for several processes on one file: writes take the lock up front (BEGIN IMMEDIATE)."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        sealer: Sealer,
        readers: Sequence[aiosqlite.Connection],
        inline: sqlite3.Connection | None = None,
        *,
        lock_wait: float = 10.0,
    ) -> None:
        self._writer = GroupWriter(db, lock_wait=lock_wait)  # every write, batched into group commits
        self._readers = Readers(readers, inline)  # every read outside a write, with no lock of ours
        self._sealer = sealer
        self._decoded = DecodedRegistrations()  # what this process sealed or opened lately

    @classmethod
    async def open(
        cls,
        path: Path,
        sealer: Sealer,
        *,
        busy_timeout_ms: int = 10_000,
        synchronous: Synchronous = "FULL",
        readers: int = READERS,
    ) -> SqliteStore:
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigurationError("synchronous is FULL or NORMAL")
        opened_: list[aiosqlite.Connection] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(1 + readers):
                db = await aiosqlite.connect(path, isolation_level=None)
                opened_.append(db)
                await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                await db.execute(f"PRAGMA synchronous = {synchronous}")
                if len(opened_) == 1:
                    await _prepare(db, sealer, busy_timeout_ms / 1000)
                    await db.execute("PRAGMA busy_timeout = 0")  # the writer waits its own way
                    # Each job's savepoint keeps the pages it changes; past 64 KiB SQLite spilled
                    # them to a temporary file created and unlinked in /var/tmp for every such
                    # transaction (thousands of writes a second under load). In memory they cost
                    # no system call and cannot fail on a full or read-only temporary directory.
                    await db.execute("PRAGMA temp_store = MEMORY")
        except BaseException as exc:
            for db in opened_:
                await _close_after_failure(db)  # its thread would keep the process alive
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise StoreUnavailableError(
                    f"cannot open the SQLite store at {path}: {exception_kind(exc)}"
                ) from exc
            raise
        return cls(opened_[0], sealer, opened_[1:], _inline_reader(path), lock_wait=busy_timeout_ms / 1000)

    @property
    def _db(self) -> aiosqlite.Connection:
        """The writer connection (tests close it to play a lost database)."""
        return self._writer.db

    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, shared with the other writes queued in this process (group
        commit); on any exit by exception, cancellation included, this body's writes are undone."""
        return self._writer.transaction()

    async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        return await self._readers.fetch(sql, params)

    async def _point(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """A read of one row by its key: on the loop's thread unless it would wait (`Readers.point`)."""
        return await self._readers.point(sql, params)

    async def load(self, registration_id: str) -> StoredRegistration | None:
        rows = await self._point(_LOAD, (registration_id, registration_id))
        return await self._loaded(registration_id, rows)

    async def load_for_event(self, registration_id: str, event_id: str) -> StoredRegistration | None:
        rows = await self._point(_LOAD_FOR_EVENT, (registration_id, registration_id, event_id))
        if rows and rows[0][2] == _PROCESSED:
            raise DuplicateEventError(f"event {event_id} was processed already")
        return await self._loaded(registration_id, rows[-1:])

    async def _loaded(self, registration_id: str, rows: list[sqlite3.Row]) -> StoredRegistration | None:
        """The registration from `_LOAD`'s row: the document, or QuarantinedError."""
        if not rows:
            return None
        version, data, quarantined = rows[0]
        if quarantined:
            raise QuarantinedError(f"registration {registration_id} is in the quarantine")
        registration = self._decoded.get(registration_id, data) if data is not None else None
        if registration is None:
            try:
                plain = opened(self._sealer, data, f"registration:{registration_id}")
                registration = registration_from(plain)
            except CorruptRowError as exc:
                where = {"registrations": ("id = ?", (registration_id,))}
                raise await self._quarantine("registration", registration_id, where, exc) from exc
            self._decoded.put(registration_id, data, registration)
        return StoredRegistration(registration, version)

    async def is_processed(self, event_id: str) -> bool:
        rows = await self._point("SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,))
        return bool(rows)

    async def commit(self, commit: Commit) -> Committed:
        return await self._writer.run(functools.partial(self._commit_in, commit=commit))

    def _commit_in(self, db: sqlite3.Connection, commit: Commit) -> Committed:
        """The whole commit on the writer's thread: one hand-off instead of one per statement."""
        try:
            db.execute(
                "INSERT INTO processed_events (event_id, registration_id, processed_at) VALUES (?, ?, ?)",
                (commit.event_id, commit.registration_id, stamp(commit.history.recorded_at)),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateEventError(f"event {commit.event_id} was processed already") from exc
        version = self._write_registration(db, commit)
        ahead = self._append(db, commit)
        self._write_facility_events(db, commit)
        return Committed(version, leased=ahead is not None, behind=ahead or ())

    def _write_registration(self, db: sqlite3.Connection, commit: Commit) -> int:
        expected = commit.expected_version
        reg = commit.registration
        if reg is None:
            row = db.execute(
                "SELECT version FROM registrations WHERE id = ?", (commit.registration_id,)
            ).fetchone()
            if (row[0] if row else 0) != expected:
                raise VersionConflictError(f"registration {commit.registration_id} moved on")
            return expected
        deadline = reg.next_deadline()
        columns = (
            reg.state.value,
            stamp(deadline) if deadline else None,
            stamp(reg.updated_at),
            stamp(reg.ended_at) if reg.ended_at else None,
            sealed := self._sealer.seal(registration_plain(reg), f"registration:{reg.id}"),
            REGISTRATION_VERSION,
            *listing_values(reg),
        )
        self._decoded.put(reg.id, sealed, reg)  # a rollback leaves bytes no row holds: harmless
        if expected == 0:
            try:
                db.execute(
                    "INSERT INTO registrations (id, version, state, next_deadline_at, updated_at,"  # noqa: S608
                    f" ended_at, data, schema_version, {LISTING_NAMES})"
                    f" VALUES (?, 1, ?, ?, ?, ?, ?, ?, {', '.join('?' * (len(columns) - 6))})",
                    (reg.id, *columns),
                )
            except sqlite3.IntegrityError as exc:
                raise VersionConflictError(f"registration {reg.id} exists already") from exc
            return 1
        cursor = db.execute(
            "UPDATE registrations SET version = version + 1, state = ?, next_deadline_at = ?,"  # noqa: S608
            f" updated_at = ?, ended_at = ?, data = ?, schema_version = ?, {LISTING_SET}"
            " WHERE id = ? AND version = ?",
            (*columns, reg.id, expected),
        )
        if cursor.rowcount != 1:
            raise VersionConflictError(f"registration {reg.id} is not at version {expected}")
        return expected + 1

    def _append(self, db: sqlite3.Connection, commit: Commit) -> tuple[str, ...] | None:
        """The history entry and the outbox rows; when the rows took the commit's lease, the
        registration's messages unsent ahead of them (`Committed.behind`), else None."""
        h = commit.history
        db.execute(
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
        ahead = None
        if commit.lease is not None and commit.outbox:
            ahead = _ahead(db, commit.outbox, commit.lease, commit.history.recorded_at)
        lease = commit.lease if ahead is not None else None
        try:
            db.executemany(
                "INSERT INTO outbox (message_id, routing_key, registration_id, body, created_at,"
                " claimed_by, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m.message_id,
                        m.routing_key,
                        m.registration_id,
                        self._sealer.seal(m.body, f"outbox:{m.message_id}"),
                        stamp(m.created_at),
                        lease.worker if lease else None,
                        stamp(lease.until) if lease else None,
                    )
                    for m in commit.outbox
                ],
            )
        except sqlite3.IntegrityError as exc:  # derived ids collided: a bug, never to be retried
            raise PermanentError("an outbox message id exists already", code="outbox_collision") from exc
        return ahead

    async def history(self, registration_id: str) -> list[HistoryEntry]:
        rows = await self._fetch(
            "SELECT registration_id, event_id, event_type, source, occurred_at, recorded_at, outcome,"
            " from_state, to_state, code, message, event, seq FROM history WHERE registration_id = ?"
            " ORDER BY seq",
            (registration_id,),
        )
        entries = []
        for r in rows:
            try:
                event = envelope_checked(opened(self._sealer, r[11], f"history:{r[1]}"), "a history event")
            except CorruptRowError as exc:  # the rest of the history is still worth reading
                await self._quarantine("history", r[1], {"history": ("seq = ?", (r[12],))}, exc)
                continue
            entries.append(
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
                    event=event,
                )
            )
        return entries

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

        def claim(db: sqlite3.Connection) -> list[sqlite3.Row]:
            rows = db.execute(
                "SELECT seq, message_id, routing_key, registration_id, body, created_at FROM outbox"
                " WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)"
                " AND NOT EXISTS (SELECT 1 FROM outbox AS held WHERE held.registration_id ="
                " outbox.registration_id AND held.sent_at IS NULL AND held.claimed_by != ?"
                " AND held.claimed_until >= ? AND held.seq < outbox.seq)"
                " ORDER BY seq LIMIT ?",
                (stamp(now), worker, worker, stamp(now), limit),
            ).fetchall()
            db.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq = ?",
                [(worker, until, r[0]) for r in rows],
            )
            return rows

        rows = await self._writer.run(claim)
        claimed = []
        for r in rows:
            try:
                body = envelope_checked(opened(self._sealer, r[4], f"outbox:{r[1]}"), "an outbox body")
            except CorruptRowError as exc:  # the rest goes on; this one waits for an operator
                await self._quarantine("outbox", r[1], {"outbox": ("seq = ?", (r[0],))}, exc)
                continue
            claimed.append(
                OutboxMessage(
                    message_id=r[1],
                    routing_key=r[2],
                    registration_id=r[3],
                    body=body,
                    created_at=unstamp(r[5]),
                    seq=r[0],
                )
            )
        return claimed

    async def mark_sent(self, message_ids: Sequence[str], now: datetime) -> None:
        rows = [(stamp(now), m) for m in message_ids]
        await self._writer.run(
            lambda db: db.executemany(
                "UPDATE outbox SET sent_at = ?, claimed_by = NULL, claimed_until = NULL WHERE message_id = ?",
                rows,
            )
        )

    async def release_outbox(self, worker: str) -> int:
        return await self._writer.run(
            lambda db: (
                db.execute(
                    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE claimed_by = ? AND sent_at IS NULL",
                    (worker,),
                ).rowcount
            )
        )

    async def defer_outbox(self, message_ids: Sequence[str], until: datetime) -> None:
        rows = [(stamp(until), m) for m in message_ids]
        await self._writer.run(
            lambda db: db.executemany(
                "UPDATE outbox SET claimed_by = '', claimed_until = ?"
                " WHERE message_id = ? AND sent_at IS NULL",
                rows,
            )
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
        """The writer's queue drained, then every connection closed, even when a step before
        failed or was cancelled: an open aiosqlite connection's thread keeps the process alive."""
        await close_all(self._writer.close, self._readers.close, self._writer.db.close)


async def _close_after_failure(db: aiosqlite.Connection) -> None:
    """Close a connection whose opening failed, even when that failure was a cancellation."""
    closing = asyncio.ensure_future(db.close())
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await closing
        raise
    except sqlite3.Error:
        pass
