"""A wake-up for many waiters at once: feed long polls and the delivery worker hear a commit."""

from __future__ import annotations

import asyncio


class Wakeup:
    """Take `ticket()` before looking at the store, then `wait(ticket, …)`: a commit landing in
    between has already set that ticket, so it is never missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    @staticmethod
    async def wait(ticket: asyncio.Event, seconds: float) -> bool:
        """True when woken, False when `seconds` passed first."""
        try:
            async with asyncio.timeout(seconds):
                await ticket.wait()
        except TimeoutError:
            return False
        return True
