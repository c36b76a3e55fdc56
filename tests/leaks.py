"""A test that leaves a SQLite connection open fails the run, and the run still ends.

aiosqlite gives every connection a thread of its own that is not a daemon, so one connection left
open keeps the interpreter from exiting after the last test: a run that passed would sit there
until CI's limit (it did, for 90 minutes). Each test's new connection threads are noted; at the
end, any still running are named with the test that opened them, stopped, and the run fails.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Generator

import aiosqlite
import pytest

_opened_by: dict[threading.Thread, str] = {}


def connection_threads() -> set[threading.Thread]:
    """aiosqlite's running connection threads (one a connection still open)."""
    return {t for t in threading.enumerate() if t.name.endswith("(_connection_worker_thread)")}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    before = connection_threads()
    yield
    for thread in connection_threads() - before:
        _opened_by.setdefault(thread, item.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for thread in connection_threads():
        thread.join(timeout=2)  # a connection closed just now stops its thread a moment later
    left = sorted(_opened_by.get(t, "<outside any test>") for t in connection_threads())
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"SQLite connections left open ({len(left)}), by the test that opened each:", red=True
        )
        for nodeid in left:
            reporter.write_line(f"  {nodeid}", red=True)
    for candidate in gc.get_objects():
        if isinstance(candidate, aiosqlite.Connection):
            candidate.stop()  # its thread ends, so the interpreter can
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
