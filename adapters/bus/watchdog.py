"""Brings back consumers that aio-pika's robust connection did not (aio-pika issues 231 and 626).

Every `interval` seconds each watched consumer is asked whether it is still alive (open channel,
consumer tag still registered). One that fails `misses` checks in a row is restored: its old
channel dropped, its queue declared again and the same handler subscribed anew. Two misses, not
one, so a restoration aio-pika is carrying out at that moment is not raced.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from orchestrator.tasks import cancel_and_wait

log = structlog.get_logger("honnin.bus")


class Watched(Protocol):
    name: str

    async def alive(self) -> bool: ...

    async def restore(self) -> None: ...


class ConsumerWatchdog:
    def __init__(self, interval: float = 5.0, misses: int = 2) -> None:
        self.interval = interval
        self.misses = misses
        self.restored = 0  # restorations so far; tests and metrics read it
        self._targets: dict[int, tuple[Watched, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, target: Watched) -> None:
        self._targets[id(target)] = (target, 0)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bus-watchdog")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._targets.clear()
        await cancel_and_wait(task)

    async def check(self) -> int:
        """One round over every consumer; returns how many were restored."""
        restored = 0
        for key, (target, missed) in list(self._targets.items()):
            missed = 0 if await _alive(target) else missed + 1
            if missed >= self.misses and await self._restore(target):
                restored, missed = restored + 1, 0
            if key in self._targets:
                self._targets[key] = (target, missed)
        return restored

    async def _restore(self, target: Watched) -> bool:
        try:
            await target.restore()
        except Exception as exc:  # the next round tries again
            log.warning("bus.consumer_restore_failed", queue=target.name, reason=type(exc).__name__)
            return False
        self.restored += 1
        log.warning("bus.consumer_restored", queue=target.name, restored=self.restored)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()


async def _alive(target: Watched) -> bool:
    """A check that fails (a channel that will not answer) is a miss, not a crash of the watchdog."""
    try:
        return await target.alive()
    except Exception:
        return False
