"""A worker as `honnin run` builds it, on files in a temporary folder and a settable clock."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from adapters.bus.inprocess import InProcessBus
from adapters.clock import FakeClock
from honnin.bootstrap import App, bootstrap
from honnin.settings import Settings
from orchestrator.ports import BusMessage
from orchestrator.topology import FACILITY_QUEUE, VERIFIER_QUEUE
from schemas.events import Envelope

KEY = base64.b64encode(bytes(range(32))).decode()
OUTBOUND_QUEUES = (VERIFIER_QUEUE, FACILITY_QUEUE)  # the facility queue only with facility_queue=True
FACILITY = "facility-1"  # tests.factory's registrations belong to it
_feed_read: dict[Path, int] = {}  # per store file: how far `heard` has read the feed


def settings(data_dir: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "data_key": KEY,
        "worker_id": "test-worker",
        "sweep_interval_seconds": 0.02,
        "relay_idle_seconds": 0.02,
        "verification_retry_limit": 2,
        "verifier_enabled": False,  # these tests play the verifier themselves
        "verifier_processes": 0,  # in process, unless a test asks for the pool (test_verifier_processes)
        "accept_test_certificates": True,  # the development CA issues test-environment certificates
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


async def start(data_dir: Path, clock: FakeClock, bus: InProcessBus | None = None, **changes: object) -> App:
    chosen = settings(data_dir, **changes)
    bus = bus or InProcessBus(delivery_limit=chosen.delivery_limit, redelivery_delay=0.01)
    app = await bootstrap(chosen, clock=clock, bus=bus)
    await app.runtime.start()
    return app


async def publish(app: App, event: Envelope) -> None:
    await app.bus.publish(BusMessage(event.type, event.model_dump_json().encode(), str(event.event_id)))


async def settle(app: App) -> None:
    """Every inbound message handled and every outbox row published."""
    bus = app.bus
    assert isinstance(bus, InProcessBus)
    async with asyncio.timeout(10):
        while True:
            await bus.join()
            if await app.store.outbox_backlog() == 0 and bus.idle():
                return
            await asyncio.sleep(0.01)


async def published(app: App) -> list[BusMessage]:
    """What the relay published, off every outbound queue (nobody consumes them here)."""
    bus = app.bus
    assert isinstance(bus, InProcessBus)
    taken: list[BusMessage] = []
    for queue in OUTBOUND_QUEUES:
        if queue in bus.queues():
            taken += await bus.drain(queue)
    return taken


async def heard(app: App, facility: str = FACILITY) -> list[BusMessage]:
    """What the facility's feed gained since the last look (per store file, so across restarts)."""
    path = app.settings.sqlite_file
    events = await app.store.feed(facility, _feed_read.get(path, 0), 10_000)
    if events:
        _feed_read[path] = events[-1].seq
    return [BusMessage(e.event_type, e.body, e.event_id) for e in events]


async def outbound(app: App) -> list[BusMessage]:
    """Everything the orchestrator sent out: the bus's messages and the facility's feed events."""
    return await published(app) + await heard(app)
