"""The one place that wires real or embedded adapters from settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from adapters.bus.inprocess import InProcessBus
from adapters.ca_revocation.revocation import RevocationSource
from adapters.ca_revocation.worker import Verifier
from adapters.card_bridge.links import Links, link_key
from adapters.clock import SystemClock
from adapters.store.codec import Sealer, decode_key, new_key
from honnin import verification
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from orchestrator.ports import Bus, Clock, Store
from orchestrator.relay import OutboxRelay
from orchestrator.runtime import Runtime
from orchestrator.service import Orchestrator
from orchestrator.sweeper import DeadlineSweeper
from orchestrator.topology import VERIFIER_QUEUE


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

    async def close(self) -> None:
        await self.runtime.stop()
        await self.bus.close()
        if self.revocation is not None:
            await self.revocation.close()
        await self.store.close()


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

    return await SqliteStore.open(settings.sqlite_file, sealer)


async def make_bus(settings: Settings) -> Bus:
    if settings.bus == "rabbitmq":
        from adapters.bus.rabbitmq import RabbitMqBus

        return await RabbitMqBus.connect(
            settings.rabbitmq_url.get_secret_value(),
            exchange=settings.rabbitmq_exchange,
            queue_prefix=settings.rabbitmq_queue_prefix,
            prefetch=settings.rabbitmq_prefetch,
            delivery_limit=settings.delivery_limit,
        )
    return InProcessBus(delivery_limit=settings.delivery_limit)


async def bootstrap(settings: Settings, *, clock: Clock | None = None, bus: Bus | None = None) -> App:
    clock = clock or SystemClock()
    key = data_key(settings)
    store = await open_store(settings, key)
    try:
        links = Links(
            link_key(key), settings.public_url, clock, ttl=timedelta(seconds=settings.link_ttl_seconds)
        )
        return _wire(settings, store, bus or await make_bus(settings), clock, links)
    except BaseException:
        await store.close()  # a half-wired worker must still exit: the store's thread would not
        raise


def _wire(settings: Settings, store: Store, bus: Bus, clock: Clock, links: Links) -> App:
    orchestrator = Orchestrator(store, clock, settings.profiles())
    relay = OutboxRelay(
        store, bus, clock, worker=settings.worker_id, idle_seconds=settings.relay_idle_seconds
    )
    sweeper = DeadlineSweeper(
        orchestrator,
        store,
        clock,
        retention=settings.retention,
        interval_seconds=settings.sweep_interval_seconds,
    )
    revocation = verification.revocation_source(settings, clock)
    verifier = Verifier(store, bus, verification.pipeline(settings, revocation, clock), clock)
    consumers = {VERIFIER_QUEUE: verifier.on_delivery} if settings.verifier_enabled else {}
    runtime = Runtime(orchestrator, bus, relay, sweeper, consumers=consumers)
    return App(settings, store, bus, clock, orchestrator, runtime, verifier, revocation, links)
