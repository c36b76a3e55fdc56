"""Stopping background tasks and closing parts without swallowing the stopper's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` and wait until it has ended.

    The task's own CancelledError is the expected end and stays here; a cancellation of the caller
    while it waits goes on up. `with suppress(CancelledError): await task` swallowed both: a
    `close()` that was itself cancelled (a stop with a deadline, a shutdown cut short) returned as
    if it had finished, and the caller carried on past its own cancellation. `gather` with
    `return_exceptions=True` keeps the task's result out and raises only the caller's. Any other
    error the task ended with is raised, as `await task` did."""
    if task is None:
        return
    task.cancel()
    ended: list[object] = await asyncio.gather(task, return_exceptions=True)
    if isinstance(ended[0], BaseException) and not isinstance(ended[0], asyncio.CancelledError):
        raise ended[0]


async def close_all(*steps: Callable[[], Awaitable[object]]) -> None:
    """Run every step in order, each one even when a step before it failed or the caller was
    cancelled while it waited (a part left open can keep its threads, and so the process, alive;
    a broker connection stays open behind a worker that believes it stopped); then raise the
    first failure, a cancellation included, so a cancelled close still ends as cancelled.
    `contextlib.AsyncExitStack` raises the last failure instead, with the first only as its
    context: a cancellation followed by a part's error came out as that error."""
    first: BaseException | None = None
    for step in steps:
        try:
            await step()
        except BaseException as exc:
            if first is None:
                first = exc
    if first is not None:
        raise first
