"""How long both buses keep redelivering a message whose handler keeps failing: exponential backoff
from when a consumer first saw it, for a window (10 minutes by default) that rides out a store
outage, a broker failover or a MongoDB election; then the message is dead-lettered.

The first-seen time travels with the message (a header on RabbitMQ), so a redelivery to another
worker, or after a restart, keeps counting from the first delivery. RabbitMQ cannot delay each
copy by its own time without the shorter ones waiting behind the longer (a queue expires only its
head), so there a delay is rounded down to one of a few fixed tiers, each a queue of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

TIERS: tuple[float, ...] = (0.1, 1.0, 10.0, 60.0, 300.0)
"""RabbitMQ's delay queues, seconds: `<queue>.retry.<tier>` with that x-message-ttl."""


@dataclass(frozen=True)
class Redelivery:
    """Delivery n + 1 waits min(cap, base × 2ⁿ⁻¹) after delivery n fails, while the window lasts.

    `limit` (HONNIN_DELIVERY_LIMIT, deprecated) also caps the deliveries when set."""

    window: float = 600.0
    base: float = 0.05
    cap: float = 300.0
    limit: int | None = None

    def delay(self, attempt: int, first_seen: float, now: float) -> float | None:
        """Seconds before the next delivery after `attempt` failed, or None: dead-letter it now."""
        if self.limit is not None and attempt >= self.limit:
            return None
        left = first_seen + self.window - now
        if left <= 0:
            return None
        backoff: float = self.base * 2 ** max(attempt - 1, 0)
        return min(self.cap, backoff, left)

    def gave_up(self, attempt: int, reason: str) -> str:
        """The dead letter's reason: why redelivery stopped, and the last failure."""
        if self.limit is not None and attempt >= self.limit:
            return f"delivery limit {self.limit} reached; last: {reason}"
        return f"redelivery window of {self.window:g}s passed after {attempt} deliveries; last: {reason}"


def tier(delay: float, tiers: tuple[float, ...] = TIERS) -> float:
    """The longest tier not above `delay` (the shortest for anything shorter): a copy never waits
    behind a longer one, and never much longer than it asked for until the tiers grow apart."""
    fitting = [t for t in tiers if t <= delay]
    return max(fitting) if fitting else min(tiers)


def tier_label(seconds: float) -> str:
    """`100ms`, `1s`, `300s`: the suffix of a delay queue's name."""
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"
