"""The operator service's small parts: the token bucket counted on a fake clock, cursors, ages,
times, what a replay report counts, and operator tokens kept apart from facilities'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from honnin.settings import Settings
from orchestrator.errors import ConfigurationError, InvalidRequestError
from orchestrator.operations_views import (
    ReplayItem,
    ReplayReport,
    decode_cursor,
    encode_cursor,
    parse_age,
    parse_instant,
)
from orchestrator.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_a_bucket_lets_rate_a_second_through_and_counts_its_waits() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, burst=1, monotonic=time.monotonic, sleep=time.sleep)
    taken_at = []
    for _ in range(30):
        await bucket.take()
        taken_at.append(time.now)
    assert bucket.waits == 29, "the first goes at once, each later one waits for its token"
    assert taken_at[-1] - taken_at[0] == pytest.approx(2.9)
    for window_start in taken_at:  # in any one second, at most rate (+ the burst) go through
        assert sum(1 for t in taken_at if window_start <= t < window_start + 1) <= 11


async def test_a_bucket_saves_up_its_burst_while_idle() -> None:
    time = FakeTime()
    bucket = TokenBucket(2, burst=3, monotonic=time.monotonic, sleep=time.sleep)
    for _ in range(3):
        await bucket.take()
    assert bucket.waits == 0
    time.now += 10  # idle: the bucket fills to its burst, not beyond
    for _ in range(4):
        await bucket.take()
    assert bucket.waits == 1


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(0)


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    at = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor((at, "reg-00000001"))) == (at, "reg-00000001")
    for bad in ("", "nonsense", encode_cursor((at, "x"))[:-3], "W10", "WyIyMDI2LTExLTIzIiwgMV0"):
        with pytest.raises(InvalidRequestError) as caught:
            decode_cursor(bad)
        assert caught.value.code == "invalid_cursor"


def test_ages_and_times_as_operators_write_them() -> None:
    assert parse_age("90") == timedelta(seconds=90)
    assert parse_age("30m") == timedelta(minutes=30)
    assert parse_age(" 2h") == timedelta(hours=2)
    assert parse_age("7d") == timedelta(days=7)
    for bad in ("2w", "-1h", "1.5h", "h"):
        with pytest.raises(InvalidRequestError):
            parse_age(bad)
    assert parse_instant("2026-11-23T09:00:00") == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert parse_instant("2026-11-23T09:00:00+09:00").utcoffset() == timedelta(hours=9)
    with pytest.raises(InvalidRequestError, match="ISO 8601"):
        parse_instant("yesterday", "--since")


def test_a_report_counts_what_changed_or_in_a_dry_run_what_would_have() -> None:
    items = [
        ReplayItem("registration", "a", "replayed", ""),
        ReplayItem("registration", "b", "skipped", ""),
        ReplayItem("dead_letter", "1", "handled", ""),
        ReplayItem("dead_letter", "2", "not_found", ""),
    ]
    assert ReplayReport(False, items).affected == 2
    dry = [
        ReplayItem("registration", "a", "would_replay", ""),
        ReplayItem("registration", "b", "skipped", ""),
    ]
    assert ReplayReport(True, dry).affected == 1


def test_operator_tokens_are_name_token_pairs_and_never_a_facilitys() -> None:
    settings = Settings(operator_tokens="alice:alice-token-0000000001,bob:bob-token-00000000002")
    assert settings.operators() == {"alice-token-0000000001": "alice", "bob-token-00000000002": "bob"}
    shared = Settings(
        operator_tokens="alice:shared-token-000000001", facility_tokens="facility-1:shared-token-000000001"
    )
    with pytest.raises(ConfigurationError, match="an operator token must open /ops/v1 only"):
        shared.operators()
    with pytest.raises(ConfigurationError, match="HONNIN_OPERATOR_TOKENS pair 1"):
        Settings(operator_tokens="alice:short").operators()
    assert Settings().operators() == {}
