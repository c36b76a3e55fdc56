"""One sanitiser for reasons: what a dead letter, a bus header or a log line may say about a failure."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path

import pytest
import structlog

from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from honnin import logs
from orchestrator.errors import (
    NotFoundError,
    PoisonMessageError,
    StoreUnavailableError,
    exception_kind,
    failure_reason,
)

FACTS = ("東京都千代田区千代田1-1", "公的　花子", "hanako@example.jp")


@pytest.mark.parametrize(
    "exc",
    [
        KeyError(FACTS[0]),
        ValueError(f"{FACTS[1]} <{FACTS[2]}>"),
        TypeError(FACTS),
        sqlite3.IntegrityError(f"UNIQUE constraint failed: {FACTS[2]}"),
        OSError(2, FACTS[0]),
    ],
)
def test_an_exception_not_ours_is_named_by_its_type_only(exc: Exception) -> None:
    assert failure_reason(exc) == type(exc).__name__


def test_our_errors_speak_for_themselves_on_one_line_masked_and_bounded() -> None:
    assert failure_reason(NotFoundError("no registration reg-0001")) == "not_found: no registration reg-0001"
    multi = PoisonMessageError("line one\nline two\r\x1b[2J\u202eevil 1234-5678-9012")
    reason = failure_reason(multi)
    assert "\n" not in reason
    assert "\x1b" not in reason
    assert "\u202e" not in reason
    assert "9012" not in reason
    assert reason.startswith("poison_message: line one line two")
    assert len(failure_reason(PoisonMessageError("x" * 10_000))) == 500


def test_a_library_exception_is_named_with_its_code_never_its_text() -> None:
    locked = sqlite3.OperationalError(f"database is locked {FACTS[0]}")
    locked.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    assert exception_kind(locked) == "OperationalError (SQLITE_BUSY)"
    assert exception_kind(FileNotFoundError(2, FACTS[1])) == "FileNotFoundError (ENOENT)"

    class ServerError(Exception):
        code = 11000

    assert exception_kind(ServerError(FACTS[2])) == "ServerError (11000)"

    class Chatty(Exception):
        code = FACTS[2]

    assert exception_kind(Chatty()) == "Chatty", "a code that is free text is left out"
    assert exception_kind(KeyError(FACTS[0])) == "KeyError"


async def test_a_store_that_cannot_open_names_the_library_error_by_kind(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-not-a-file"
    folder.mkdir()
    before = set(threading.enumerate())
    with pytest.raises(StoreUnavailableError) as caught:
        await SqliteStore.open(folder, Sealer(bytes(32)))
    assert (
        caught.value.message
        == f"cannot open the SQLite store at {folder}: OperationalError (SQLITE_CANTOPEN)"
    )
    for thread in set(threading.enumerate()) - before:  # aiosqlite's worker winds down on its own
        await asyncio.to_thread(thread.join, 5.0)


def test_configured_logs_mask_numbers_keep_event_ids_and_timestamps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO", "json")
    try:
        event_id = "6f1c2a3b-1234-5678-9012-abcdefabcdef"
        structlog.get_logger("t").info("x", note="1234 5678 9012", event_id=event_id, error="KeyError")
    finally:
        structlog.reset_defaults()
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["note"] == "[individual-number-removed]"
    assert entry["event_id"] == event_id, "canonical UUIDs are ids of a fixed form, left as they are"
    assert "individual" not in entry["timestamp"]
