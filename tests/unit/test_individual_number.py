"""The individual-number screen: every separator the issue found, random spellings, and texts that pass.

Free text refuses every run of 12 or more digits once separators are dropped (the lead's choice,
README "Privacy"); ids hold at most 11 digits in total. Logs mask with the same normalisation.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.payloads import ApplicantInfo, CardFacts
from schemas.privacy import (
    INDIVIDUAL_NUMBER_REFUSED,
    REMOVED,
    contains_individual_number,
    mask_individual_numbers,
    refuse_id_digits,
    refuse_individual_number_anywhere,
)
from tests import factory

NUMBER = "123456789012"

# Every kind of separator the issue lists, by name, as it would stand between two digits.
SEPARATORS = {
    "space": " ",
    "double space": "  ",
    "tab": "\t",
    "newline": "\n",
    "CRLF": "\r\n",
    "ideographic space": "\u3000",
    "no-break space": "\u00a0",
    "thin space": "\u2009",
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "zero-width no-break space": "\ufeff",
    "word joiner": "\u2060",
    "soft hyphen": "\u00ad",
    "left-to-right mark": "\u200e",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "left-to-right isolate": "\u2066",
    "right-to-left override": "\u202e",
    "combining acute": "\u0301",
    "combining low line": "\u0332",
    "combining enclosing circle": "\u20dd",
    "variation selector": "\ufe0f",
    "dot": ".",
    "full-width full stop": "．",
    "katakana middle dot": "・",
    "slash": "/",
    "full-width slash": "／",
    "backslash": "\\",
    "underscore": "_",
    "comma": ",",
    "ideographic comma": "、",
    "full-width comma": "，",
    "colon": ":",
    "hyphen-minus": "-",
    "hyphen": "‐",
    "non-breaking hyphen": "‑",
    "figure dash": "‒",
    "en dash": "–",
    "em dash": "—",
    "horizontal bar": "―",
    "minus sign": "−",
    "full-width hyphen-minus": "－",
    "small hyphen-minus": "﹣",
    "wave dash": "〜",
    "katakana prolonged sound mark": "ー",
    "half-width prolonged sound mark": "ｰ",
    "parenthesis": ")(",
    "full-width parenthesis": "）（",
    "plus": "+",
    "asterisk": "*",
}


def grouped(separator: str, sizes: tuple[int, ...]) -> str:
    """The number cut into groups of `sizes`, joined by `separator`."""
    parts, start = [], 0
    for size in sizes:
        parts.append(NUMBER[start : start + size])
        start += size
    return separator.join(parts)


GROUPINGS = {"4-4-4": (4, 4, 4), "3-3-3-3": (3, 3, 3, 3), "each digit": (1,) * 12, "2-10": (2, 10)}


def digits_of(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())


def assert_refused_and_masked(text: str) -> None:
    assert contains_individual_number(text), repr(text)
    masked = mask_individual_numbers(text)
    assert REMOVED in masked
    assert NUMBER[:6] not in digits_of(masked)
    assert NUMBER[6:] not in digits_of(masked)


@pytest.mark.parametrize("grouping", sorted(GROUPINGS))
@pytest.mark.parametrize("name", sorted(SEPARATORS))
def test_every_separator_kind_is_seen_through(name: str, grouping: str) -> None:
    text = grouped(SEPARATORS[name], GROUPINGS[grouping])
    assert_refused_and_masked(text)
    assert_refused_and_masked(f"番号は{text}です")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("keycaps", "".join(f"{d}\ufe0f\u20e3" for d in NUMBER)),
        ("full-width digits", "１２３４５６７８９０１２"),
        ("circled digits", "①②③④⑤⑥⑦⑧⑨⓪①②"),
        ("negative circled digits", "❶❷❸❹❺❻❼❽❾⓿❶❷"),
        ("circled numbers", "⑫㉞㊱⑦⑧⑨⑩①"),
        ("parenthesized digits", "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾"),
        ("digit full stops", "⒈⒉⒊⒋⒌⒍⒎⒏⒐⒑⒒"),
        ("superscripts", "¹²³⁴⁵⁶⁷⁸⁹⁰¹²"),
        ("mathematical bold", "𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗𝟎𝟏𝟐"),
        ("arabic-indic digits", "١٢٣٤٥٦٧٨٩٠١٢"),
        ("devanagari digits", "१२३४५६७८९०१२"),
        ("a leading plus", "+" + NUMBER),
        ("a 13th digit", NUMBER + "3"),
        ("mixed separators", "1234 - 5678\u200b\u00ad. 9012"),
        ("parentheses around groups", "(1234)(5678)(9012)"),
        ("a hangul filler", "1234\u31645678\u31649012"),
        ("inside a sentence", "私の番号は1234-5678-9012です"),
    ],
)
def test_other_spellings_are_seen_through(name: str, text: str) -> None:
    assert contains_individual_number(text), name
    assert REMOVED in mask_individual_numbers(text)


# --- random spellings --------------------------------------------------------------------------

DIGIT_FORMS = st.sampled_from(
    [
        "0123456789",
        "０１２３４５６７８９",
        "٠١٢٣٤٥٦٧٨٩",
        "⓪①②③④⑤⑥⑦⑧⑨",
        "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
    ]
)
SEPARATOR_RUNS = st.lists(st.sampled_from(sorted(SEPARATORS.values())), max_size=3).map("".join)
LETTERS = st.text(alphabet="abcあいう漢字テキスト", max_size=5)


@st.composite
def spelled_numbers(draw: st.DrawFn) -> str:
    """Twelve random digits, each in a random width or script, with random separators between."""
    digits = draw(st.lists(st.integers(0, 9), min_size=12, max_size=12))
    text = draw(LETTERS)
    for position, digit in enumerate(digits):
        text += draw(DIGIT_FORMS)[digit]
        if position < 11:
            text += draw(SEPARATOR_RUNS)
    return text + draw(LETTERS)


@given(spelled_numbers())
def test_any_spelling_of_twelve_digits_is_refused(text: str) -> None:
    assert contains_individual_number(text)
    masked = mask_individual_numbers(text)
    assert REMOVED in masked
    assert len(digits_of(masked.replace(REMOVED, ""))) < 12


@given(spelled_numbers())
def test_any_spelling_is_refused_by_a_text_field_with_the_field_named(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CardFacts.model_validate({**factory.CARD, "address": text})
    (error,) = caught.value.errors()
    assert error["loc"] == ("address",)


@given(spelled_numbers())
def test_any_spelling_is_refused_in_an_id(text: str) -> None:
    with pytest.raises(ValueError, match="at most 11 digits"):
        refuse_id_digits(text)


# --- texts that pass ---------------------------------------------------------------------------

LEGITIMATE = [
    "03-1234-5678",
    "090-1234-5678",
    "０９０－１２３４－５６７８",
    "(03) 1234-5678",
    "0120-123-456",
    "+81 3 1234 567",
    "〒100-0001",
    "100-0001",
    "東京都千代田区千代田1丁目1番1号",
    "東京都千代田区千代田１－１",
    "大阪府大阪市北区梅田3-1-3 グランフロント大阪 タワーA 12階",
    "千代田1ー2ー3 ビル1001号室",
    "札幌市中央区北1条西2丁目1番地 〒060-8611",
    "2026-11-23",
    "2026年11月23日 10時00分",
    "令和8年11月23日",
    "1990/04/01",
    "TEL 03-1234-5678 FAX 03-1234-5679",
    "attempt 2, code 23",
    "",
]


@pytest.mark.parametrize("text", LEGITIMATE)
def test_phone_numbers_postal_codes_addresses_and_dates_pass(text: str) -> None:
    assert not contains_individual_number(text)
    assert mask_individual_numbers(text) == text


@pytest.mark.parametrize("phone", ["03-1234-5678", "090-1234-5678", "0120-123-456", "(0467) 12-3456"])
def test_a_phone_number_passes_the_phone_field(phone: str) -> None:
    assert ApplicantInfo.model_validate({**factory.APPLICANT, "phone": phone}).phone == phone


PHONE_DIGITS = st.lists(st.integers(0, 9), min_size=10, max_size=11)


@given(PHONE_DIGITS, st.lists(SEPARATOR_RUNS, min_size=11, max_size=11))
def test_any_spelling_of_ten_or_eleven_digits_passes(digits: list[int], separators: list[str]) -> None:
    text = "".join(str(d) + separator for d, separator in zip(digits, separators, strict=False))
    assert not contains_individual_number(text)


@given(st.lists(st.integers(0, 10**11 - 1), min_size=1, max_size=6))
def test_numbers_of_eleven_digits_or_fewer_between_words_pass(numbers: list[int]) -> None:
    text = "丁目".join(str(n) for n in numbers)
    assert not contains_individual_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "03-1234-5678, 03-1234-5679",  # two phone numbers joined by a comma: 20 digits in a row
        "+81 90-1234-5678",  # a mobile number in international form: 12 digits
        "2026-11-23 10:00",  # a date and a time: 12 digits
        "1234567890123",  # a 13-digit corporate number
    ],
)
def test_the_documented_false_positives_are_refused(text: str) -> None:
    """Strict by decision (README "Privacy"): the person gets a clear 422 and writes it otherwise."""
    with pytest.raises(ValidationError) as caught:
        ApplicantInfo.model_validate({**factory.APPLICANT, "address": text})
    assert INDIVIDUAL_NUMBER_REFUSED in str(caught.value)


def test_masking_keeps_the_text_around_the_number() -> None:
    text = "tel 03-1234-5678; number 1234 5678 9012 (twice: ①②③④⑤⑥⑦⑧⑨⓪①②), ok"
    assert mask_individual_numbers(text) == f"tel 03-1234-5678; number {REMOVED} (twice: {REMOVED}), ok"


def test_masking_takes_a_keycap_with_its_last_digit() -> None:
    keycaps = "".join(f"{d}\ufe0f\u20e3" for d in NUMBER)
    assert mask_individual_numbers(f"[{keycaps}]") == f"[{REMOVED}]"


def test_a_sha256_in_a_request_body_is_a_fixed_form_not_text() -> None:
    """One SHA-256 in five holds 12 decimal digits in a row; its field's pattern checks it instead."""
    digest = "0123456789012345" + "a" * 48
    assert refuse_individual_number_anywhere({"terms": {"sha256": digest}}) == {"terms": {"sha256": digest}}
    with pytest.raises(ValueError, match="個人番号"):
        refuse_individual_number_anywhere({"note": digest.upper()})  # not the fixed form: screened
    with pytest.raises(ValueError, match="個人番号"):
        refuse_individual_number_anywhere({"note": "1234 5678 9012"})


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_the_ascii_shortcut_finds_exactly_what_the_full_scan_finds(text: str) -> None:
    """ASCII text is screened by a regex; the character-by-character scan is the reference."""
    from schemas.privacy import _runs, _scanned, digit_count

    assert _runs(text) == _scanned(text)
    assert digit_count(text) == sum(char.isdigit() for char in text)


ASCII_PIECES = [*"0123456789", " ", "-", ".", "(", ")", "/", "a", "Z", "_", "+"]


@given(st.lists(st.sampled_from(ASCII_PIECES), max_size=60))
def test_the_ascii_shortcut_agrees_on_digit_heavy_text(chars: list[str]) -> None:
    from schemas.privacy import _runs, _scanned

    text = "".join(chars)
    assert _runs(text) == _scanned(text)
