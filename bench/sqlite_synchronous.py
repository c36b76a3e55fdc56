"""What durable commits cost: the orchestrator's commits on SQLite with `synchronous=FULL` (the
default: a commit acknowledged survives a power loss) against `NORMAL` (HONNIN_SQLITE_SYNCHRONOUS).

Each registration is three events through `Orchestrator.handle` on a fresh SQLite file in WAL mode
(start, card read, confirmation: three write transactions with history, outbox and feed rows),
`--concurrency` registrations at a time, as competing consumers would hand them over. The two
modes run in turns (`--rounds`), so a change in the machine's load touches both alike.

    .venv/bin/python bench/sqlite_synchronous.py [--n 500] [--concurrency 16] [--rounds 3] [--dir DIR]

`--dir` puts the files on the disk to measure (the default is the system's temporary folder, which
may be memory-backed and then hides the cost of an fsync).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.clock import SystemClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore, Synchronous
from honnin import logs
from orchestrator.model import Profile
from orchestrator.service import Orchestrator
from schemas.events import parse_event

APPLICANT = {
    "login_id": "bench0001",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": "公的　花子",
    "address": "東京都千代田区千代田１－１",
}
CARD = {"name": "公的　花子", "address": "東京都千代田区千代田１－１", "birth_date": "1990-04-01", "sex": 2}
STEPS = (
    ("registration.started", "web", {"facility_id": "facility-bench", "applicant": APPLICANT}),
    ("card.info_read", "app", {"card": CARD}),
    ("registration.confirmed", "web", {"notice_acknowledged": True}),
)


def event(kind: str, source: str, payload: dict[str, object], rid: str) -> object:
    return parse_event(
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "type": kind,
                "registration_id": rid,
                "occurred_at": datetime.now(UTC).isoformat(),
                "source": source,
                "payload": payload,
            }
        )
    )


async def run(folder: Path, mode: Synchronous, n: int, concurrency: int) -> float:
    """Commits per second for n registrations (3n commits)."""
    path = folder / f"bench-{mode}-{uuid.uuid4().hex[:6]}.db"
    store = await SqliteStore.open(path, Sealer(bytes(range(32))), synchronous=mode)
    steps = frozenset({"card_info_read", "confirm", "signature", "complete"})
    profile = Profile(name="facility", steps=steps, activation_timeout=timedelta(hours=1))
    orchestrator = Orchestrator(store, SystemClock(), {"facility": profile})
    gate = asyncio.Semaphore(concurrency)

    async def registration(i: int) -> None:
        async with gate:
            rid = f"reg-bench-{i:06d}"
            for kind, source, payload in STEPS:
                result = await orchestrator.handle(event(kind, source, payload, rid))  # type: ignore[arg-type]
                assert result.status == "applied", result

    started = time.perf_counter()
    try:
        await asyncio.gather(*(registration(i) for i in range(n)))
    finally:
        await store.close()
    return 3 * n / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="registrations per run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the database files go")
    args = parser.parse_args()
    logs.configure("WARNING", "console")  # a log line per event would be most of what is measured
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results: dict[str, list[float]] = {"FULL": [], "NORMAL": []}
        for round_ in range(1, args.rounds + 1):
            for mode in ("FULL", "NORMAL"):
                rate = await run(Path(tmp), mode, args.n, args.concurrency)  # type: ignore[arg-type]
                results[mode].append(rate)
                print(f"round {round_}  {mode:<6}  {rate:8.0f} commits/s", flush=True)
    full, normal = statistics.median(results["FULL"]), statistics.median(results["NORMAL"])
    cost = 1 - full / normal
    print(f"median: FULL {full:.0f} commits/s, NORMAL {normal:.0f} commits/s, FULL costs {cost:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
