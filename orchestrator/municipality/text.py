"""How a certificate's address and a municipality's name are made comparable, character by character.

Both sides go through the same fold: NFKC (width, CJK compatibility ideographs), no spaces, every
form of the ケ in 〜ヶ崎 as one, and old or variant kanji as their standard form (data/variants.tsv).
A character the certificate flags as 代替文字 becomes WILDCARD: it stands for any one character.
"""

from __future__ import annotations

import csv
import unicodedata
from functools import cache
from importlib import resources

WILDCARD = None
KE_FORMS = frozenset("ヶケヵが")  # 龍ケ崎市, 鰺ヶ沢町: the same name is written with each of these
KE = "ケ"

Token = str | None  # one folded character, or WILDCARD


@cache
def variants() -> dict[str, str]:
    """Variant → standard form, read once from the package data."""
    text = resources.files(__package__).joinpath("data/variants.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return {row["variant"]: row["standard"] for row in rows}


def fold_char(ch: str) -> str:
    """One character (already NFKC) in its comparable form."""
    if ch in KE_FORMS:
        return KE
    return variants().get(ch, ch)


def fold(text: str) -> str:
    """A name as the index keeps it."""
    return "".join(fold_char(ch) for ch in unicodedata.normalize("NFKC", text) if not ch.isspace())


def tokens(address: str, substituted: str = "") -> list[Token] | None:
    """The address as folded characters and wildcards; None when the flags cannot belong to it
    (one digit, 0 or 1, per character of the address)."""
    if substituted and (len(substituted) != len(address) or set(substituted) - {"0", "1"}):
        return None
    out: list[Token] = []
    start = 0
    for at, flag in enumerate(substituted):
        if flag == "1":
            out.extend(fold(address[start:at]))  # a run at a time: NFKC joins half-width ｶﾞ
            out.append(WILDCARD)
            start = at + 1
    out.extend(fold(address[start:]))
    return out
