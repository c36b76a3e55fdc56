"""One orchestrator worker: the consumer, the outbox relay, the deadline sweeper and the webhook
delivery worker together."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from orchestrator.delivery import DeliveryWorker
from orchestrator.errors import failure_reason
from orchestrator.observations import NoMetrics, timed
from orchestrator.ports import Bus, Delivery, Handler, Metrics
from orchestrator.relay import OutboxRelay
from orchestrator.service import Orchestrator
from orchestrator.sweeper import DeadlineSweeper
from orchestrator.topology import ORCHESTRATOR_QUEUE, QUEUES

log = structlog.get_logger("honnin.runtime")


class Runtime:
    def __init__(
        self,
        orchestrator: Orchestrator,
        bus: Bus,
        relay: OutboxRelay,
        sweeper: DeadlineSweeper,
        consumers: Mapping[str, Handler] | None = None,
        *,
        delivery: DeliveryWorker | None = None,
        queues: Mapping[str, tuple[str, ...]] = QUEUES,
        bounds: Mapping[str, int] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.orchestrator = orchestrator
        self.bus = bus
        self.relay = relay
        self.sweeper = sweeper
        self.delivery = delivery
        self.consumers = dict(consumers or {})  # other queues this worker serves, e.g. the verifier
        self.queues = dict(queues)
        self.bounds = dict(bounds or {})  # queues for outside consumers: bounded, dropping the oldest
        self.metrics: Metrics = metrics or NoMetrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        for queue, bindings in self.queues.items():
            await self.bus.declare_queue(queue, bindings, max_length=self.bounds.get(queue))
        await self.bus.consume(
            ORCHESTRATOR_QUEUE, self._timed(ORCHESTRATOR_QUEUE, self.orchestrator.on_delivery)
        )
        for queue, handler in self.consumers.items():
            await self.bus.consume(queue, self._timed(queue, handler))
        self.orchestrator.direct = self.relay  # its commits' messages go out without a claim
        self._tasks = [
            asyncio.create_task(self.relay.run(self.orchestrator.committed), name="outbox-relay"),
            asyncio.create_task(self.sweeper.run(), name="deadline-sweeper"),
        ]
        if self.delivery is not None:
            self._tasks.append(asyncio.create_task(self.delivery.run(), name="webhook-delivery"))
        log.info("worker.started", queues=[ORCHESTRATOR_QUEUE, *self.consumers])

    def _timed(self, queue: str, handler: Handler) -> Handler:
        """Every delivery's handler time and ending, by queue (the latency histograms)."""
        metrics = self.metrics

        async def handle(delivery: Delivery) -> None:
            async with timed(metrics, queue, delivery.attempt):
                await handler(delivery)

        return handle

    async def stop(self) -> None:
        if not self._tasks:
            return
        self.orchestrator.direct = None  # later commits write their messages free, for any relay
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, Exception):
                log.error("worker.task_failed", task=task.get_name(), error=failure_reason(result))
        self._tasks = []
        self._stopped = True
        await self.relay.release()  # what it held and did not send: another worker takes it now
        log.info("worker.stopped")

    async def give_back(self) -> None:
        """Once the bus has closed and no handler runs: the leases a commit still running at the
        stop took after the release above (a MongoDB commit awaits several times)."""
        if self._stopped:
            await self.relay.release()

    async def wait(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; a background task that dies takes the worker down with
        its error instead of leaving a consumer that no longer relays or sweeps."""
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
