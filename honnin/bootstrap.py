"""The one place that wires real or embedded adapters from settings."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters.bus.inprocess import InProcessBus
from adapters.ca_revocation.pipeline import inline
from adapters.ca_revocation.processes import ProcessRunner
from adapters.ca_revocation.revocation import RevocationSource
from adapters.ca_revocation.worker import Verifier
from adapters.card_bridge.links import Links, link_key
from adapters.card_bridge.xid_links import EmailLinks, email_link_key
from adapters.clock import SystemClock
from adapters.mail.worker import MailWorker
from adapters.metrics.prometheus import PrometheusMetrics
from adapters.store.codec import Sealer, decode_key, new_key
from adapters.webhooks.addresses import AddressPolicy
from adapters.webhooks.sender import HttpWebhookSender
from adapters.webhooks.signing import new_secret
from honnin import verification
from honnin.mail import make_mailer
from honnin.settings import Settings
from orchestrator.delivery import DeliveryWorker, RetrySchedule
from orchestrator.errors import ConfigurationError
from orchestrator.observations import Standing, standing
from orchestrator.operations import LocalWorker, Operations
from orchestrator.outbound import FacilityOutbound
from orchestrator.ports import Bus, Clock, Mailer, Store, WebhookSender
from orchestrator.relay import OutboxRelay
from orchestrator.runtime import Runtime
from orchestrator.service import Orchestrator
from orchestrator.sweeper import DeadlineSweeper
from orchestrator.tasks import close_all
from orchestrator.topology import FACILITY_QUEUE, MAIL_QUEUE, VERIFIER_QUEUE, queues


@dataclass
class App:
    settings: Settings
    store: Store
    bus: Bus
    clock: Clock
    orchestrator: Orchestrator
    runtime: Runtime
    verifier: Verifier
    revocation: RevocationSource | None
    links: Links
    mailer: Mailer
    email_links: EmailLinks  # xID: the confirmation links the mail worker writes
    outbound: FacilityOutbound
    delivery: DeliveryWorker
    sender: WebhookSender
    webhook_policy: AddressPolicy
    metrics: PrometheusMetrics
    feed_key: bytes = b""
    console_key: bytes = b""
    cpu: ProcessRunner | None = None  # the verifier's process pool, when it has one
    operations: Operations = field(init=False)  # the operator service (`honnin ops`, /ops/v1)

    async def standing(self) -> Standing:
        """What a scrape of /metrics reads from the store."""
        return await standing(self.store, self.clock.now())

    async def close(self) -> None:
        """The workers, then every part in turn, each one closed even when one before it failed or
        this close was cancelled again while it waited (a part's stop now lets that cancellation
        go on up, `orchestrator.tasks`): a store left open keeps its connection threads, and so
        the process, alive. The first failure is raised once all are closed."""
        await close_all(
            self.runtime.stop,
            self.mailer.close,
            self.bus.close,
            self.runtime.give_back,  # after the bus: no commit is running any more
            self.sender.close,
            *([self.revocation.close] if self.revocation is not None else []),
            *([self.cpu.close] if self.cpu is not None else []),
            self.store.close,  # last: everything above may still write
        )


def data_key(settings: Settings) -> bytes:
    """The configured key; on the embedded default, a key file made once beside the database."""
    if settings.data_key is not None:
        return decode_key(settings.data_key.get_secret_value())
    if settings.store != "sqlite":
        raise ConfigurationError("HONNIN_DATA_KEY is required with the MongoDB store")
    path = settings.data_dir / "data.key"
    if not path.exists():
        _write_private(path, new_key())
    return decode_key(path.read_text().strip())


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


async def open_store(settings: Settings, key: bytes) -> Store:
    sealer = Sealer(key)
    if settings.store == "mongodb":
        from adapters.store.mongodb import MongoStore

        if settings.mongodb_url is None:
            raise ConfigurationError("HONNIN_STORE=mongodb needs HONNIN_MONGODB_URL")
        return await MongoStore.open(
            settings.mongodb_url.get_secret_value(), settings.mongodb_database, sealer
        )
    from adapters.store.sqlite import SqliteStore

    return await SqliteStore.open(
        settings.sqlite_file,
        sealer,
        busy_timeout_ms=round(settings.sqlite_busy_timeout_seconds * 1000),
        synchronous=settings.sqlite_synchronous,
    )


async def make_bus(settings: Settings, store: Store) -> Bus:
    """RabbitMQ keeps its dead letters in `<queue>.dead`; the in-process bus in the store."""
    if settings.bus == "rabbitmq":
        from adapters.bus.rabbitmq import RabbitMqBus

        return await RabbitMqBus.connect(
            settings.rabbitmq_url.get_secret_value(),
            exchange=settings.rabbitmq_exchange,
            queue_prefix=settings.rabbitmq_queue_prefix,
            prefetch=settings.rabbitmq_prefetch,
            delivery_limit=settings.delivery_limit,
            redelivery_base=settings.redelivery_base_seconds,
            redelivery_cap=settings.redelivery_cap_seconds,
            redelivery_window=settings.redelivery_window_seconds,
        )
    return InProcessBus(
        delivery_limit=settings.delivery_limit,
        redelivery_delay=settings.redelivery_base_seconds,
        redelivery_cap=settings.redelivery_cap_seconds,
        redelivery_window=settings.redelivery_window_seconds,
        dead_letters_to=store,
        concurrency=settings.inprocess_concurrency,
    )


def feed_key(data_key: bytes) -> bytes:
    """A key of its own for feed cursors, derived from the data key like the links' key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"honnin feed cursors").derive(data_key)


def console_key(data_key: bytes) -> bytes:
    """The console's sessions and CSRF tokens are signed with a key of their own."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"honnin console sessions").derive(
        data_key
    )


async def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bus: Bus | None = None,
    sender: WebhookSender | None = None,
) -> App:
    clock = clock or SystemClock()
    key = data_key(settings)
    store = await open_store(settings, key)
    try:
        links = Links(
            link_key(key), settings.public_url, clock, ttl=timedelta(seconds=settings.link_ttl_seconds)
        )
        policy = AddressPolicy(settings.webhook_allow_http, settings.webhook_allow_private)
        sender = sender or HttpWebhookSender(
            policy,
            connect_timeout=settings.webhook_connect_timeout_seconds,
            read_timeout=settings.webhook_read_timeout_seconds,
        )
        app = _wire(
            settings, store, bus or await make_bus(settings, store), clock, links, key, sender, policy
        )
        app.feed_key = feed_key(key)
        app.console_key = console_key(key)
        app.operations = Operations(
            store,
            app.bus,
            clock,
            app.orchestrator,
            local=_local(app),
            rate=settings.replay_rate,
            queues=list(app.runtime.queues),
        )
        return app
    except BaseException:
        await store.close()  # a half-wired worker must still exit: the store's thread would not
        raise


async def wait_idle(app: App) -> None:
    """Every consumed queue idle and the outbox empty, at the same moment (a message that keeps
    failing holds this until its redelivery window has passed and it is dead-lettered)."""
    join = getattr(app.bus, "join", None)
    idle = getattr(app.bus, "idle", lambda: True)
    while True:
        if join is not None:
            with contextlib.suppress(TimeoutError):
                await join(within=60)
        if await app.store.outbox_backlog() == 0 and idle():
            return
        await asyncio.sleep(0.02)


class _EmbeddedWorker:
    """The embedded bus forgets what it holds when the process ends: a replayed dead letter is
    served here (a worker started if this process runs none) until handled."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def ready(self) -> None:
        if not self._app.runtime.running:
            await self._app.runtime.start()

    async def settle(self) -> None:
        await wait_idle(self._app)


def _local(app: App) -> LocalWorker | None:
    """None with a broker: it keeps a replayed message, and running workers take it."""
    return None if app.settings.bus == "rabbitmq" else _EmbeddedWorker(app)


def _delivery(
    settings: Settings,
    store: Store,
    clock: Clock,
    orchestrator: Orchestrator,
    sender: WebhookSender,
    metrics: PrometheusMetrics,
) -> DeliveryWorker:
    schedule = RetrySchedule(
        base=timedelta(seconds=settings.webhook_retry_base_seconds),
        cap=timedelta(seconds=settings.webhook_retry_cap_seconds),
        window=timedelta(seconds=settings.webhook_retry_window_seconds),
    )
    timeouts = settings.webhook_connect_timeout_seconds + settings.webhook_read_timeout_seconds
    return DeliveryWorker(
        store,
        sender,
        clock,
        worker=settings.worker_id,
        schedule=schedule,
        wakeup=orchestrator.facility_heard,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_concurrency_per_endpoint,
        lease_seconds=timeouts + 30,
        poll_seconds=settings.webhook_poll_seconds,
        metrics=metrics,
    )


def _wire(
    settings: Settings,
    store: Store,
    bus: Bus,
    clock: Clock,
    links: Links,
    key: bytes,
    sender: WebhookSender,
    policy: AddressPolicy,
) -> App:
    metrics = PrometheusMetrics(folder=settings.metrics_dir, worker=settings.worker_id)
    orchestrator = Orchestrator(
        store,
        clock,
        settings.profiles(),
        early_event_wait=settings.early_event_wait_seconds if bus.deliveries_at_once > 1 else 0.0,
        facility_queue=settings.facility_queue,
        metrics=metrics,
    )
    outbound = FacilityOutbound(
        store, clock, orchestrator.facility_heard, new_secret, feed_poll_seconds=settings.feed_poll_seconds
    )
    delivery = _delivery(settings, store, clock, orchestrator, sender, metrics)
    relay = OutboxRelay(
        store,
        bus,
        clock,
        worker=settings.worker_id,
        idle_seconds=settings.relay_idle_seconds,
        retry_seconds=settings.relay_retry_seconds,
    )
    sweeper = DeadlineSweeper(
        orchestrator,
        store,
        clock,
        retention=settings.retention,
        interval_seconds=settings.sweep_interval_seconds,
    )
    revocation = verification.revocation_source(settings, clock)
    cpu = verification.cpu_runner(settings)
    pipelines = verification.pipelines(settings, revocation, clock, run=cpu or inline)
    verifier = Verifier(store, bus, pipelines["facility"], clock, by_profile=pipelines)
    consumers = {VERIFIER_QUEUE: verifier.on_delivery} if settings.verifier_enabled else {}
    mailer = make_mailer(settings, clock)
    email_links = EmailLinks(email_link_key(key), settings.public_url)
    mail_worker = MailWorker(
        store, bus, mailer, clock, link_for=email_links.url_for, service=settings.xid_service_name
    )
    if settings.mail_enabled:
        consumers[MAIL_QUEUE] = mail_worker.on_delivery
    runtime = Runtime(
        orchestrator,
        bus,
        relay,
        sweeper,
        consumers=consumers,
        delivery=delivery if settings.webhook_delivery_enabled else None,
        queues=queues(facility_queue=settings.facility_queue),
        bounds={FACILITY_QUEUE: settings.facility_queue_max_length},
        metrics=metrics,
    )
    return App(
        settings,
        store,
        bus,
        clock,
        orchestrator,
        runtime,
        verifier,
        revocation,
        links,
        mailer,
        email_links,
        outbound,
        delivery,
        sender,
        policy,
        metrics,
        cpu=cpu,
    )
