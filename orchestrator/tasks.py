"""Stopping a background task without swallowing the stopper's own cancellation."""

from __future__ import annotations

import asyncio
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
