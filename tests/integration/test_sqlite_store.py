"""The SQLite store's own settings and failures: durable commits by default, an opening that
fails (or is cancelled) leaves no connection thread behind to keep the process alive, key reads on
the loop's thread never wait or write, the memo of sealed bytes, how the writer takes the lock,
and workers started together on one new file."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.synchronize
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import adapters.store.sqlite as sqlite_module
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from adapters.store.sqlite_writer import begin_immediate, busy
from honnin.bootstrap import open_store
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError, QuarantinedError, StoreUnavailableError
from orchestrator.model import State
from tests.contract.test_store_contract import commit, registration
from tests.leaks import connection_threads


async def synchronous_of(store: SqliteStore) -> int:
    rows = await store._fetch("PRAGMA synchronous")
    return int(rows[0][0])


async def test_commits_are_durable_by_default_and_normal_is_a_setting(tmp_path: Path, sealer: Sealer) -> None:
    full = await SqliteStore.open(tmp_path / "full.db", sealer)
    normal = await SqliteStore.open(tmp_path / "normal.db", sealer, synchronous="NORMAL")
    try:
        assert await synchronous_of(full) == 2, "FULL: a commit survives a power loss"
        assert await synchronous_of(normal) == 1
    finally:
        await full.close()
        await normal.close()
    with pytest.raises(ConfigurationError):
        await SqliteStore.open(tmp_path / "off.db", sealer, synchronous="OFF")  # type: ignore[arg-type]


async def test_the_setting_reaches_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONNIN_SQLITE_SYNCHRONOUS", "NORMAL")
    monkeypatch.setenv("HONNIN_SQLITE_BUSY_TIMEOUT_SECONDS", "2.5")
    settings = Settings(data_dir=tmp_path)
    store = await open_store(settings, bytes(32))
    try:
        assert isinstance(store, SqliteStore)
        assert await synchronous_of(store) == 1
        assert (await store._fetch("PRAGMA busy_timeout"))[0][0] == 2500
    finally:
        await store.close()
    assert Settings(data_dir=tmp_path, _env_file=None).sqlite_synchronous == "NORMAL"
    monkeypatch.delenv("HONNIN_SQLITE_SYNCHRONOUS")
    assert Settings(data_dir=tmp_path).sqlite_synchronous == "FULL"


def _temporary_files() -> list[str]:
    """SQLite's temporary files this process holds open (unlinked at once, so only /proc sees them)."""
    names = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if "etilqs_" in (target := os.readlink(fd)):
                names.append(target)
    return names


async def test_a_writes_savepoint_journal_stays_in_memory(tmp_path: Path, sealer: Sealer) -> None:
    """A job that rewrites more than 64 KiB of existing pages inside its savepoint: SQLite's
    default spills those pages to a temporary file, one created and unlinked per transaction. The
    writer keeps them in memory, and a job that fails still rolls back to its savepoint alone."""
    store = await SqliteStore.open(tmp_path / "honnin.db", sealer)
    writer = store._writer
    try:
        await writer.run(lambda db: db.execute("CREATE TABLE wide (k INTEGER PRIMARY KEY, v BLOB)"))
        rows = [(k, bytes(1000)) for k in range(400)]  # about 100 pages
        await writer.run(lambda db: db.executemany("INSERT INTO wide VALUES (?, ?)", rows))
        async with writer.transaction() as db:
            await db.execute("UPDATE wide SET v = randomblob(1000)")
            assert _temporary_files() == []

        def fails(db: sqlite3.Connection) -> None:
            db.execute("UPDATE wide SET v = zeroblob(1000)")
            raise RuntimeError("this job fails after rewriting every page")

        kept = writer.run(lambda db: db.execute("INSERT INTO wide VALUES (-1, x'01')"))
        results = await asyncio.gather(kept, writer.run(fails), return_exceptions=True)
        assert isinstance(results[1], RuntimeError)
        zeroed = await store._fetch("SELECT count(*) FROM wide WHERE v = zeroblob(1000)")
        assert zeroed[0][0] == 0, "the failed job's rewrite was rolled back"
        assert (await store._fetch("SELECT count(*) FROM wide"))[0][0] == 401, "its neighbour kept"
    finally:
        await store.close()


async def test_a_file_that_is_no_database_fails_to_open_and_leaves_no_thread(
    tmp_path: Path, sealer: Sealer
) -> None:
    before = len(connection_threads())
    bad = tmp_path / "honnin.db"
    bad.write_bytes(b"not a database at all " * 64)
    with pytest.raises(StoreUnavailableError, match="SQLITE_NOTADB"):
        await SqliteStore.open(bad, sealer)
    await asyncio.sleep(0.1)
    assert len(connection_threads()) == before


async def test_an_opening_refused_after_connecting_closes_its_connection(
    tmp_path: Path, sealer: Sealer
) -> None:
    """The file opens but the key does not fit it: the connection is closed before the error leaves,
    even while the error (and its traceback, which holds the connection) is still kept — as an
    uncaught error is at exit, where a thread still running would keep the process alive."""
    path = tmp_path / "honnin.db"
    before = len(connection_threads())
    await (await SqliteStore.open(path, sealer)).close()
    await _threads_back_to(before)  # a closed connection's thread ends a moment after close()
    with pytest.raises(ConfigurationError, match="does not open this store") as caught:
        await SqliteStore.open(path, Sealer(bytes(32)))
    await _threads_back_to(before)
    assert caught.value.__traceback__ is not None
    assert len(connection_threads()) == before, "closed, not left to the garbage collector"


async def _threads_back_to(count: int) -> None:
    for _ in range(40):
        if len(connection_threads()) == count:
            return
        await asyncio.sleep(0.05)


async def test_key_reads_on_the_loops_thread_never_wait_and_never_write_and_fall_back(
    tmp_path: Path, sealer: Sealer
) -> None:
    """Point reads run on the loop's thread through a connection that cannot block the loop on a
    lock nor write; when it cannot answer, the reader threads do, with the same result."""

    store = await SqliteStore.open(tmp_path / "honnin.db", sealer)
    try:
        await store.commit(commit("e1", registration(), 0))
        inline = store._readers._inline
        assert inline is not None
        assert inline.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        assert inline.execute("PRAGMA query_only").fetchone()[0] == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            inline.execute("DELETE FROM registrations")
        on_loop = await store.load_for_event("reg-00000001", "e2")
        inline.close()  # unusable now: every point read goes to the reader threads
        threaded = await store.load_for_event("reg-00000001", "e2")
        assert on_loop == threaded
        assert threaded is not None
        assert threaded.version == 1
        assert await store.is_processed("e1")
        assert await store.load("reg-00000001") == threaded
    finally:
        await store.close()


async def test_a_registration_this_process_sealed_is_not_decoded_again_unless_its_row_changed(
    tmp_path: Path, sealer: Sealer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo of sealed bytes: the row as this process wrote it comes back without a decode;
    a row with other bytes (another process's write, a tampering) is opened and checked as ever."""

    decodes: list[bytes] = []
    real = sqlite_module.registration_from

    def counted(plain: bytes):  # type: ignore[no-untyped-def]
        decodes.append(plain)
        return real(plain)

    monkeypatch.setattr(sqlite_module, "registration_from", counted)
    path = tmp_path / "honnin.db"
    store = await SqliteStore.open(path, sealer)
    other = await SqliteStore.open(path, sealer)  # another worker on the same file
    try:
        written = registration()
        await store.commit(commit("e1", written, 0))
        loaded = await store.load_for_event("reg-00000001", "e2")
        assert loaded is not None
        assert loaded.registration == written
        assert decodes == [], "sealed here, not opened again"
        await other.commit(commit("e2", registration(state=State.CARD_READ), 1))
        moved = await store.load("reg-00000001")
        assert moved is not None
        assert (moved.version, moved.registration.state, len(decodes)) == (2, State.CARD_READ, 1)
        assert (await store.load("reg-00000001")) == moved
        assert len(decodes) == 1, "opened once, then known by its bytes"
        raw = sqlite3.connect(path, isolation_level=None)
        (blob,) = raw.execute("SELECT data FROM registrations").fetchone()
        raw.execute("UPDATE registrations SET data = ?", (blob[:-1] + bytes([blob[-1] ^ 1]),))
        raw.close()
        with pytest.raises(QuarantinedError):
            await store.load("reg-00000001")
    finally:
        await store.close()
        await other.close()


def test_the_writer_takes_the_lock_within_a_millisecond_of_its_release_and_gives_up_at_its_wait(
    tmp_path: Path,
) -> None:
    """BEGIN IMMEDIATE against another process's write lock: retried at short intervals (SQLite's
    own busy handler sleeps up to 25 ms between tries), until the configured wait runs out."""

    path = tmp_path / "lock.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE t (x)")
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(writer, 0.2)
    assert 0.2 <= time.monotonic() - started < 1.0, "it waited its time, then said so"

    released: list[float] = []

    def release() -> None:
        time.sleep(0.3)
        released.append(time.monotonic())
        holder.execute("COMMIT")

    threading.Thread(target=release).start()
    begin_immediate(writer, 5.0)
    taken = time.monotonic()
    writer.execute("INSERT INTO t VALUES (1)")
    writer.execute("COMMIT")
    assert released, "the lock was free only after the holder's COMMIT"
    assert taken - released[0] < 0.02, f"taken {1000 * (taken - released[0]):.1f} ms after its release"
    writer.close()
    holder.close()


def _hold_the_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    """Another worker's connection in the middle of creating the file (not yet WAL), holding its
    write lock for `seconds`."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE begun (x)")
    other.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


async def test_opening_a_new_file_waits_for_another_workers_lock_then_opens(
    tmp_path: Path, sealer: Sealer
) -> None:
    """Turning a new file to WAL needs its exclusive lock, and while another connection holds the
    write lock SQLite answers SQLITE_BUSY at once, without its busy handler (it would deadlock): the
    second of two workers started together used to fail."""
    path = tmp_path / "shared.db"
    locked = threading.Event()
    holder = threading.Thread(target=_hold_the_lock, args=(path, 0.3, locked))
    holder.start()
    assert locked.wait(5)
    started = time.monotonic()
    store = await SqliteStore.open(path, sealer)
    try:
        assert time.monotonic() - started >= 0.25, "it waited for the lock"
        assert (await store._fetch("PRAGMA journal_mode"))[0][0] == "wal"
    finally:
        await store.close()
        holder.join()


async def test_opening_gives_up_with_a_clear_error_when_the_lock_outlasts_the_busy_timeout(
    tmp_path: Path, sealer: Sealer
) -> None:
    path = tmp_path / "shared.db"
    locked = threading.Event()
    holder = threading.Thread(target=_hold_the_lock, args=(path, 1.0, locked))
    holder.start()
    assert locked.wait(5)
    before = len(connection_threads())
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError, match="SQLITE_BUSY"):
            await SqliteStore.open(path, sealer, busy_timeout_ms=200)
        assert 0.15 <= time.monotonic() - started < 0.9
        await _threads_back_to(before)
        assert len(connection_threads()) == before, "its connections closed"
    finally:
        holder.join()


def _open_and_close(path: str, barrier: multiprocessing.synchronize.Barrier, key: bytes) -> None:
    async def go() -> None:
        barrier.wait(timeout=30)
        store = await SqliteStore.open(Path(path), Sealer(key))
        await store.close()

    asyncio.run(go())


def test_workers_started_together_on_a_new_file_all_open_it(tmp_path: Path) -> None:
    """Four processes opening one new file at the same instant, again and again: every one opens
    (each statement SQLite refuses at once without waiting is tried again within the busy timeout)."""
    context = multiprocessing.get_context("spawn")
    key = bytes(range(32))
    failed = []
    for round_ in range(8):
        path = tmp_path / f"race-{round_}.db"
        barrier = context.Barrier(4)
        processes = [
            context.Process(target=_open_and_close, args=(str(path), barrier, key), daemon=True)
            for _ in range(4)
        ]
        for process in processes:
            process.start()
        try:
            for process in processes:
                process.join(60)
        finally:
            for process in processes:
                if process.is_alive():  # one stuck: the test fails, and leaves nothing running
                    process.kill()
                    process.join()
        failed += [process.exitcode for process in processes if process.exitcode != 0]
    assert not failed, f"{len(failed)} of 32 openings failed"


def test_every_kind_of_busy_is_waited_for_and_nothing_else(tmp_path: Path) -> None:
    """`sqlite_errorcode` is SQLite's extended code: a snapshot another connection's commit made
    stale is SQLITE_BUSY_SNAPSHOT (517), not 5, and is as passing; a constraint is not."""
    path = tmp_path / "busy.db"
    first = sqlite3.connect(path, isolation_level=None)
    second = sqlite3.connect(path, isolation_level=None)
    try:
        first.execute("PRAGMA journal_mode = WAL")
        first.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        first.execute("BEGIN")
        first.execute("SELECT count(*) FROM t").fetchone()  # its snapshot starts here
        second.execute("INSERT INTO t VALUES (1)")  # and is stale from here
        with pytest.raises(sqlite3.OperationalError) as stale:
            first.execute("INSERT INTO t VALUES (2)")
        first.execute("ROLLBACK")
        assert stale.value.sqlite_errorcode == 517  # SQLITE_BUSY_SNAPSHOT
        assert busy(stale.value)
        with pytest.raises(sqlite3.IntegrityError) as duplicate:
            second.execute("INSERT INTO t VALUES (1)")
        assert not busy(duplicate.value)
    finally:
        first.close()
        second.close()
