"""No facility listening, nothing stalls: N registrations through the embedded default, and the feed's
long-poll latency.

Part 1: a worker as `honnin run` wires it (SQLite file, in-process bus, relay, sweeper, webhook
delivery worker) carries N registrations to activation. Steps go in over the bus; a stand-in
verifier consumes `honnin.verifier` and answers `pass` at once, then presses 【完了する】 (the real
verifier's cost is bench/verification.py's subject). No facility reads its feed and none has a
webhook: each registration leaves three facility events in the store, none on a queue. Reported per
slice: registrations per second, the outbox backlog, the resident memory (after a collection).

Part 2: a facility long-polls `GET /v1/events` over loopback HTTP; each round commits one facility
event and times commit → answer, for a commit in the polled worker (its in-process wake-up) and in
another worker on the same store (found by the store poll, HONNIN_FEED_POLL_SECONDS).

    .venv/bin/python bench/outbound.py [--n 50000] [--slice 5000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp

from adapters.http.common import serve
from honnin.bootstrap import App, bootstrap
from honnin.http import build_http
from honnin.settings import Settings
from orchestrator.ports import BusMessage, Delivery
from orchestrator.topology import VERIFIER_QUEUE
from schemas.events import parse_event

KEY = base64.b64encode(bytes(range(32))).decode()
FACILITY, TOKEN = "facility-bench", "facility-bench-token-0123456789"
IN_FLIGHT = 200
APPLICANT = {
    "login_id": "bench0001",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": "公的　花子",
    "address": "東京都千代田区千代田１－１",
}
SIGNATURE = {"certificate": "MIIB", "signature": "c2ln", "algorithm": "rsa-pkcs1v15-sha256"}
CARD = {"name": "公的　花子", "address": "東京都千代田区千代田１－１", "birth_date": "1990-04-01", "sex": 2}


def rss_mib() -> float:
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def envelope(kind: str, rid: str, source: str, payload: dict[str, object]) -> BusMessage:
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "type": kind,
        "registration_id": rid,
        "occurred_at": "2026-11-23T09:00:00+00:00",
        "source": source,
        "schema_version": 1,
        "payload": payload,
    }
    return BusMessage(kind, json.dumps(body, ensure_ascii=False).encode(), event_id)


def steps(rid: str) -> list[BusMessage]:
    """The web page's and the phone app's steps up to the signature."""
    return [
        envelope("registration.started", rid, "web", {"facility_id": FACILITY, "applicant": APPLICANT}),
        envelope("card.info_read", rid, "app", {"card": CARD}),
        envelope("registration.confirmed", rid, "web", {"notice_acknowledged": True}),
        envelope("card.signature_submitted", rid, "app", SIGNATURE),
    ]


def settings(data_dir: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "data_key": KEY,
        "verifier_enabled": False,  # the stand-in below serves honnin.verifier
        "http_enabled": False,
        "log_level": "ERROR",
        "facility_tokens": f"{FACILITY}:{TOKEN}",
    }
    return Settings(**(values | changes))  # type: ignore[arg-type]


async def stand_in_verifier(app: App) -> None:
    async def answer(delivery: Delivery) -> None:
        request = json.loads(delivery.message.body)
        rid, attempt = request["registration_id"], request["payload"]["attempt"]
        await app.bus.publish(
            envelope("verification.completed", rid, "verifier", {"attempt": attempt, "outcome": "pass"})
        )
        await app.bus.publish(envelope("registration.complete_requested", rid, "web", {}))

    await app.bus.consume(VERIFIER_QUEUE, answer)


class Activations:
    """Counts activations from the store (no facility is listening): new feed rows since the last look."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._seq = 0
        self.count = 0

    async def at_least(self, count: int) -> int:
        while self.count < count:
            if await self._app.store.dead_letter_count():  # the embedded bus keeps them in the store
                [dead] = await self._app.store.dead_letters(limit=1)
                raise SystemExit(f"dead-lettered: {dead.reason}")
            sql = "SELECT seq, event_type FROM feed WHERE seq > ? ORDER BY seq"
            rows = await self._app.store._fetch(sql, (self._seq,))  # type: ignore[attr-defined]
            if rows:
                self._seq = rows[-1][0]
                self.count += sum(1 for r in rows if r[1] == "registration.activated")
            else:
                await asyncio.sleep(0.05)
        return self.count


def row(mark: int, rate: str, backlog: int, facility: str) -> str:
    return f"{mark:>7} {rate:>8} {backlog:>15} {facility:>15} {rss_mib():8.1f}"


async def registrations(n: int, size: int, tmp: Path) -> None:
    app = await bootstrap(settings(tmp / "data"))
    await app.runtime.start()
    await stand_in_verifier(app)
    activations = Activations(app)
    print(f"{'done':>7} {'reg/s':>8} {'outbox backlog':>15} {'facility queue':>15} {'RSS MiB':>8}")
    print(row(0, "", 0, "none"))
    try:
        started, sliced, mark = time.perf_counter(), time.perf_counter(), size
        for i in range(n):
            for step in steps(f"reg-bench-{i:07d}"):
                await app.bus.publish(step)
            if i % 100 != 99 and i != n - 1:
                continue
            done = await activations.at_least(i + 1 - IN_FLIGHT if i != n - 1 else n)
            while done >= mark:
                now = time.perf_counter()
                queues = getattr(app.bus, "queues", list)()
                facility = "present" if "honnin.facility" in queues else "none"
                print(row(mark, f"{size / (now - sliced):.0f}", await app.store.outbox_backlog(), facility))
                sliced, mark = now, mark + size
        total = time.perf_counter() - started
        feed = await app.store._fetch("SELECT COUNT(*) FROM feed")  # type: ignore[attr-defined]
        print(f"{n} activated in {total:.0f} s ({n / total:.0f}/s); {feed[0][0]} facility events in the feed")
    finally:
        await app.close()


async def latency(rounds: int, tmp: Path) -> None:
    polled = await bootstrap(settings(tmp / "feed", worker_id="polled"))
    other = await bootstrap(settings(tmp / "feed", worker_id="other"))
    await polled.runtime.start()
    try:
        async with serve(build_http(polled)) as server, aiohttp.ClientSession() as http:
            for label, committer in (("same worker", polled), ("another worker", other)):
                times = await _rounds(http, server.url, committer, rounds, label)
                cut = statistics.quantiles(times, n=100)
                quantiles = f"p50 {cut[49]:6.1f} ms, p99 {cut[98]:6.1f} ms"
                print(f"feed, commit in {label:>14}: {quantiles} ({rounds} rounds)")
    finally:
        await polled.close()
        await other.close()


async def _rounds(
    http: aiohttp.ClientSession, base: str, committer: App, rounds: int, label: str
) -> list[float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get(f"{base}/v1/events", params={"limit": "1000"}, headers=headers) as response:
        cursor = (await response.json())["cursor"]
    times = []
    for i in range(rounds):
        rid = f"reg-lat-{label[:4]}-{i:05d}"
        waiting = asyncio.create_task(_poll(http, f"{base}/v1/events", cursor, headers))
        await asyncio.sleep(random.uniform(0.01, 0.11))  # the request waits; any phase of the store poll
        start = envelope(
            "registration.started", rid, "web", {"facility_id": FACILITY, "applicant": APPLICANT}
        )
        await committer.orchestrator.handle(parse_event(start.body))
        cancel = envelope("registration.cancel_requested", rid, "web", {})
        committed = time.perf_counter()
        await committer.orchestrator.handle(parse_event(cancel.body))
        answered, page = await waiting
        assert [e["registration_id"] for e in page.get("events", [])] == [rid], page  # type: ignore[attr-defined]
        cursor = page["cursor"]
        times.append((answered - committed) * 1000)
    return times


async def _poll(
    http: aiohttp.ClientSession, url: str, cursor: str, headers: dict[str, str]
) -> tuple[float, dict[str, object]]:
    async with http.get(url, params={"after": cursor, "wait": "10"}, headers=headers) as response:
        page = await response.json()
    return time.perf_counter(), page


async def main(n: int, size: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        await registrations(n, size, Path(directory))
        await latency(rounds, Path(directory))


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--slice", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.slice, args.rounds))
