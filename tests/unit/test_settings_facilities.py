"""HONNIN_FACILITY_TOKENS: each token names one facility; mistakes stop start-up, naming no token."""

from __future__ import annotations

import pytest

from honnin.settings import Settings
from orchestrator.errors import ConfigurationError

A = "token-of-facility-a-0001"
B = "token-of-facility-b-0002"
A2 = "second-token-of-facility-a"


def facilities(value: str) -> dict[str, str]:
    return Settings(facility_tokens=value).facilities()  # type: ignore[arg-type]


def refusal(value: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        facilities(value)
    message = caught.value.message
    for token in (A, B, A2):
        assert token not in message, "a token is never printed"
        assert token[:8] not in message
    return message


def test_each_token_names_its_facility() -> None:
    assert facilities(f"facility-a:{A}, facility-b:{B}") == {A: "facility-a", B: "facility-b"}


def test_a_facility_may_hold_two_tokens_while_one_is_rotated() -> None:
    assert facilities(f"facility-a:{A},facility-a:{A2}") == {A: "facility-a", A2: "facility-a"}


def test_one_token_for_two_facilities_is_refused_naming_both_and_where() -> None:
    message = refusal(f"facility-a:{A},facility-b:{B},facility-c:{A}")
    assert "pairs 1 and 3" in message
    assert "'facility-a'" in message
    assert "'facility-c'" in message


def test_the_same_pair_twice_is_refused_naming_where() -> None:
    message = refusal(f"facility-a:{A},facility-b:{B},facility-a:{A}")
    assert "pair 3 repeats pair 1" in message
    assert "'facility-a'" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (f":{A}", "pair 1: pairs are facility-id:token"),
        ("facility-a:short", "pair 1: pairs are facility-id:token"),
        (f"facility-a:{A},facility-b", "pair 2: pairs are facility-id:token"),
        (f"facility-123456789012:{A}", "pair 1: a facility id holds at most 11 digits"),
        (f"f-1234-5678-9012:{A}", "pair 1: a facility id holds at most 11 digits"),
        (f"facility\x1ba:{A}", "pair 1: a facility id is 1-64 printable characters"),
        (f"{'f' * 65}:{A}", "pair 1: a facility id is 1-64 printable characters"),
    ],
)
def test_a_malformed_pair_is_refused_naming_its_position(value: str, words: str) -> None:
    assert words in refusal(value)


def test_no_tokens_means_no_facilities() -> None:
    assert Settings().facilities() == {}
