"""The embedded default measured: end to end beside the bare SQLite floor, per-transition latency,
and resident memory over many registrations. Run through bench/run.py."""

from __future__ import annotations

import asyncio
import base64
import gc
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.ca_revocation.devca import DevCA, Person
from adapters.clock import SystemClock
from honnin.bootstrap import App, bootstrap
from honnin.emulator import CardEmulator, LocalFeed
from honnin.settings import Settings
from orchestrator.ports import Delivery
from orchestrator.service import HandleResult, Orchestrator
from orchestrator.topology import VERIFIER_QUEUE
from schemas.events import Envelope, new_event_id, parse_event

KEY = base64.b64encode(bytes(range(32))).decode()
FACILITY = "facility-bench"
FLOW = (
    "registration.started",
    "card.info_read",
    "registration.confirmed",
    "card.signature_submitted",
    "verification.completed",
    "registration.complete_requested",
)
APPLICANT = {
    "login_id": "user-bench",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": "公的　花子",
    "address": "東京都千代田区千代田１－１",
}


class Latencies:
    """Milliseconds of each `Orchestrator.handle`, by event type: `ms` from the call, `own` from
    the moment the event has its registration's turn (without waiting for that registration's
    earlier events, which the emulator sends together)."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.own: dict[str, list[float]] = defaultdict(list)

    def attach(self, orchestrator: Orchestrator) -> None:
        """`ms` times every call; `own` only the try that applied, refused or found a duplicate (a
        step that came early and was tried again after its wait counts once, its last try)."""
        orchestrator.handle = self._timed(orchestrator.handle, self.ms, always=True)  # type: ignore[method-assign]
        orchestrator._handle = self._timed(orchestrator._handle, self.own, always=False)  # type: ignore[method-assign]

    @staticmethod
    def _timed(
        handle: Callable[..., Awaitable[HandleResult]], into: dict[str, list[float]], *, always: bool
    ) -> Callable[..., Awaitable[HandleResult]]:
        async def timed(event: Envelope, *args: Any, **kwargs: Any) -> HandleResult:
            started = time.perf_counter()
            try:
                result = await handle(event, *args, **kwargs)
            except BaseException:
                if always:
                    into[event.type].append((time.perf_counter() - started) * 1000)
                raise
            into[event.type].append((time.perf_counter() - started) * 1000)
            return result

        return timed

    def summary(self, own: bool = False) -> list[tuple[str, float, float, int]]:
        """(type, p50, p99, n) in the flow's order."""
        rows = []
        found = self.own if own else self.ms
        for kind in sorted(found, key=lambda k: FLOW.index(k) if k in FLOW else len(FLOW)):
            values = sorted(found[kind])
            rows.append((kind, _quantile(values, 0.50), _quantile(values, 0.99), len(values)))
        return rows


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def settings(data_dir: Path, **changes: object) -> Settings:
    """The embedded default as `honnin run` builds it, with the development CA trusted."""
    return Settings(data_dir=data_dir, data_key=KEY, log_level="WARNING", **changes)  # type: ignore[arg-type]


class _Emulator(CardEmulator):
    """The card emulator, telling each registration's driver when it was activated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.done: dict[str, asyncio.Future[None]] = {}

    async def _on_facility(self, event: dict[str, Any]) -> None:
        await super()._on_facility(event)
        waiting = self.done.get(event["registration_id"])
        if event["type"] == "registration.activated" and waiting is not None and not waiting.done():
            waiting.set_result(None)


async def embedded_end_to_end(n: int, tmp: Path, concurrency: int) -> tuple[float, Latencies]:
    """Registrations per second through bus, orchestrator, relay, verifier (real RSA, CRL) and the
    feed, `concurrency` registrations in flight at once; and each transition's latency."""
    now = datetime.now(UTC)
    ca = DevCA.create(now=now - timedelta(days=1))
    (root := tmp / "root.der").write_bytes(ca.der)
    (crl := tmp / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    chosen = settings(tmp / "data", trust_anchor_files=[root], crl_files=[crl], accept_test_certificates=True)
    app = await bootstrap(chosen)
    latencies = Latencies()
    latencies.attach(app.orchestrator)
    await app.runtime.start()
    feed = LocalFeed(app.outbound, FACILITY)
    emulator = _Emulator(
        app.bus, ca.issue(Person(), now=now), Person(), SystemClock(), feed, facility_id=FACILITY
    )
    await emulator.listen()
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        rid = f"reg-bench-{i:07d}"
        async with gate:
            activated = emulator.done[rid] = asyncio.get_running_loop().create_future()
            await emulator.register(rid)
            await asyncio.wait_for(activated, 120)
            del emulator.done[rid]

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - started
    finally:
        await emulator.close()
        await app.close()
    return n / elapsed, latencies


def sqlite_floor(n: int, path: Path, synchronous: str = "FULL") -> float:
    """Registrations per second as 5 version-checked UPDATE transactions each, on one connection,
    WAL and the store's synchronous setting; the rows exist beforehand (not timed)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("CREATE TABLE registrations (id TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB)")
    blob = bytes(1500)  # about a sealed registration document
    db.execute("BEGIN")
    db.executemany("INSERT INTO registrations VALUES (?, 0, ?)", [(f"r{i}", blob) for i in range(n)])
    db.execute("COMMIT")
    started = time.perf_counter()
    for i in range(n):
        for version in range(5):
            db.execute("BEGIN IMMEDIATE")
            changed = db.execute(
                "UPDATE registrations SET version = version + 1, data = ? WHERE id = ? AND version = ?",
                (blob, f"r{i}", version),
            ).rowcount
            db.execute("COMMIT")
            assert changed == 1
    elapsed = time.perf_counter() - started
    db.close()
    return n / elapsed


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


async def memory_growth(marks: tuple[int, int], tmp: Path, concurrency: int) -> list[tuple[int, int]]:
    """RSS after each mark of registrations, each driven through its six steps with `handle()`
    (the verdict given, not computed), the relay publishing and a consumer taking the requests."""
    app = await bootstrap(settings(tmp / "data", verifier_enabled=False))
    await app.runtime.start()

    async def taken(_delivery: Delivery) -> None:
        return None

    await app.bus.consume(VERIFIER_QUEUE, taken)
    certificate = base64.b64encode(DevCA.create().issue(Person()).der).decode()
    readings: list[tuple[int, int]] = []
    try:
        done = 0
        for mark in marks:
            await _drive(app, range(done, mark), certificate, concurrency)
            done = mark
            gc.collect()
            readings.append((mark, resident_bytes()))
    finally:
        await app.close()
    return readings


async def _drive(app: App, indexes: range, certificate: str, concurrency: int) -> None:
    """`concurrency` drivers taking the next registration in turn: the driver's own memory stays
    the same whatever the count (a task per registration would be the bench growing, not Honnin)."""
    numbers = iter(indexes)
    gate = asyncio.Semaphore(concurrency)

    async def driver() -> None:
        for i in numbers:
            await _flow(app, i, certificate, gate)

    await asyncio.gather(*(driver() for _ in range(concurrency)))


async def _flow(app: App, i: int, certificate: str, gate: asyncio.Semaphore) -> None:
    rid = f"reg-mem-{i:07d}"
    payloads: dict[str, dict[str, Any]] = {
        "registration.started": {"facility_id": FACILITY, "applicant": APPLICANT},
        "card.info_read": {
            "card": {
                "name": "公的　花子",
                "address": "東京都千代田区千代田１－１",
                "birth_date": "1990-04-01",
                "sex": 2,
            }
        },
        "registration.confirmed": {"notice_acknowledged": True},
        "card.signature_submitted": {
            "certificate": certificate,
            "signature": base64.b64encode(bytes(256)).decode(),
            "algorithm": "rsa-pkcs1v15-sha256",
        },
        "verification.completed": {"attempt": 1, "outcome": "pass", "certificate_fingerprint": "a" * 64},
        "registration.complete_requested": {},
    }
    sources = {
        "card.info_read": "app",
        "card.signature_submitted": "app",
        "verification.completed": "verifier",
    }
    async with gate:
        for kind in FLOW:
            event = parse_event(
                {
                    "event_id": str(new_event_id()),
                    "type": kind,
                    "registration_id": rid,
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "source": sources.get(kind, "web"),
                    "payload": payloads[kind],
                }
            )
            result = await app.orchestrator.handle(event)
            assert result.status == "applied", (kind, result)
