"""Group commit on SQLite's one writer, and the reader connections beside it.

Every write transaction of a process goes through one writer task that owns the writer
connection. Callers queue; the writer opens one BEGIN IMMEDIATE for as many queued callers as are
waiting (up to `batch`), runs each inside a SAVEPOINT of its own, and ends them all with one
COMMIT, so one fsync (synchronous=FULL) serves the lot. A caller whose body raises is rolled back
to its savepoint and told at once; the others are told only once the COMMIT is on disk, and all
of them learn of a COMMIT that failed. Reads go to reader connections (WAL: each read sees the
last commit, never a batch still open) without any lock of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import aiosqlite

from orchestrator.errors import StoreUnavailableError, exception_kind
from orchestrator.tasks import cancel_and_wait

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
"""A write done whole in the writer's thread: one hand-off for a run of them, not one a statement."""

BATCH = 64
"""Callers one COMMIT serves at most: enough to share the fsync, few enough to keep latency low."""


def _unavailable(exc: BaseException) -> StoreUnavailableError:
    error = StoreUnavailableError(f"the SQLite store failed: {exception_kind(exc)}")
    error.__cause__ = exc
    return error


def _failure(exc: BaseException) -> BaseException:
    """What a caller hears of a failed hand-off: SQLite's errors as the store being unavailable;
    anything else as it is. A closed connection stays aiosqlite's ValueError: it never comes back,
    so a background task meeting it dies and stops the worker (to be restarted), instead of
    retrying a store that is gone."""
    return _unavailable(exc) if isinstance(exc, sqlite3.Error) else exc


def _quiet(future: asyncio.Future[None]) -> None:
    """A caller cancelled before it heard the outcome must not leave 'never retrieved' noise."""
    if not future.cancelled():
        future.exception()


@dataclass(eq=False)
class _Slot:
    turn: asyncio.Future[None]  # writer → caller: its savepoint is open, the body may run
    done: asyncio.Future[bool]  # caller → writer: the body finished (False: roll it back)
    committed: asyncio.Future[None] = field(init=False)  # writer → caller: the COMMIT's outcome
    job: Job | None = None  # a job slot: no body in the caller's task, `value` its result
    value: Any = None

    def __post_init__(self) -> None:
        self.committed = self.turn.get_loop().create_future()
        self.committed.add_done_callback(_quiet)


class GroupWriter:
    """The only path to the writer connection; `transaction()` is what SqliteStore's writes use."""

    def __init__(self, db: aiosqlite.Connection, *, batch: int = BATCH, lock_wait: float = 10.0) -> None:
        self.db = db
        self._batch = batch
        self._lock_wait = lock_wait  # seconds BEGIN IMMEDIATE waits for another process's lock
        self._queue: deque[_Slot] = deque()
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._drained = asyncio.Event()  # set while the writer waits with nothing queued
        self.commits = 0  # COMMITs issued; the bench and tests read them
        self.members = 0  # transactions they carried

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body inside this process's next group transaction; return once it committed."""
        loop = asyncio.get_running_loop()
        slot = _Slot(loop.create_future(), loop.create_future())
        self._enqueue(slot)
        try:
            await slot.turn
        except BaseException:
            if not slot.turn.done():
                slot.turn.cancel()  # the writer skips it
            elif not slot.turn.cancelled() and slot.turn.exception() is None:
                slot.done.set_result(False)  # its turn came as it was cancelled: nothing to keep
            raise
        try:
            yield self.db
        except BaseException as exc:
            slot.done.set_result(False)
            if isinstance(exc, sqlite3.OperationalError):  # locked, busy, I/O: may pass
                raise _unavailable(exc) from exc
            raise
        slot.done.set_result(True)
        await asyncio.shield(slot.committed)

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """`job` inside this process's next group transaction, in the writer's thread; its result
        once the COMMIT is on disk. Cancelled before its turn, it is skipped; after, it completes."""
        loop = asyncio.get_running_loop()
        slot = _Slot(loop.create_future(), loop.create_future(), job=job)
        self._enqueue(slot)
        try:
            await asyncio.shield(slot.committed)
        except asyncio.CancelledError:
            if not slot.turn.done():
                slot.turn.cancel()
            raise
        return cast(T, slot.value)

    def _enqueue(self, slot: _Slot) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sqlite-writer")
        self._queue.append(slot)
        self._pending.set()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._drained.set()
                self._pending.clear()
                await self._pending.wait()
            self._busy = True
            try:
                await self._one_batch()
            finally:
                self._busy = False

    async def _one_batch(self) -> None:
        """BEGIN IMMEDIATE, every queued caller in its savepoint, COMMIT; each told its outcome."""
        first = self._next()
        if first is None:
            return
        if first.job is not None:
            await self._jobs_batch(first)
            return
        try:
            await self.db._execute(begin_immediate, self.db._conn, self._lock_wait)  # type: ignore[no-untyped-call]
        except Exception as exc:
            if not first.turn.done():  # else its caller was cancelled during BEGIN: nobody to tell
                first.turn.set_exception(_failure(exc))
            return
        kept: list[_Slot] = []
        room = min(self._batch, len(self._queue) + 1)  # those queued now: the write lock, which
        # other processes wait for, is not held open for callers still to come
        try:
            await self._serve_all(first, room, kept)
            await self.db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await self.db.execute("ROLLBACK")
            for member in kept:
                member.committed.set_exception(_unavailable(exc))
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        self.members += len(kept)
        for member in kept:
            member.committed.set_result(None)

    async def _jobs_batch(self, first: _Slot) -> None:
        """Queued jobs, BEGIN to COMMIT in one call on the writer's thread: no transaction is ever
        left open while this process's event loop is busy elsewhere (or blocked)."""
        jobs = [first]
        room = min(self._batch, len(self._queue) + 1)
        while len(jobs) < room and (candidate := self._next()) is not None:
            if candidate.job is None:
                self._queue.appendleft(candidate)  # a body of its own: the next batch serves it
                break
            jobs.append(candidate)
        for job in jobs:
            job.turn.set_result(None)  # started: a cancelled caller no longer takes it back
        try:
            thread = self.db._execute  # aiosqlite's own hand-off to the connection's thread
            outcomes = await thread(_batch_in_thread, self.db._conn, [j.job for j in jobs], self._lock_wait)  # type: ignore[no-untyped-call]
        except BaseException as exc:
            for job in jobs:
                job.committed.set_exception(_failure(exc))
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                self.members += 1
                job.value = value
                job.committed.set_result(None)
            else:
                failed = _unavailable(value) if isinstance(value, sqlite3.OperationalError) else value
                job.committed.set_exception(failed)

    async def _serve_all(self, first: _Slot, room: int, kept: list[_Slot]) -> None:
        """Up to `room` callers; a run of job slots goes to the writer's thread in one hand-off."""
        slot: _Slot | None = first
        taken = 0
        while slot is not None:
            taken += 1
            if slot.job is None:
                if await self._serve(slot):
                    kept.append(slot)
                slot = self._next() if taken < room else None
                continue
            jobs, slot = [slot], None
            while taken < room and (candidate := self._next()) is not None:
                if candidate.job is None:
                    slot = candidate
                    break
                taken += 1
                jobs.append(candidate)
            kept += await self._run_jobs(jobs)

    async def _run_jobs(self, jobs: list[_Slot]) -> list[_Slot]:
        """Each job in its savepoint, all in one call on the writer's thread; the failed told now."""
        for job in jobs:
            job.turn.set_result(None)  # started: a cancelled caller no longer takes it back
        try:
            thread = self.db._execute  # aiosqlite's own hand-off to the connection's thread
            outcomes = await thread(_jobs_in_thread, self.db._conn, [j.job for j in jobs])  # type: ignore[no-untyped-call]
        except BaseException as exc:
            for job in jobs:
                job.committed.set_exception(_failure(exc))
            raise
        kept = []
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                job.value = value
                kept.append(job)
            else:
                failed = _unavailable(value) if isinstance(value, sqlite3.OperationalError) else value
                job.committed.set_exception(failed)
        return kept

    def _next(self) -> _Slot | None:
        """The next caller still waiting for its turn (a cancelled one has gone)."""
        while self._queue:
            slot = self._queue.popleft()
            if not slot.turn.done():
                return slot
        return None

    async def _serve(self, slot: _Slot) -> bool:
        """One caller's body inside its savepoint; False when it raised and was rolled back."""
        try:
            await self.db.execute("SAVEPOINT member")
        except BaseException as exc:
            if not slot.turn.done():  # off the queue and not yet in the batch: only we can tell it
                slot.turn.set_exception(_failure(exc))
            raise
        if slot.turn.done():  # its caller was cancelled while the savepoint opened: it has gone
            await self.db.execute("RELEASE member")
            return False
        slot.turn.set_result(None)
        if not await asyncio.shield(slot.done):
            await self.db.execute("ROLLBACK TO member")
            await self.db.execute("RELEASE member")
            return False
        try:
            await self.db.execute("RELEASE member")
        except BaseException as exc:
            slot.committed.set_exception(_unavailable(exc))
            raise
        return True

    async def close(self) -> None:
        """Let the queued callers finish, then stop the writer task."""
        while (self._queue or self._busy) and self._task is not None and not self._task.done():
            self._drained.clear()
            await self._drained.wait()
        task, self._task = self._task, None
        await cancel_and_wait(task)


class Readers:
    """Reader connections taken in turn; SQLite's WAL lets them read while the writer writes.

    `point` reads one row by its key on the event loop's own thread, through a connection that
    never waits for a lock (busy_timeout 0, query_only): under WAL such a read takes a few
    microseconds, and the hop to a reader thread and back took 100-250 µs of the step's latency.
    When it fails in any way (SQLITE_BUSY from a checkpoint resetting the WAL, a closed or lost
    file) the read goes to the threads, which wait out the busy timeout and report as every other
    read does."""

    def __init__(
        self, connections: Sequence[aiosqlite.Connection], inline: sqlite3.Connection | None = None
    ) -> None:
        self.connections = list(connections)
        self._turns = itertools.cycle(self.connections)
        self._inline = inline

    async def point(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        if self._inline is not None:
            try:
                return self._inline.execute(sql, params).fetchall()
            except sqlite3.Error:
                pass  # busy or unusable here: the reader threads wait and report
        return await self.fetch(sql, params)

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            return list(await next(self._turns).execute_fetchall(sql, params))  # one hop to its thread
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for connection in self.connections:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await connection.close()


def _jobs_in_thread(conn: sqlite3.Connection, jobs: list[Job]) -> list[tuple[bool, Any]]:
    """Runs on the writer's thread: every job in a savepoint of its own, its outcome kept."""
    outcomes: list[tuple[bool, Any]] = []
    for job in jobs:
        conn.execute("SAVEPOINT member")
        try:
            value = job(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO member")
            conn.execute("RELEASE member")
            outcomes.append((False, exc))
            continue
        conn.execute("RELEASE member")
        outcomes.append((True, value))
    return outcomes


def busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY in any of its extended forms: `sqlite_errorcode` is the extended code, and
    SQLITE_BUSY_SNAPSHOT (a snapshot another process's commit made stale) or SQLITE_BUSY_RECOVERY
    (another process recovering the WAL after a crash) are as passing as the plain one."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY


def begin_immediate(conn: sqlite3.Connection, wait: float) -> None:
    """BEGIN IMMEDIATE, retried every 50 µs to 1 ms while another process holds the write lock, for
    `wait` seconds, then SQLITE_BUSY. The writer connection's own busy timeout is 0: SQLite's
    busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, so a worker sharing the file
    lost up to 25 ms to every batch of the other's that it met, though those hold the lock for
    about a millisecond."""
    deadline = time.monotonic() + wait
    pause = 0.00005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.001)


def _batch_in_thread(conn: sqlite3.Connection, jobs: list[Job], wait: float) -> list[tuple[bool, Any]]:
    """BEGIN IMMEDIATE, the jobs each in its savepoint, COMMIT (ROLLBACK if that fails)."""
    begin_immediate(conn, wait)
    try:
        outcomes = _jobs_in_thread(conn, jobs)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return outcomes
