"""Matching the card read in step 2 with the certificate that signed in step 5."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from orchestrator.identity import CardIdentity, Mismatch, era_of, match, normalise

CERT = CardIdentity(
    name="公的　花子",
    name_substituted="00000",
    sex="2",
    birth_date=date(1990, 4, 1),
    birth_era="4",
    address="東京都千代田区千代田１－１",
    address_substituted="0000000000000",
)
CARD = {
    "card_name": "公的 花子",
    "card_address": "東京都千代田区千代田1-1",
    "card_birth": date(1990, 4, 1),
    "card_sex": 2,
}


@pytest.mark.parametrize(
    ("day", "era"),
    [
        (date(1868, 10, 22), "0"),
        (date(1868, 10, 23), "1"),
        (date(1912, 7, 29), "1"),
        (date(1912, 7, 30), "2"),
        (date(1926, 12, 24), "2"),
        (date(1926, 12, 25), "3"),
        (date(1989, 1, 7), "3"),
        (date(1989, 1, 8), "4"),
        (date(2019, 4, 30), "4"),
        (date(2019, 5, 1), "5"),
    ],
)
def test_era_digits_change_on_the_first_day_of_each_era(day: date, era: str) -> None:
    assert era_of(day) == era


def test_the_same_person_matches_despite_width_and_spaces() -> None:
    assert match(**CARD, cert=CERT) is None


def test_normalise_folds_width_and_drops_every_space() -> None:
    assert normalise("公的\u3000花子 ") == "公的花子"
    assert normalise("ＡＢＣ１－１") == "ABC1-1"


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"card_name": "公的 太郎"}, ("name",)),
        ({"card_address": "東京都千代田区千代田1-2"}, ("address",)),
        ({"card_birth": date(1990, 4, 2)}, ("birth_date",)),
        ({"card_sex": 1}, ("sex",)),
        ({"card_name": "公的 太郎", "card_sex": 1}, ("name", "sex")),
    ],
)
def test_each_differing_fact_is_named_but_not_shown(
    changes: dict[str, object], fields: tuple[str, ...]
) -> None:
    result = match(**{**CARD, **changes}, cert=CERT)  # type: ignore[arg-type]
    assert result == Mismatch(fields)


def test_the_card_sex_9_is_the_certificate_sex_3() -> None:
    assert match(**{**CARD, "card_sex": 9}, cert=replace(CERT, sex="3")) is None  # type: ignore[arg-type]
    assert match(**{**CARD, "card_sex": 9}, cert=CERT) == Mismatch(("sex",))  # type: ignore[arg-type]


def test_a_substituted_character_matches_whatever_the_card_holds_there() -> None:
    cert = replace(CERT, name="髙橋　一郎".replace("髙", "〓"), name_substituted="10000")
    assert match(**{**CARD, "card_name": "髙橋 一郎"}, cert=cert) is None  # type: ignore[arg-type]
    assert match(**{**CARD, "card_name": "髙田 一郎"}, cert=cert) == Mismatch(("name",))  # type: ignore[arg-type]
    assert match(**{**CARD, "card_name": "髙橋 一"}, cert=cert) == Mismatch(("name",))  # type: ignore[arg-type]


def test_an_unsubstituted_character_must_be_equal() -> None:
    cert = replace(CERT, name="〓橋　一郎", name_substituted="00000")
    assert match(**{**CARD, "card_name": "髙橋 一郎"}, cert=cert) == Mismatch(("name",))  # type: ignore[arg-type]


def test_flags_of_the_wrong_length_never_match() -> None:
    cert = replace(CERT, name_substituted="1")
    assert match(**CARD, cert=cert) == Mismatch(("name",))  # type: ignore[arg-type]


def test_an_unknown_birth_date_in_the_certificate_does_not_match() -> None:
    cert = replace(CERT, birth_date=None, birth_era="0")
    assert match(**CARD, cert=cert) == Mismatch(("birth_date",))  # type: ignore[arg-type]


def test_a_wrong_era_digit_does_not_match() -> None:
    assert match(**CARD, cert=replace(CERT, birth_era="3")) == Mismatch(("birth_date",))  # type: ignore[arg-type]
