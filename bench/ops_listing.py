"""What operators' lists cost on SQLite: pages from the listing columns and their indexes, against
what `honnin parked` did before (read every confirmed registration, open each sealed document,
keep the parked ones).

N registrations are committed through the store (synchronous=NORMAL, to set up quickly): most
waiting in `confirmed` or done, 2 % parked with code 42, 1 % with 44, spread over 20 facilities and
both profiles. Then, best of `--rounds`:

- the first page (100) of parked registrations with code 42;
- every parked-42 registration, page after page by cursor;
- the counts by state, verification and code;
- the old way: every confirmed registration loaded and opened to find the parked ones.

    .venv/bin/python bench/ops_listing.py [--n 50000] [--rounds 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from orchestrator.listing import Cursor, RegistrationQuery
from orchestrator.model import Registration, State, Verification
from orchestrator.ports import Commit, HistoryEntry

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
PARKED_42 = RegistrationQuery(state="confirmed", verification="parked", code="42")


def registration(n: int) -> Registration:
    at = NOW + timedelta(seconds=n)
    state, verification = State.CONFIRMED, None
    if n % 100 in (0, 1):
        verification = Verification(attempt=1, status="parked", retries=5, code="42", decided_at=at)
    elif n % 100 == 2:
        verification = Verification(attempt=1, status="parked", retries=5, code="44", decided_at=at)
    elif n % 3 == 0:
        state = State.ACTIVATED
        verification = Verification(attempt=1, status="passed", decided_at=at)
    return Registration(
        id=f"reg-bench{n:07d}",
        reference=f"reg-bench{n:07d}",
        profile="xid" if n % 7 == 0 else "facility",
        facility_id=f"facility-{n % 20}",
        state=state,
        created_at=at,
        updated_at=at,
        expires_at=at + timedelta(days=1),
        verification=verification,
    )


async def fill(store: SqliteStore, n: int) -> None:
    for i in range(n):
        reg = registration(i)
        history = HistoryEntry(
            reg.id, f"e{i}", "registration.started", "web", reg.created_at, reg.created_at,
            "applied", "new", reg.state.value, event=b'{"schema_version": 1}',
        )  # fmt: skip
        await store.commit(Commit(f"e{i}", reg.id, 0, reg, history))


async def best(rounds: int, work: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        found = await work()
        times.append(time.perf_counter() - started)
    return min(times) * 1000, found


async def main(n: int, rounds: int, folder: Path) -> None:
    store = await SqliteStore.open(folder / "bench.db", Sealer(bytes(range(32))), synchronous="NORMAL")
    try:
        started = time.perf_counter()
        await fill(store, n)
        print(f"{n} registrations committed in {time.perf_counter() - started:.1f} s")

        async def first_page() -> int:
            return len(await store.registrations(PARKED_42, None, 100))

        async def every_page() -> int:
            found, after = 0, None
            while page := await store.registrations(PARKED_42, after, 100):
                found += len(page)
                cursor: Cursor = page[-1].cursor
                after = cursor
            return found

        async def counts() -> int:
            return sum((await store.registration_counts()).by_state.values())

        async def the_old_way() -> int:
            found = 0
            for rid in await store.in_state("confirmed", n):
                stored = await store.load(rid)
                v = stored.registration.verification if stored else None
                found += bool(v and v.status == "parked" and v.code == "42")
            return found

        for label, work in (
            ("first page of parked 42 (100 rows)", first_page),
            ("every parked 42, by cursor", every_page),
            ("counts by state, verification, code", counts),
            ("the old way: load every confirmed one", the_old_way),
        ):
            ms, found = await best(rounds if work is not the_old_way else 1, work)
            print(f"{label:40s} {ms:10.2f} ms  ({found} rows)")
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(main(args.n, args.rounds, Path(tmp)))
