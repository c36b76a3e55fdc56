"""Registrations per second end to end over RabbitMQ, beside the bare aio-pika floor.

End to end: N registrations driven by the card emulator (real RSA signatures with a dev CA card)
through W `honnin run` worker processes sharing one SQLite file, each worker also verifying
(pyhanko path validation against a CRL), until the facility has heard `registration.activated`
for every one, long-polling the first worker's `GET /v1/events` as a facility would. Each
registration moves 7 messages over the broker (6 steps in, the verification request out); its
facility events go to the feed in the commit itself.

Floor: the same number of messages published with confirms and consumed with acks by bare
aio-pika on one connection, no Honnin code at all.

    .venv/bin/python bench/e2e_rabbitmq.py [--n 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aio_pika

from adapters.bus.rabbitmq import RabbitMqBus
from adapters.ca_revocation.devca import DevCA, Person
from adapters.clock import SystemClock
from honnin.emulator import CardEmulator, HttpFeed
from orchestrator.topology import QUEUES

URL = os.environ.get("HONNIN_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
MESSAGES_PER_REGISTRATION = 7
FACILITY, TOKEN = "facility-emu", "facility-emu-token-0123456789"
T = TypeVar("T")


async def consume_acking(queue: aio_pika.abc.AbstractQueue, messages: int) -> asyncio.Event:
    """Consume `queue`, acking each message; the event is set once `messages` have come."""
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        await message.ack()
        seen += 1
        if seen == messages:
            done.set()

    await queue.consume(on_message)
    return done


async def floor(messages: int, window: int, cpu: dict[str, float] | None = None) -> float:
    """Messages per second through bare aio-pika: confirmed publishes (`window` awaiting their
    confirms at once; 1 is what Honnin's relay does), acked consumption, one connection. `cpu`,
    given, gets the CPU seconds of the timed part (broker, client)."""
    connection = await aio_pika.connect_robust(URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=32)
        queue = await channel.declare_queue(
            f"bench.floor.{uuid.uuid4().hex[:8]}", arguments={"x-queue-type": "quorum"}, durable=True
        )
        done = await consume_acking(queue, messages)
        body = b"x" * 600  # about an envelope's size
        meter = CpuMeter([])
        started = time.perf_counter()
        for first in range(0, messages, window):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(
                            body, message_id=str(i), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                        ),
                        routing_key=queue.name,
                    )
                    for i in range(first, min(first + window, messages))
                )
            )
        await done.wait()
        elapsed = time.perf_counter() - started
        if cpu is not None:
            spent = meter.spent()
            cpu.update(broker=spent["broker"], client=spent["driver"])
        await queue.delete(if_unused=False, if_empty=False)
        return messages / elapsed
    finally:
        await connection.close()


class CpuMeter:
    """CPU seconds (user + system, every thread) spent from its start by the broker's processes
    (beam.smp, when it runs on this machine), the given worker processes and this one (Linux /proc)."""

    def __init__(self, workers: list[int]) -> None:
        self._workers = workers
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        return {
            "broker": sum(_cpu_seconds(pid) for pid in _broker_pids()),
            "workers": sum(_cpu_seconds(pid) for pid in self._workers),
            "driver": time.process_time(),
        }

    def spent(self) -> dict[str, float]:
        now = self._now()
        return {party: now[party] - self._start[party] for party in now}


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _broker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "beam.smp":
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def report_cpu(label: str, spent: dict[str, float], registrations: int) -> None:
    """CPU milliseconds per registration by party: what a machine's cores must hold."""
    parts = ", ".join(f"{party} {seconds / registrations * 1000:.2f}" for party, seconds in spent.items())
    total = sum(spent.values()) / registrations * 1000
    print(f"{label}: CPU ms per registration: {parts}; total {total:.2f} ({os.cpu_count()} cores)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR")  # set: each worker writes a cProfile there


def start_worker(tmp: Path, prefix: str, n: int, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env |= {
        "HONNIN_DATA_DIR": str(tmp / "data"),
        "HONNIN_DATA_KEY": base64.b64encode(bytes(range(32))).decode(),
        "HONNIN_BUS": "rabbitmq",
        "HONNIN_RABBITMQ_URL": URL,
        "HONNIN_RABBITMQ_QUEUE_PREFIX": prefix,
        "HONNIN_TRUST_ANCHOR_FILES": str(tmp / "ca" / "root.pem"),
        "HONNIN_CRL_FILES": str(tmp / "ca" / "crl.der"),
        "HONNIN_ACCEPT_TEST_CERTIFICATES": "true",  # the development CA's test-environment policy
        "HONNIN_WORKER_ID": f"bench-{n}",
        "HONNIN_LOG_LEVEL": "WARNING",
        "HONNIN_RELAY_IDLE_SECONDS": "0.05",
        "HONNIN_HTTP_PORT": str(port),  # steps come over the broker; the feed is read over HTTP
        "HONNIN_FACILITY_TOKENS": f"{FACILITY}:{TOKEN}",
    }
    profile = ["-m", "cProfile", "-o", f"{PROFILE_DIR}/worker-{n}.prof"] if PROFILE_DIR else []
    if PROFILE_DIR:
        Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)  # cProfile would fail at the very end
    return subprocess.Popen([sys.executable, *profile, "-m", "honnin.cli", "run"], cwd=ROOT, env=env)


async def end_to_end(
    n: int, workers: int, tmp: Path, concurrency: int = 1, cpu: dict[str, float] | None = None
) -> float:
    """Registrations per second; `concurrency` registrations are started at once, as many
    facility pages and phones would. `cpu`, given, gets the CPU seconds of the timed part by party
    (broker, workers, driver)."""
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    now = datetime.now(UTC)
    ca = DevCA.create(now=now - timedelta(days=1))
    ca.save(tmp / "ca")
    (tmp / "ca" / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    card = ca.issue(Person(), now=now)
    bus = await RabbitMqBus.connect(URL, queue_prefix=prefix)
    ports = [free_port() for _ in range(workers)]
    processes = [start_worker(tmp, prefix, i, port) for i, port in enumerate(ports)]
    feed = HttpFeed(f"http://127.0.0.1:{ports[0]}", TOKEN)
    emulator = CardEmulator(bus, card, Person(), SystemClock(), feed, facility_id=FACILITY)
    try:
        for queue, bindings in QUEUES.items():
            await bus.declare_queue(queue, bindings)
        await emulator.listen()
        await asyncio.sleep(2)  # let the workers connect: their start-up is not what is measured
        meter = CpuMeter([process.pid for process in processes])
        started = time.perf_counter()
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                await emulator.register(f"reg-bench-{i:06d}")

        watch = asyncio.create_task(_exited(processes))  # a worker that died would leave a 600 s wait
        try:
            driven = asyncio.gather(*(one(i) for i in range(n)))
            await _first_of(driven, watch)
            missing = await _first_of(emulator.wait_activated(within=600), watch)
        finally:
            watch.cancel()
        elapsed = time.perf_counter() - started
        if cpu is not None:
            cpu.update(meter.spent())
        assert not missing, f"{len(missing)} registrations not activated"
        return n / elapsed
    finally:
        await emulator.close()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        await bus.delete_topology()
        await bus.close()


async def _exited(processes: list[subprocess.Popen[bytes]]) -> None:
    while all(process.poll() is None for process in processes):  # noqa: ASYNC110 - a Popen has no awaitable exit
        await asyncio.sleep(0.2)
    codes = [process.poll() for process in processes]
    raise RuntimeError(f"a worker exited during the run (exit codes {codes}): see its output above")


async def _first_of(work: Awaitable[T], watch: asyncio.Task[None]) -> T:
    """`work`'s result, unless the watch fails first (its error, `work` cancelled)."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        watch.result()
    return task.result()


async def main(n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        e2e = await end_to_end(n, workers, Path(directory))
    print(f"end to end, {workers} workers: {e2e:8.1f} registrations/s ({n} registrations)")
    for window in (1, 256):
        bare = await floor(n * MESSAGES_PER_REGISTRATION, window) / MESSAGES_PER_REGISTRATION
        print(f"bare aio-pika, {window:3d} confirms in flight: {bare:8.1f} registrations/s", end="")
        print(f"; ratio {bare / e2e:.1f}x")


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.workers))
