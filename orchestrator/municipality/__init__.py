"""The municipality (自治体) a signing certificate's address lies in, for 「お住まいの自治体」.

Pure data and decisions: the table and the variant kanji are package data read on first use
(data/README.md names their source and date).
"""

from __future__ import annotations

from orchestrator.municipality.codes import check_digit, is_valid_code, with_check_digit
from orchestrator.municipality.index import Municipality, by_code, municipalities, resolve

__all__ = [
    "Municipality",
    "by_code",
    "check_digit",
    "is_valid_code",
    "municipalities",
    "resolve",
    "with_check_digit",
]
