"""CPU-bound verification in worker processes, so one orchestrator worker uses every core.

A `ProcessRunner` stands where `pipeline.inline` does (the `CpuRunner` protocol): the fast path's
`check_card` gets bytes and a `TrustAnchors` (which pickles as its DER) and returns a plain
dataclass, so it crosses the process boundary whole. Processes are spawned, not forked: a fork of
an event loop with SQLite and broker threads would inherit their locks mid-use.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def _ready() -> int:
    """A worker's first task: its imports are done before the first verification needs it."""
    return os.getpid()


class ProcessRunner:
    """A pool of `processes` spawned workers; `close` waits for them to exit."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a process pool needs at least one process")
        self.processes = processes
        self._pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn")
        )

    async def __call__(self, function: Callable[..., T], /, *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def warm(self) -> set[int]:
        """Start every process now (start-up, not the first person, pays for the imports)."""
        return set(await asyncio.gather(*(self(_ready) for _ in range(self.processes))))

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
