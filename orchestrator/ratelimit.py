"""A token bucket: replaying many registrations must not flood the verifier or the revocation
source that has just come back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

_EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `take` waits for one.

    `monotonic` and `sleep` are injectable so a test can count the waits instead of timing them.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(burst)
        self._at = monotonic()
        self.waits = 0  # how many times `take` had to wait (tests and progress reports read it)

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now

    async def take(self) -> None:
        self._refill()
        if self._tokens < 1 - _EPSILON:
            self.waits += 1
            while self._tokens < 1 - _EPSILON:  # a float's rounding must not sleep for nothing forever
                await self._sleep((1 - self._tokens) / self.rate)
                self._refill()
        self._tokens = max(0.0, self._tokens - 1)
