"""Registrations per second for the peer a user would pick instead of Honnin: a Celery 5.7 chain
of the same five steps over the same RabbitMQ, state in one SQLite file.

Each registration is one `chain` of five immutable tasks, started → card_read → confirmed →
signature_verified → activated, each a Celery message through one quorum queue (durable,
persistent messages, publisher confirms on every publish, the driver's and the workers'). Every
task, in the worker, is one SQLite transaction on the shared file (WAL, synchronous=FULL,
busy_timeout 10 s): BEGIN IMMEDIATE, read the row, check it is in the previous state, a
version-checked UPDATE (the first step an INSERT), COMMIT. The signature step does the RSA work
of one Honnin verification: the card's RSA-2048 PKCS#1 v1.5 SHA-256 signature over the 32-byte
challenge checked with the certificate's key, and the certificate's signature checked with the
development CA's key. Tasks ack late (after the commit and after the next step's publish is
confirmed); no result backend: the chain's state is the row.

Workers: W `celery worker` processes, `--pool=solo --concurrency=1` each (the default, and
Celery's best number here: about 128 against 110 for `--pool=prefork`, one worker with W
children), started before the clock and waited for until each says it is ready; gossip, mingle,
heartbeats, events and remote control off; prefetch multiplier 16 (CELERY_BENCH_PREFETCH; 4, 8,
16 and 32 measured within noise of each other). The driver, in this process, signs each
registration's challenge with the dev CA card's key as Honnin's card emulator does (inside the
timed window), sends its chain with at most `concurrency` (64) registrations in flight, and
polls SQLite every 50 ms until every row says `activated`. In flight is counted from that
poll, so a free slot is refilled within 50 ms.

    .venv/bin/python bench/celery_chain.py [--n 2000] [--workers 2] [--pool solo|prefork]

Needs the `bench` extra (`pip install -e '.[bench]'`). Deletes its queue and exchange, and the
native delayed-delivery queues Celery's workers declare when it was this run that made them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amqp.exceptions import NotFound
from celery import Celery, chain
from celery.signals import worker_ready
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from kombu import Connection, Exchange, Queue

URL = os.environ.get("HONNIN_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
STEPS = ("started", "card_read", "confirmed", "signature_verified", "activated")
PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_BENCH_PREFETCH", "16"))  # the workers' basic.qos
POLL_SECONDS = 0.05
DELAYED_LEVELS = 28  # kombu's native delayed delivery: celery_delayed_0 … celery_delayed_27
SCHEMA = "CREATE TABLE registrations(id TEXT PRIMARY KEY, state TEXT, version INTEGER, data BLOB)"
PKCS1V15 = padding.PKCS1v15()
SHA256 = hashes.SHA256()


def make_app(queue: str) -> Celery:
    """The Celery app the driver and every worker build alike: one quorum queue named `queue`."""
    app = Celery("honnin_bench", broker=URL, set_as_current=False)
    app.conf.update(
        task_queues=[
            Queue(
                queue,
                Exchange(queue, type="direct", durable=True),
                routing_key=queue,
                durable=True,
                queue_arguments={"x-queue-type": "quorum"},
            )
        ],
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_default_queue_type="quorum",
        task_default_delivery_mode="persistent",
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        worker_prefetch_multiplier=PREFETCH_MULTIPLIER,
        worker_detect_quorum_queues=True,  # per-consumer QoS: quorum queues refuse global QoS
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        worker_enable_remote_control=False,  # no pidbox queue per worker
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
    )
    return app


# --- the worker side: `celery -A bench.celery_chain worker`, configured by the environment ---

app = make_app(os.environ.get("CELERY_BENCH_QUEUE", "celerybench"))
_db: sqlite3.Connection | None = None
_db_pid = 0
_ca_key: rsa.RSAPublicKey | None = None


def open_db(path: Path | str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)  # autocommit: BEGIN is ours
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def db() -> sqlite3.Connection:
    """This process's connection (opened after a prefork child is forked, never inherited)."""
    global _db, _db_pid
    if _db is None or _db_pid != os.getpid():
        _db, _db_pid = open_db(os.environ["CELERY_BENCH_DB"]), os.getpid()
    return _db


def ca_key() -> rsa.RSAPublicKey:
    """The issuing CA's public key, loaded once per process as Honnin loads its trust anchors."""
    global _ca_key
    if _ca_key is None:
        key = x509.load_der_x509_certificate(Path(os.environ["CELERY_BENCH_CA"]).read_bytes()).public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        _ca_key = key
    return _ca_key


def transition(registration: str, step: int, changes: dict[str, str]) -> dict[str, str]:
    """One step in one transaction: the row must be in the step before (none for the first);
    the UPDATE only lands on the version read. A step already applied (a redelivery) is a no-op.
    Returns the row's data after the step."""
    connection = db()
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute(
            "SELECT state, version, data FROM registrations WHERE id = ?", (registration,)
        ).fetchone()
        if step == 0:
            if row is not None:
                connection.execute("ROLLBACK")
                return dict(json.loads(row[2]))
            connection.execute(
                "INSERT INTO registrations(id, state, version, data) VALUES (?, ?, 1, ?)",
                (registration, STEPS[0], json.dumps(changes).encode()),
            )
            connection.execute("COMMIT")
            return changes
        if row is None:
            raise RuntimeError(f"{registration}: no row for {STEPS[step]}")
        state, version, data = row[0], row[1], dict(json.loads(row[2]))
        if state == STEPS[step]:
            connection.execute("ROLLBACK")
            return data
        if state != STEPS[step - 1]:
            raise RuntimeError(f"{registration}: {state}, not {STEPS[step - 1]}, before {STEPS[step]}")
        data |= changes
        updated = connection.execute(
            "UPDATE registrations SET state = ?, version = ?, data = ? WHERE id = ? AND version = ?",
            (STEPS[step], version + 1, json.dumps(data).encode(), registration, version),
        )
        if updated.rowcount != 1:
            raise RuntimeError(f"{registration}: version {version} changed under {STEPS[step]}")
        connection.execute("COMMIT")
        return data
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def verify(data: dict[str, str], signature: bytes) -> None:
    """One Honnin verification's RSA work; raises InvalidSignature when either check fails."""
    certificate = x509.load_der_x509_certificate(base64.b64decode(data["certificate"]))
    algorithm = certificate.signature_hash_algorithm
    assert algorithm is not None
    ca_key().verify(certificate.signature, certificate.tbs_certificate_bytes, PKCS1V15, algorithm)
    card_key = certificate.public_key()
    assert isinstance(card_key, rsa.RSAPublicKey)
    card_key.verify(signature, base64.b64decode(data["challenge"]), PKCS1V15, SHA256)


@app.task(name="bench.started")
def started(registration: str) -> None:
    transition(registration, 0, {})


@app.task(name="bench.card_read")
def card_read(registration: str, certificate: str) -> None:
    transition(registration, 1, {"certificate": certificate})


@app.task(name="bench.confirmed")
def confirmed(registration: str, challenge: str) -> None:
    transition(registration, 2, {"challenge": challenge})


@app.task(name="bench.signature_verified")
def signature_verified(registration: str, signature: str) -> None:
    connection = db()
    row = connection.execute("SELECT data FROM registrations WHERE id = ?", (registration,)).fetchone()
    verify(dict(json.loads(row[0])), base64.b64decode(signature))  # before the transaction, as a verifier
    transition(registration, 3, {"signature": signature})


@app.task(name="bench.activated")
def activated(registration: str) -> None:
    transition(registration, 4, {})


@worker_ready.connect
def _ready(sender: Any = None, **_: Any) -> None:
    ready = os.environ.get("CELERY_BENCH_READY")
    if ready:
        Path(ready, f"{os.getpid()}").touch()


# --- the driver ---


def start_workers(
    tmp: Path, queue: str, workers: int, pool: str, log: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Start the workers into `processes` (the caller's list: those started before a failure are
    still stopped)."""
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "HONNIN_RABBITMQ_URL": URL,
        "CELERY_BENCH_QUEUE": queue,
        "CELERY_BENCH_DB": str(tmp / "state.db"),
        "CELERY_BENCH_CA": str(tmp / "root.der"),
        "CELERY_BENCH_READY": str(tmp / "ready"),
    }
    common = ["-m", "celery", "-A", "bench.celery_chain", "worker", "--loglevel=WARNING"]
    common += ["--without-gossip", "--without-mingle", "--without-heartbeat", f"--queues={queue}"]
    if pool == "solo":
        commands = [
            [*common, "--pool=solo", "--concurrency=1", f"--hostname=w{i}.{queue}@%h"] for i in range(workers)
        ]
    else:  # one prefork worker, `workers` children
        commands = [[*common, "--pool=prefork", f"--concurrency={workers}", f"--hostname=w.{queue}@%h"]]
    with log.open("ab") as out:
        for command in commands:
            started = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=out, stderr=out)
            processes.append(started)


def wait_ready(tmp: Path, processes: list[subprocess.Popen[bytes]], log: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while len(list((tmp / "ready").iterdir())) < len(processes):
        if any(process.poll() is not None for process in processes):
            raise RuntimeError(f"a celery worker exited at start-up:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"celery workers not ready within {within:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def delayed_delivery_exists() -> bool:
    """Whether kombu's delayed-delivery queues were on the broker before this run."""
    with Connection(URL) as connection:
        try:
            connection.channel().queue_declare(f"celery_delayed_{DELAYED_LEVELS - 1}", passive=True)
        except NotFound:  # nobody has declared them; anything else is an error, not an answer
            return False
        return True


def delete_topology(queue: str, delayed_delivery: bool) -> None:
    with Connection(URL) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
        if delayed_delivery:
            for level in range(DELAYED_LEVELS):
                channel.queue_delete(f"celery_delayed_{level}")
                channel.exchange_delete(f"celery_delayed_{level}")
            channel.exchange_delete("celery_delayed_delivery")


def activated_count(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT count(*) FROM registrations WHERE state = 'activated'").fetchone()
    return int(row[0])


def end_to_end(
    n: int,
    workers: int,
    tmp: Path,
    concurrency: int = 64,
    pool: str = "solo",
    cpu: dict[str, float] | None = None,
) -> float:
    """Registrations per second: n chains, at most `concurrency` in flight, until all activated.
    `cpu`, given, gets the CPU seconds of the timed part (broker, workers, driver: this process).
    Blocking; from asyncio, `await asyncio.to_thread(end_to_end, ...)`."""
    from adapters.ca_revocation.devca import DevCA, Person
    from bench.e2e_rabbitmq import CpuMeter

    queue = f"celerybench.{uuid.uuid4().hex[:8]}"
    ca = DevCA.create()
    card = ca.issue(Person())
    certificate = base64.b64encode(card.der).decode()
    (tmp / "root.der").write_bytes(ca.der)
    (tmp / "ready").mkdir()
    log = tmp / "workers.log"
    state = open_db(tmp / "state.db")  # the file and table exist before any worker opens it
    processes: list[subprocess.Popen[bytes]] = []
    client: Celery | None = None
    delayed_before = True  # until known: never delete queues that may be another run's
    try:
        state.execute(SCHEMA)
        client = sender = make_app(queue)
        delayed_before = delayed_delivery_exists()
        start_workers(tmp, queue, workers, pool, log, processes)
        wait_ready(tmp, processes, log)  # start-up is not what is measured

        def send(i: int) -> None:
            registration = f"reg-bench-{i:06d}"
            challenge = os.urandom(32)
            signature = base64.b64encode(card.sign(challenge)).decode()  # the phone, as the emulator
            chain(
                sender.signature("bench.started", (registration,), immutable=True),
                sender.signature("bench.card_read", (registration, certificate), immutable=True),
                sender.signature(
                    "bench.confirmed", (registration, base64.b64encode(challenge).decode()), immutable=True
                ),
                sender.signature("bench.signature_verified", (registration, signature), immutable=True),
                sender.signature("bench.activated", (registration,), immutable=True),
                app=sender,
            ).apply_async()

        deadline = time.monotonic() + max(120.0, n / 5)
        meter = CpuMeter([process.pid for process in processes])
        started_at = time.perf_counter()
        sent = done = 0
        while done < n:
            while sent < n and sent - done < concurrency:
                send(sent)
                sent += 1
            time.sleep(POLL_SECONDS)
            done = activated_count(state)
            if time.monotonic() > deadline:
                break
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a celery worker exited:\n{log.read_text()[-3000:]}")
        elapsed = time.perf_counter() - started_at
        if cpu is not None:
            cpu.update(meter.spent())
        assert done == n, f"{n - done} of {n} registrations not activated:\n{log.read_text()[-3000:]}"
        five = state.execute("SELECT count(*) FROM registrations WHERE version = 5").fetchone()[0]
        assert five == n, f"{n - five} activated rows not at version 5"  # one write per step
        return n / elapsed
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        state.close()
        if client is not None:
            client.close()
        try:
            delete_topology(queue, delayed_delivery=not delayed_before)
        except Exception as exc:  # a clean-up failure must not hide the run's own error
            print(f"celery chain: could not delete its queues on the broker: {exc!r}", file=sys.stderr)


def main(n: int, workers: int, concurrency: int, pool: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        rate = end_to_end(n, workers, Path(directory), concurrency, pool)
    print(f"celery chain, {workers} workers: {rate:.1f} registrations/s ({n})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pool", choices=("solo", "prefork"), default="solo")
    args = parser.parse_args()
    main(args.n, args.workers, args.concurrency, args.pool)
