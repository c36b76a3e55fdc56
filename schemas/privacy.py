"""Refuse the 12-digit individual number (個人番号) at the edge, before anything stores or logs it."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

INDIVIDUAL_NUMBER_REFUSED = (
    "個人番号（マイナンバー）は受け付けていません。"
    " A 12-digit individual number must never be sent to Honnin."
)

# Twelve digits standing alone, optionally grouped 4-4-4 with a space or a dash of any kind
# (after NFKC: hyphen, hyphen-minus, minus, en/em dash, katakana prolonged sound mark ー).
# A leading "+" marks an international phone number (+81 90 1234 5678), not an individual number.
_SEP = "[ \\-‐‑‒–—―−ー]?"
_TWELVE_DIGITS = re.compile(rf"(?<![\d+])\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}(?!\d)")


def contains_individual_number(text: str) -> bool:
    """Full-width digits count too: NFKC folds them before the search."""
    return _TWELVE_DIGITS.search(unicodedata.normalize("NFKC", text)) is not None


def mask_individual_numbers(text: str) -> str:
    """For log processors and error messages: any 12-digit run is replaced, never echoed.

    Text without one comes back as it was (not NFKC-folded)."""
    folded = unicodedata.normalize("NFKC", text)
    if not _TWELVE_DIGITS.search(folded):
        return text
    return _TWELVE_DIGITS.sub("[individual-number-removed]", folded)


def refuse_individual_number(value: str) -> str:
    if contains_individual_number(value):
        raise ValueError(INDIVIDUAL_NUMBER_REFUSED)
    return value


Text = Annotated[str, AfterValidator(refuse_individual_number)]
"""Any free text a caller sends: refused when it carries an individual number."""


def mask_email(address: str) -> str:
    """What a log may say about an e-mail address: its first letter and its top-level domain
    (h***@e***.jp), enough to tell two mails apart at a glance and nothing to write to."""
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        return "***"
    labels = domain.split(".")
    masked = [label[:1] + "***" for label in labels[:-1]] + labels[-1:]
    return f"{local[:1]}***@{'.'.join(masked)}"
