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

# Twelve digits standing alone, optionally grouped 4-4-4 with spaces or hyphens.
_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{4}[ \-‐－−]?\d{4}[ \-‐－−]?\d{4}(?!\d)")


def contains_individual_number(text: str) -> bool:
    """Full-width digits count too: NFKC folds them before the search."""
    return _TWELVE_DIGITS.search(unicodedata.normalize("NFKC", text)) is not None


def mask_individual_numbers(text: str) -> str:
    """For log processors: any 12-digit run is replaced, never echoed."""
    return _TWELVE_DIGITS.sub("[individual-number-removed]", unicodedata.normalize("NFKC", text))


def _refuse(value: str) -> str:
    if contains_individual_number(value):
        raise ValueError(INDIVIDUAL_NUMBER_REFUSED)
    return value


Text = Annotated[str, AfterValidator(_refuse)]
"""Any free text a caller sends: refused when it carries an individual number."""
