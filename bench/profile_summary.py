"""Where a worker's event-loop thread spent its time, by library, from cProfile files.

    BENCH_PROFILE_DIR=/tmp/prof .venv/bin/python bench/run.py --quick --only rabbitmq
    .venv/bin/python bench/profile_summary.py /tmp/prof/worker-*.prof

Own time (tottime) of every function, summed by the package its file belongs to; `idle` is the
event loop waiting in epoll (for the broker, the SQLite threads' answers, or nothing to do).
"""

from __future__ import annotations

import pstats
import sys
from collections import Counter

AREAS = (
    ("idle (epoll wait)", ("select.epoll",)),
    ("SQLite (aiosqlite hand-offs, sqlite3)", ("aiosqlite", "SimpleQueue", "sqlite3")),
    ("AMQP client (aio-pika, aiormq, pamqp)", ("aio_pika", "aiormq", "pamqp")),
    ("HTTP (aiohttp, the feed)", ("aiohttp", "multidict", "yarl")),
    ("pydantic (events, documents)", ("pydantic",)),
    ("transitions (the state machine library)", ("transitions",)),
    ("crypto (AES-GCM, certificates)", ("cryptography", "_rust")),
    ("logging (structlog)", ("structlog",)),
    ("asyncio's own loop", ("asyncio", "selectors", "_contextvars", "events.py")),
    ("socket I/O", ("_socket", "socket.py", "ssl")),
    ("Honnin's own code", ("/orchestrator/", "/adapters/", "/schemas/", "/honnin/")),
    ("start-up (imports, compile)", ("importlib", "marshal", "builtins.compile", "builtins.exec", "<frozen")),
)


def area_of(key: tuple[str, int, str]) -> str:
    text = f"{key[0]}:{key[2]}"
    for name, needles in AREAS:
        if any(needle in text for needle in needles):
            return name
    return "other"


def summary(paths: list[str]) -> list[tuple[str, float, float]]:
    stats = pstats.Stats(*paths)
    spent: Counter[str] = Counter()
    for key, (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        spent[area_of(key)] += tottime
    total = sum(spent.values())
    return [(area, seconds, seconds / total * 100) for area, seconds in spent.most_common()]


if __name__ == "__main__":
    for area, seconds, share in summary(sys.argv[1:]):
        print(f"{area:<44} {seconds:8.2f} s {share:5.1f} %")
