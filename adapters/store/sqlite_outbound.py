"""The SQLite store's outbound half: the facility feed, webhook endpoints and their deliveries.

A commit's facility events become feed rows in the commit's own transaction, and delivery rows
when the facility has an endpoint then; `seq` (AUTOINCREMENT under `BEGIN IMMEDIATE`) follows the
commit order, so it is the feed's cursor. A delivery reads its body from its feed row (a test event,
which has none, carries its own).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import aiosqlite

from adapters.store.codec import Sealer, stamp, unstamp
from adapters.store.documents import envelope_checked, opened
from orchestrator.errors import CorruptRowError, PermanentError, QuarantinedError
from orchestrator.ports import (
    Commit,
    DeliveryAttempt,
    FacilityEvent,
    PendingDelivery,
    WebhookEndpoint,
)

OUTBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    facility_id TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    registration_id TEXT,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feed_facility ON feed (facility_id, seq);
CREATE INDEX IF NOT EXISTS feed_registration ON feed (registration_id);
CREATE INDEX IF NOT EXISTS feed_created ON feed (created_at);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    facility_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret BLOB NOT NULL,
    previous_secret BLOB,
    previous_until TEXT,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_status INTEGER,
    last_error TEXT,
    last_delivered_at TEXT
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    event_id TEXT PRIMARY KEY,
    facility_id TEXT NOT NULL,
    registration_id TEXT,
    event_type TEXT NOT NULL,
    body BLOB,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    scheduled_from TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    claimed_by TEXT,
    claimed_until TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_facility ON webhook_deliveries (facility_id, state, created_at);
CREATE INDEX IF NOT EXISTS deliveries_registration ON webhook_deliveries (registration_id);
"""

_ENDPOINT = (
    "facility_id, url, secret, previous_secret, previous_until, state, created_at, updated_at,"
    " last_attempt_at, last_status, last_error, last_delivered_at"
)
_DUE = """
WITH inflight AS (
    SELECT facility_id, COUNT(*) AS n FROM webhook_deliveries
    WHERE state = 'pending' AND claimed_until >= ? GROUP BY facility_id
), ranked AS (
    SELECT d.event_id, d.facility_id, d.next_attempt_at,
           ROW_NUMBER() OVER (PARTITION BY d.facility_id ORDER BY d.next_attempt_at, d.rowid) AS rank
    FROM webhook_deliveries AS d
    JOIN webhook_endpoints AS e ON e.facility_id = d.facility_id AND e.state = 'active'
    WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.claimed_until IS NULL OR d.claimed_until < ?)
)
SELECT r.event_id FROM ranked AS r LEFT JOIN inflight AS i ON i.facility_id = r.facility_id
WHERE r.rank <= ? - COALESCE(i.n, 0)
ORDER BY r.rank, r.next_attempt_at LIMIT ?
"""
"""Round-robin over endpoints (rank first), each below its in-flight bound across all workers."""


_DELIVERY = (
    "INSERT INTO webhook_deliveries (event_id, facility_id, registration_id, event_type, body,"
    " state, scheduled_from, next_attempt_at, created_at)"
    " SELECT ?, ?, ?, ?, ?, 'pending', ?, ?, ? FROM webhook_endpoints WHERE facility_id = ?"
)
"""A delivery for the event when its facility has an endpoint (nothing otherwise)."""


class SqliteOutbound:
    """Mixed into SqliteStore: the same connection, lock and transactions."""

    if TYPE_CHECKING:
        _sealer: Sealer

        def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]: ...

        async def _quarantine(
            self, kind: str, key: str, where: Mapping[str, tuple[str, Sequence[object]]], exc: CorruptRowError
        ) -> QuarantinedError: ...

    async def _quarantine_feed(self, event_id: str, exc: CorruptRowError) -> None:
        """A feed row that does not decode goes with its delivery (which would send that body)."""
        where = {
            "feed": ("event_id = ?", (event_id,)),
            "webhook_deliveries": ("event_id = ?", (event_id,)),
        }
        await self._quarantine("feed", event_id, where, exc)

    def _write_facility_events(self, db: sqlite3.Connection, commit: Commit) -> None:
        """Inside the commit (the writer's thread): a feed row per event, a delivery per event whose
        facility has an endpoint."""
        for e in commit.facility_events:
            try:
                db.execute(
                    "INSERT INTO feed (facility_id, event_id, event_type, registration_id, body, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        e.facility_id,
                        e.event_id,
                        e.event_type,
                        e.registration_id,
                        self._sealer.seal(e.body, f"feed:{e.event_id}"),
                        stamp(e.created_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:  # derived ids collided: a bug, never to be retried
                raise PermanentError("a feed event id exists already", code="feed_collision") from exc
            at = stamp(e.created_at)
            db.execute(
                _DELIVERY,
                (e.event_id, e.facility_id, e.registration_id, e.event_type, None, at, at, at, e.facility_id),
            )

    @staticmethod
    async def _insert_delivery(db: aiosqlite.Connection, e: FacilityEvent, body: bytes | None) -> bool:
        at = stamp(e.created_at)
        cursor = await db.execute(
            _DELIVERY,
            (e.event_id, e.facility_id, e.registration_id, e.event_type, body, at, at, at, e.facility_id),
        )
        return cursor.rowcount == 1

    async def _forget_registrations(self, db: aiosqlite.Connection, ids: list[tuple[str]]) -> None:
        await db.executemany("DELETE FROM feed WHERE registration_id = ?", ids)
        await db.executemany("DELETE FROM webhook_deliveries WHERE registration_id = ?", ids)

    async def feed(self, facility_id: str, after: int, limit: int) -> list[FacilityEvent]:
        rows = await self._fetch(
            "SELECT seq, event_id, event_type, registration_id, body, created_at FROM feed"
            " WHERE facility_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (facility_id, after, limit),
        )
        events = []
        for r in rows:
            try:
                body = envelope_checked(opened(self._sealer, r[4], f"feed:{r[1]}"), "a feed body")
            except CorruptRowError as exc:  # the facility reads on past it
                await self._quarantine_feed(r[1], exc)
                continue
            events.append(
                FacilityEvent(
                    facility_id=facility_id,
                    event_id=r[1],
                    event_type=r[2],
                    registration_id=r[3],
                    body=body,
                    created_at=unstamp(r[5]),
                    seq=r[0],
                )
            )
        return events

    async def purge_feed(self, before: datetime, limit: int) -> int:
        async with self._transaction() as db:
            async with db.execute(
                "SELECT event_id FROM feed WHERE created_at < ? ORDER BY created_at LIMIT ?",
                (stamp(before), limit),
            ) as cursor:
                ids = [(r[0],) for r in await cursor.fetchall()]
            await db.executemany("DELETE FROM webhook_deliveries WHERE event_id = ?", ids)
            await db.executemany("DELETE FROM feed WHERE event_id = ?", ids)
            await db.execute(
                "DELETE FROM webhook_deliveries WHERE body IS NOT NULL AND created_at < ?", (stamp(before),)
            )
        return len(ids)

    async def put_webhook(self, endpoint: WebhookEndpoint) -> None:
        f = endpoint.facility_id
        previous = endpoint.previous_secret
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO webhook_endpoints (facility_id, url, secret, previous_secret, previous_until,"
                " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (facility_id) DO UPDATE SET url = excluded.url, secret = excluded.secret,"
                " previous_secret = excluded.previous_secret, previous_until = excluded.previous_until,"
                " state = excluded.state, updated_at = excluded.updated_at",
                (
                    f,
                    endpoint.url,
                    self._sealer.seal(endpoint.secret.encode(), f"webhook:{f}"),
                    self._sealer.seal(previous.encode(), f"webhook-previous:{f}") if previous else None,
                    stamp(endpoint.previous_until) if endpoint.previous_until else None,
                    endpoint.state,
                    stamp(endpoint.created_at),
                    stamp(endpoint.updated_at),
                ),
            )

    async def webhook(self, facility_id: str) -> WebhookEndpoint | None:
        """The endpoint; one whose secret does not open is quarantined and, until released, absent
        (its deliveries wait; a new PUT makes a new one)."""
        rows = await self._fetch(
            f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE facility_id = ?",  # noqa: S608 - constant
            (facility_id,),
        )
        return await self._endpoint(rows[0]) if rows else None

    async def webhooks(self) -> list[WebhookEndpoint]:
        rows = await self._fetch(f"SELECT {_ENDPOINT} FROM webhook_endpoints ORDER BY facility_id")  # noqa: S608
        return [e for r in rows if (e := await self._endpoint(r)) is not None]

    async def _endpoint(self, r: sqlite3.Row) -> WebhookEndpoint | None:
        f = r[0]
        try:
            secret = opened(self._sealer, r[2], f"webhook:{f}").decode()
            previous = opened(self._sealer, r[3], f"webhook-previous:{f}").decode() if r[3] else None
        except (CorruptRowError, UnicodeDecodeError) as exc:
            corrupt = exc if isinstance(exc, CorruptRowError) else CorruptRowError("the secret is not text")
            await self._quarantine("webhook", f, {"webhook_endpoints": ("facility_id = ?", (f,))}, corrupt)
            return None
        return WebhookEndpoint(
            facility_id=f,
            url=r[1],
            secret=secret,
            previous_secret=previous,
            previous_until=unstamp(r[4]) if r[4] else None,
            state=r[5],
            created_at=unstamp(r[6]),
            updated_at=unstamp(r[7]),
            last_attempt_at=unstamp(r[8]) if r[8] else None,
            last_status=r[9],
            last_error=r[10],
            last_delivered_at=unstamp(r[11]) if r[11] else None,
        )

    async def delete_webhook(self, facility_id: str) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM webhook_endpoints WHERE facility_id = ?", (facility_id,))
            await db.execute("DELETE FROM webhook_deliveries WHERE facility_id = ?", (facility_id,))
        return cursor.rowcount == 1

    async def add_delivery(self, event: FacilityEvent) -> bool:
        body = self._sealer.seal(event.body, f"delivery:{event.event_id}")
        async with self._transaction() as db:
            return await self._insert_delivery(db, event, body)

    async def claim_deliveries(
        self, worker: str, now: datetime, lease_seconds: float, limit: int, per_endpoint: int
    ) -> list[PendingDelivery]:
        at, until = stamp(now), stamp(now + timedelta(seconds=lease_seconds))
        due = await self._fetch(
            "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? LIMIT 1", (at,)
        )
        if not due:  # most wake-ups: a read, not a write transaction
            return []
        async with self._transaction() as db:
            async with db.execute(_DUE, (at, at, at, per_endpoint, limit)) as cursor:
                ids = [(r[0],) for r in await cursor.fetchall()]
            await db.executemany(
                "UPDATE webhook_deliveries SET claimed_by = ?, claimed_until = ? WHERE event_id = ?",
                [(worker, until, i) for (i,) in ids],
            )
            rows = []
            for (event_id,) in ids:
                async with db.execute(
                    "SELECT d.event_id, d.facility_id, d.event_type, d.body, f.body, d.attempts,"
                    " d.scheduled_from FROM webhook_deliveries AS d"
                    " LEFT JOIN feed AS f ON f.event_id = d.event_id WHERE d.event_id = ?",
                    (event_id,),
                ) as cursor:
                    rows += list(await cursor.fetchall())
        return await self._pending(rows)

    async def _pending(self, rows: list[sqlite3.Row]) -> list[PendingDelivery]:
        endpoints = {f: await self.webhook(f) for f in {r[1] for r in rows}}
        claimed = []
        for r in rows:
            body = await self._delivery_body(r[0], r[3], r[4])
            endpoint = endpoints[r[1]]
            if endpoint is not None and body is not None:  # deleted since the claim: nothing to send to
                claimed.append(
                    PendingDelivery(
                        event_id=r[0],
                        facility_id=r[1],
                        event_type=r[2],
                        body=body,
                        attempts=r[5],
                        scheduled_from=unstamp(r[6]),
                        endpoint=endpoint,
                    )
                )
        return claimed

    async def _delivery_body(self, event_id: str, own: bytes | None, fed: bytes | None) -> bytes | None:
        """A test event carries its body; any other reads its feed row's (None: purged meanwhile)."""
        try:
            if own is not None:
                return envelope_checked(opened(self._sealer, own, f"delivery:{event_id}"), "a delivery body")
            if fed is None:
                return None
            return envelope_checked(opened(self._sealer, fed, f"feed:{event_id}"), "a feed body")
        except CorruptRowError as exc:
            if own is not None:
                where = {"webhook_deliveries": ("event_id = ?", (event_id,))}
                await self._quarantine("delivery", event_id, where, exc)
            else:
                await self._quarantine_feed(event_id, exc)
            return None

    async def record_attempt(self, worker: str, attempt: DeliveryAttempt) -> None:
        at = stamp(attempt.at)
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?,"
                " last_status = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL"
                " WHERE event_id = ? AND claimed_by = ?",
                (
                    attempt.state,
                    stamp(attempt.next_attempt_at or attempt.at),
                    attempt.status,
                    attempt.error,
                    attempt.event_id,
                    worker,
                ),
            )
            if cursor.rowcount != 1:  # the lease ran out and another worker took it: its word counts
                return
            await db.execute(
                "UPDATE webhook_endpoints SET last_attempt_at = ?, last_status = ?, last_error = ?,"
                " last_delivered_at = CASE WHEN ? THEN ? ELSE last_delivered_at END,"
                " state = CASE WHEN ? IS NOT NULL AND state = 'active' THEN ? ELSE state END"
                " WHERE facility_id = (SELECT facility_id FROM webhook_deliveries WHERE event_id = ?)",
                (
                    at,
                    attempt.status,
                    attempt.error,
                    attempt.state == "delivered",
                    at,
                    attempt.endpoint_state,
                    attempt.endpoint_state,
                    attempt.event_id,
                ),
            )

    async def replay_deliveries(self, facility_id: str, since: datetime | None, now: datetime) -> int:
        at = stamp(now)
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, scheduled_from = ?,"
                " next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL"
                " WHERE facility_id = ? AND state != 'delivered' AND created_at >= ?",
                (at, at, facility_id, stamp(since) if since else ""),
            )
            await db.execute(
                "UPDATE webhook_endpoints SET state = 'active', updated_at = ? WHERE facility_id = ?",
                (at, facility_id),
            )
        return int(cursor.rowcount)

    async def delivery_backlog(self, facility_id: str | None = None) -> int:
        if facility_id is None:
            rows = await self._fetch("SELECT COUNT(*) FROM webhook_deliveries WHERE state != 'delivered'")
        else:
            rows = await self._fetch(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE state != 'delivered' AND facility_id = ?",
                (facility_id,),
            )
        return int(rows[0][0])
