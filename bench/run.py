"""Every throughput number the README quotes, in one run, each beside its floor.

1. RabbitMQ: Honnin end to end with 2 `honnin run` workers (bench/e2e_rabbitmq.py) against the
   bare aio-pika floor of 5 confirmed persistent messages per registration through a quorum queue;
   beside them the peer, a Celery 5.7 chain of the same five steps with 2 workers on the same
   broker (bench/celery_chain.py; needs the `bench` extra, skipped with a note without it).
2. Embedded default (SQLite, synchronous=FULL, in-process bus, verifier on): Honnin end to end in
   this process (bench/embedded.py) against the bare SQLite floor of 5 version-checked UPDATE
   transactions per registration (WAL, the store's synchronous setting).
3. p50 and p99 of each transition (one `Orchestrator.handle`) during the embedded run, and one
   registration at a time, from the call and from the moment it has its registration's turn.
4. Resident memory after 10k and after 100k registrations on the embedded default, the
   orchestrator driven in process (`handle()` straight against the store, relay running).

    .venv/bin/python bench/run.py            # what the README's table comes from (8-15 min)
    .venv/bin/python bench/run.py --quick    # the same parts, smaller (< 2 min)

The last two lines are exactly `rabbitmq ratio: R` and `embedded ratio: R`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog

from bench import e2e_rabbitmq
from bench.embedded import Latencies, embedded_end_to_end, memory_growth, sqlite_floor

MESSAGES_PER_REGISTRATION = 5
"""The floor's messages per registration, as issue 15 defines it."""


@dataclass(frozen=True)
class Plan:
    rabbitmq: int  # registrations end to end over RabbitMQ
    embedded: int  # registrations end to end on the embedded default
    floor: int  # registrations the SQLite floor writes
    memory: tuple[int, int]  # registrations at the two memory readings
    concurrency: int  # registrations in flight in the drivers
    latency: int  # registrations driven one at a time for the latency table


FULL = Plan(rabbitmq=2000, embedded=2000, floor=2000, memory=(10_000, 100_000), concurrency=64, latency=300)
QUICK = Plan(rabbitmq=200, embedded=200, floor=300, memory=(1_000, 3_000), concurrency=64, latency=50)


class HostSteal:
    """The share of this machine's CPU time its hypervisor gave to other guests (the `steal` column
    of /proc/stat) since the start: a virtual machine on a busy host runs everything slower, and
    the run's numbers are read beside it. None where /proc/stat has no steal column."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as stat:
                fields = [int(f) for f in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        return (fields[7], sum(fields)) if len(fields) == 8 else None

    def percent(self) -> float | None:
        now = self._read()
        if now is None or self._start is None or now[1] == self._start[1]:
            return None
        return (now[0] - self._start[0]) / (now[1] - self._start[1]) * 100


def report_machine() -> None:
    """One line that tells one day's machine from another's: the cores, a pure-Python loop's time
    (the interpreter's speed on this CPU) and the load before the run."""
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    loop = time.perf_counter() - started
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores; 10^7 Python additions {loop:.2f} s; load average {load:.2f}")


def report_steal(part: str, steal: HostSteal) -> None:
    share = steal.percent()
    if share is not None:
        print(f"{part}: host steal {share:.1f} % of the machine's CPU time during this part")


async def rabbitmq(plan: Plan, workers: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        spent: dict[str, float] = {}
        e2e = await e2e_rabbitmq.end_to_end(plan.rabbitmq, workers, Path(directory), plan.concurrency, spent)
    print(f"rabbitmq: honnin end to end, {workers} workers: {e2e:8.1f} registrations/s ({plan.rabbitmq})")
    e2e_rabbitmq.report_cpu("rabbitmq: honnin", spent, plan.rabbitmq)
    try:
        from bench import celery_chain
    except ModuleNotFoundError as exc:
        if exc.name not in ("celery", "kombu", "amqp"):
            raise  # the bench's own import is broken: say so, not "not installed"
        print("rabbitmq: celery chain skipped (pip install -e '.[bench]' to measure the peer)")
    else:
        peer_spent: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as directory:
            peer = await asyncio.to_thread(
                celery_chain.end_to_end,
                plan.rabbitmq,
                workers,
                Path(directory),
                plan.concurrency,
                "solo",
                peer_spent,
            )
        print(f"rabbitmq: celery chain, {workers} workers: {peer:8.1f} registrations/s ({plan.rabbitmq})")
        e2e_rabbitmq.report_cpu("rabbitmq: celery", peer_spent, plan.rabbitmq)
        print(f"rabbitmq: honnin / celery: {e2e / peer:.2f}")
    messages = plan.rabbitmq * MESSAGES_PER_REGISTRATION
    floor_spent: dict[str, float] = {}
    floor = await e2e_rabbitmq.floor(messages, 256, floor_spent) / MESSAGES_PER_REGISTRATION
    print(f"rabbitmq: bare aio-pika floor, 5 confirmed messages: {floor:8.1f} registrations/s")
    e2e_rabbitmq.report_cpu("rabbitmq: floor", floor_spent, plan.rabbitmq)
    return e2e / floor


async def embedded(plan: Plan) -> tuple[float, Latencies, Latencies]:
    """Throughput with `concurrency` registrations in flight; latency one registration at a time
    too (a transition's own time, without the queue of the others in front of it)."""
    with tempfile.TemporaryDirectory() as directory:
        e2e, loaded = await embedded_end_to_end(plan.embedded, Path(directory), plan.concurrency)
    print(f"embedded: honnin end to end: {e2e:8.1f} registrations/s ({plan.embedded})")
    with tempfile.TemporaryDirectory() as directory:
        _, alone = await embedded_end_to_end(plan.latency, Path(directory), 1)
    with tempfile.TemporaryDirectory() as directory:
        floor = sqlite_floor(plan.floor, Path(directory) / "floor.db")
    print(f"embedded: bare SQLite floor, 5 version-checked updates: {floor:8.1f} registrations/s")
    return e2e / floor, alone, loaded


def report_latencies(alone: Latencies, loaded: Latencies, concurrency: int) -> None:
    """One at a time: each transition from its call, and its own time once it has its
    registration's turn (the emulator sends a registration's first three steps together, so
    `card.info_read` and `registration.confirmed` otherwise include their predecessors' time)."""
    print(
        f"transition (embedded, ms)         one at a time: p50    p99   own p50 own p99"
        f"   {concurrency} in flight: p50    p99"
    )
    under = {kind: (p50, p99) for kind, p50, p99, _ in loaded.summary()}
    own = {kind: (p50, p99) for kind, p50, p99, _ in alone.summary(own=True)}
    for kind, p50, p99, _ in alone.summary():
        busy50, busy99 = under.get(kind, (0.0, 0.0))
        own50, own99 = own.get(kind, (0.0, 0.0))
        print(f"  {kind:<32} {p50:14.2f} {p99:6.2f} {own50:9.2f} {own99:7.2f} {busy50:17.2f} {busy99:6.2f}")


async def memory(plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as directory:
        readings = await memory_growth(plan.memory, Path(directory), plan.concurrency)
    (small, rss_small), (large, rss_large) = readings
    growth = (rss_large - rss_small) / rss_small * 100
    print(f"memory: RSS after {small} registrations {rss_small / 2**20:7.1f} MiB")
    print(f"memory: RSS after {large} registrations {rss_large / 2**20:7.1f} MiB ({growth:+.1f} %)")


async def main(plan: Plan, workers: int, parts: set[str]) -> None:
    ratios: dict[str, float | None] = {"rabbitmq": None, "embedded": None}
    report_machine()
    if "rabbitmq" in parts:
        steal = HostSteal()
        ratios["rabbitmq"] = await rabbitmq(plan, workers)
        report_steal("rabbitmq", steal)
    if "embedded" in parts:
        steal = HostSteal()
        ratios["embedded"], alone, loaded = await embedded(plan)
        report_latencies(alone, loaded, plan.concurrency)
        report_steal("embedded", steal)
    if "memory" in parts:
        await memory(plan)
    for name, ratio in ratios.items():
        print(f"{name} ratio: {'-' if ratio is None else f'{ratio:.2f}'}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller numbers: under two minutes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["rabbitmq", "embedded", "memory"],
        default=["rabbitmq", "embedded", "memory"],
    )
    parser.add_argument("--memory", nargs=2, type=int, metavar=("A", "B"), help="the two memory readings")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.memory:
        plan = replace(plan, memory=(args.memory[0], args.memory[1]))
    asyncio.run(main(plan, args.workers, set(args.only)))
