"""The console's charts: the last 24 hours of history in hourly buckets, as geometry for inline SVG.

One chart counts transitions into each state, the other refusals and verification decisions by code.
Only numbers and labels leave here; the template draws them (and escapes every label).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from orchestrator.ports import HistoryCount

JST = timezone(timedelta(hours=9), "JST")
HOURS = 24
WIDTH, HEIGHT = 1040, 230
LEFT, RIGHT, TOP, BOTTOM = 44, 250, 14, 34
PALETTE = ("#1d4f91", "#c0392b", "#27ae60", "#e67e22", "#8e44ad", "#16a085", "#7f8c8d", "#d35400")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    hour: str  # JST, for the tooltip
    count: int


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    points: list[Point]
    total: int

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    plot: tuple[int, int, int, int] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)
    empty: bool = field(default=False)


def window(now: datetime) -> tuple[datetime, datetime]:
    """[since, until): the 24 whole hours that end with the current one."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(hours=HOURS - 1), hour + timedelta(hours=1)


def by_state(counts: Sequence[HistoryCount]) -> dict[str, dict[datetime, int]]:
    """Entries that changed a registration's state, by the state they led to."""
    found: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        if c.outcome == "applied" and c.from_state != c.to_state:
            found[c.to_state][c.hour] += c.count
    return found


def by_code(counts: Sequence[HistoryCount]) -> dict[str, dict[datetime, int]]:
    """Refusals and verification decisions, by their code."""
    found: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        if c.code:
            found[c.code][c.hour] += c.count
    return found


def chart(buckets: dict[str, dict[datetime, int]], since: datetime) -> Chart:
    hours = [since + timedelta(hours=i) for i in range(HOURS)]
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    peak = max([n for per_hour in buckets.values() for n in per_hour.values()] + [1])
    ceiling = _nice(peak)

    def x(i: int) -> float:
        return left + (right - left) * i / (HOURS - 1)

    def y(n: int) -> float:
        return bottom - (bottom - top) * n / ceiling

    ranked = sorted(buckets.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    series = [
        Series(
            name,
            PALETTE[n % len(PALETTE)],
            [
                Point(
                    x(i), y(per_hour.get(h, 0)), h.astimezone(JST).strftime("%m/%d %H:00"), per_hour.get(h, 0)
                )
                for i, h in enumerate(hours)
            ],
            sum(per_hour.values()),
        )
        for n, (name, per_hour) in enumerate(ranked)
    ]
    x_ticks = [Tick(x(i), hours[i].astimezone(JST).strftime("%H時")) for i in range(0, HOURS, 3)]
    y_ticks = [Tick(y(v), str(v)) for v in range(0, ceiling + 1, max(1, ceiling // 4))]
    return Chart(series, x_ticks, y_ticks, empty=not series)


def _nice(peak: int) -> int:
    """A round ceiling for the y axis: 4, 8, 20, 40, 80, 200…, at least the peak."""
    step = 1
    while True:
        for factor in (4, 8, 20):
            if factor * step >= peak:
                return factor * step
        step *= 10
