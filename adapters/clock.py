"""Clocks: the system's, and a settable one beside it for tests and replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """Time moves only when told; `history` records every reading."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        self.history: list[datetime] = []

    def now(self) -> datetime:
        self.history.append(self._now)
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
