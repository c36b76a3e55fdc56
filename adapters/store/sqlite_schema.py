"""The SQLite store's tables, the columns later versions added, and the data key's check.

`prepare` runs at every open: tables and indexes are created if missing, columns added since a
file was made are added (inside BEGIN IMMEDIATE, so two workers opening an old file at once add
each once), and the data key is checked against the file before anything is read with it.
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from adapters.store.codec import Sealer
from adapters.store.sqlite_insights import INSIGHTS_SCHEMA
from adapters.store.sqlite_listing import AUDIT_SCHEMA, LISTING_COLUMNS, LISTING_INDEXES
from adapters.store.sqlite_outbound import OUTBOUND_SCHEMA
from orchestrator.errors import ConfigurationError

CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_deadline_at TEXT,
    updated_at TEXT NOT NULL,
    ended_at TEXT,
    data BLOB NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1
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
no later message of its registration is claimed before it. `schema_version` is the registration
document's (orchestrator.versions); a file made before versions has 1 in every row."""

OPERATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_key ON quarantine (kind, key);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    UNIQUE (queue, message_id)
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""
"""The quarantine keeps rows that did not decode (`raw`: the rows as they were, by table, sealed
blobs still sealed); dead letters are the embedded bus's (bodies sealed); `meta` the key check."""

ADDED_COLUMNS = {
    ("registrations", "schema_version"): "INTEGER NOT NULL DEFAULT 1",
    **{("registrations", name): declaration for name, declaration in LISTING_COLUMNS.items()},
}
"""Columns a file made by an earlier version lacks: (table, column) → its declaration. The listing
columns (sqlite_listing) are NULL in rows written before them until `honnin migrate` fills them."""

_KEY_CHECK = "key_check"
_KEY_CHECK_AAD = "meta:key_check"
_SAMPLE = 8


async def prepare(db: aiosqlite.Connection, sealer: Sealer) -> None:
    """Tables, added columns, the key check and the indexes in one write transaction, its lock taken
    up front: workers starting together on one file wait for each other (the busy timeout).
    Run as separate statements, a `CREATE … IF NOT EXISTS` reads the schema, then writes; when
    another process committed in between, SQLite fails it at once with SQLITE_BUSY instead of
    waiting, and the second worker did not start."""
    tables = CORE_SCHEMA + OUTBOUND_SCHEMA + OPERATIONS_SCHEMA + AUDIT_SCHEMA + INSIGHTS_SCHEMA
    try:
        # executescript commits a pending transaction first (Python 3.11): BEGIN goes in the script
        await db.executescript("BEGIN IMMEDIATE;\n" + tables)
        await _add_columns(db)
        await _check_key(db, sealer)
        for statement in filter(None, (s.strip() for s in LISTING_INDEXES.split(";"))):
            await db.execute(statement)
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise


async def _add_columns(db: aiosqlite.Connection) -> None:
    for (table, column), declaration in ADDED_COLUMNS.items():
        async with db.execute(f"PRAGMA table_info({table})") as cursor:
            present = {row[1] for row in await cursor.fetchall()}
        if column not in present:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


async def _check_key(db: aiosqlite.Connection, sealer: Sealer) -> None:
    """A wrong data key would make every row look tampered and send the whole store to quarantine:
    the key must open the file's check blob (or, in a file made before it had one, one of its
    latest registrations) or the store does not open."""
    async with db.execute("SELECT value FROM meta WHERE key = ?", (_KEY_CHECK,)) as cursor:
        row = await cursor.fetchone()
    if row is not None:
        if not _opens(sealer, row[0], _KEY_CHECK_AAD):
            raise ConfigurationError(_WRONG_KEY)
        return
    async with db.execute(
        "SELECT id, data FROM registrations ORDER BY updated_at DESC LIMIT ?", (_SAMPLE,)
    ) as cursor:
        sample = list(await cursor.fetchall())
    if sample and not any(_opens(sealer, data, f"registration:{rid}") for rid, data in sample):
        raise ConfigurationError(_WRONG_KEY)
    await db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        (_KEY_CHECK, sealer.seal(b"honnin", _KEY_CHECK_AAD)),
    )


_WRONG_KEY = (
    "the data key does not open this store: HONNIN_DATA_KEY (or data.key) is not the key it was written with"
)


def _opens(sealer: Sealer, blob: bytes, aad: str) -> bool:
    try:
        sealer.open(bytes(blob), aad)
    except (ConfigurationError, sqlite3.Error, TypeError):
        return False
    return True
