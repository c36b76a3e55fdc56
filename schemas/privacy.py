"""Refuse the 12-digit individual number (個人番号) at the edge, before anything stores or logs it.

The screen normalises first, so no spelling gets around it: NFKC (full-width, circled and
super-script digits become 0-9), then every character that is not a letter or a digit is a
separator a run of digits goes through — spaces of any kind, tabs, line breaks, format characters
(zero-width, word joiners, soft hyphens, bidi marks), combining marks (keycaps like 1️⃣), dots,
slashes, commas, parentheses, `+` and dashes of every kind, the katakana prolonged sound mark ー
included. Only a letter (kana and kanji too) ends a run. Free text refuses **every** run of 12 or
more digits, whatever its check digit: a near-miss of a person's number is still theirs, and a
false refusal is a clear 422 the person can fix (two phone numbers joined by a comma are one).
Ids a caller chooses hold at most 11 digits in total, so no separator or reordering can carry one.

The same module keeps text single-line and printable: C0/C1 controls, bidi overrides, embeddings
and isolates, and lone surrogates are refused by every `Text` field, with the field named.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

INDIVIDUAL_NUMBER_REFUSED = (
    "個人番号（マイナンバー）は受け付けていません。"
    " A 12-digit individual number must never be sent to Honnin."
)
ID_DIGITS_REFUSED = "an id may hold at most 11 digits (12 could carry an individual number)"
CONTROL_REFUSED = "control characters, bidi overrides and lone surrogates are not allowed"
LINE_BREAK_REFUSED = "line breaks and tabs are not allowed in a single-line field"
REMOVED = "[individual-number-removed]"

RUN_LENGTH = 12
MAX_ID_DIGITS = RUN_LENGTH - 1
_ASCII_DIGITS = frozenset("0123456789")
# Letters that render as nothing: they must not end a run either.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_MARKS = frozenset({"Mn", "Mc", "Me", "Cf"})

# Never in any text: C0 controls but TAB/LF/CR, DEL, C1 controls, bidi marks, embeddings,
# overrides and isolates, and lone surrogates (JSON's "\ud800" escapes decode to them).
_NEVER = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029]")
# ASCII text, the common case, in C: a digit, then digits joined by anything but a letter.
_ASCII_RUN = re.compile("[0-9](?:[^A-Za-z0-9]*[0-9])*")
_NOT_DIGITS = str.maketrans("", "", "0123456789")


def _is_digit(char: str) -> bool:
    """0-9 and every other script's digits (Arabic-Indic, ❶ and the like NFKC leaves alone)."""
    return char in _ASCII_DIGITS or (not char.isascii() and unicodedata.digit(char, None) is not None)


def _ends_run(char: str) -> bool:
    """A letter or a number that is not a digit; modifier letters (ー, 々) separate like dashes."""
    return (
        char.isalnum()
        and not _is_digit(char)
        and unicodedata.category(char) != "Lm"
        and char not in _INVISIBLE_LETTERS
    )


def _folded(text: str) -> Iterator[tuple[int, str]]:
    """Each character of the NFKC form, with the index of the original character it came from."""
    for index, original in enumerate(text):
        folded = original if original.isascii() else unicodedata.normalize("NFKC", original)
        for char in folded:
            yield index, char


def _runs(text: str) -> list[tuple[int, int]]:
    """Spans (of the original text) holding 12 or more digits joined by nothing but separators."""
    if text.isascii():
        return [m.span() for m in _ASCII_RUN.finditer(text) if _ascii_digits(m.group()) >= RUN_LENGTH]
    if digit_count(text) < RUN_LENGTH:
        return []  # one character may fold into several digits (㉑ is 21), so length alone says little
    return _scanned(text)


def _scanned(text: str) -> list[tuple[int, int]]:
    """The screen one character at a time, for any script (the ASCII regex is its shortcut)."""
    spans: list[tuple[int, int]] = []
    start, last, digits = -1, -1, 0
    for index, char in _folded(text):
        if _is_digit(char):
            if digits == 0:
                start = index
            last, digits = index, digits + 1
        elif _ends_run(char):
            if digits >= RUN_LENGTH:
                spans.append((start, last + 1))
            digits = 0
    if digits >= RUN_LENGTH:
        spans.append((start, last + 1))
    return spans


def digit_count(text: str) -> int:
    """Digits after NFKC, wherever they stand (an NFKC of the whole text folds like each part)."""
    if text.isascii():
        return _ascii_digits(text)
    return sum(1 for char in unicodedata.normalize("NFKC", text) if _is_digit(char))


def _ascii_digits(text: str) -> int:
    return len(text) - len(text.translate(_NOT_DIGITS))


def contains_individual_number(text: str) -> bool:
    """Twelve digits in a row once separators are dropped, in any script or width."""
    return bool(_runs(text))


def mask_individual_numbers(text: str) -> str:
    """For logs and error messages: each run the screen finds is replaced; the rest stays as it was."""
    spans = _runs(text)
    if not spans:
        return text
    parts: list[str] = []
    end = 0
    for start, stop in spans:
        parts.extend((text[end:start], REMOVED))
        end = stop
        while end < len(text) and unicodedata.category(text[end]) in _MARKS:  # a keycap's tail
            end += 1
    parts.append(text[end:])
    return "".join(parts)


def refuse_individual_number(value: str) -> str:
    if contains_individual_number(value):
        raise ValueError(INDIVIDUAL_NUMBER_REFUSED)
    return value


def refuse_id_digits(value: str) -> str:
    """Ids are strict: 11 digits at most in total, so no spelling of one can carry a number."""
    if digit_count(value) > MAX_ID_DIGITS:
        raise ValueError(ID_DIGITS_REFUSED)
    return value


def refuse_controls(value: Any) -> Any:
    """Before stripping: a trailing control is refused, not silently cut off."""
    if isinstance(value, str):
        if _NEVER.search(value):
            raise ValueError(CONTROL_REFUSED)
        if _LINE_BREAKS.search(value):
            raise ValueError(LINE_BREAK_REFUSED)
    return value


def refuse_controls_multiline(value: Any) -> Any:
    """Reasons and messages may break lines (TAB, LF, CR); nothing else below U+0020 passes."""
    if isinstance(value, str) and _NEVER.search(value):
        raise ValueError(CONTROL_REFUSED)
    return value


def _leaves(data: Any) -> Iterator[Any]:
    """Every key and scalar of a JSON document, iteratively (a deep body must not overflow)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            yield item


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def refuse_individual_number_anywhere(data: Any) -> Any:
    """Keys and numbers too: a 12-digit number could otherwise pass as a date (ms since 1970).

    A SHA-256 in lowercase hex is a fixed form, not text: one in five holds 12 decimal digits in a
    row by chance, so it is left to its field's own pattern (as `Fingerprint` is)."""
    for leaf in _leaves(data):
        if isinstance(leaf, bool) or (isinstance(leaf, str) and _SHA256_HEX.fullmatch(leaf)):
            continue
        if contains_individual_number(str(leaf)):
            raise ValueError(INDIVIDUAL_NUMBER_REFUSED)
    return data


def has_controls(value: str) -> bool:
    """Whether single-line text carries anything `Text` refuses (headers, ids from a path)."""
    return bool(_NEVER.search(value) or _LINE_BREAKS.search(value))


Text = Annotated[str, BeforeValidator(refuse_controls), AfterValidator(refuse_individual_number)]
"""Any single-line text a caller sends: no controls, no individual number."""

MultilineText = Annotated[
    str, BeforeValidator(refuse_controls_multiline), AfterValidator(refuse_individual_number)
]
"""Free text that may span lines (a cancel reason, a verifier's message)."""

IdText = Annotated[str, BeforeValidator(refuse_controls), AfterValidator(refuse_id_digits)]
"""An id a caller chooses: single-line and at most 11 digits."""


def mask_email(address: str) -> str:
    """What a log may say about an e-mail address: its first letter and its top-level domain
    (h***@e***.jp), enough to tell two mails apart at a glance and nothing to write to."""
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        return "***"
    labels = domain.split(".")
    masked = [label[:1] + "***" for label in labels[:-1]] + labels[-1:]
    return f"{local[:1]}***@{'.'.join(masked)}"
