"""The certificate's basic four facts, and whether they match the card read in step 2.

The card-info application and the signing certificate encode the same person differently:
sex is ISO 5218 on the card (1, 2, 9) and 1, 2, 3 in the certificate; the birth date carries an
era digit only in the certificate; characters outside JIS levels 1-2 are replaced by a
substitute in the certificate (flagged per character). Both are normalised before comparing.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

ERAS: tuple[tuple[str, date], ...] = (
    ("5", date(2019, 5, 1)),  # 令和 Reiwa
    ("4", date(1989, 1, 8)),  # 平成 Heisei
    ("3", date(1926, 12, 25)),  # 昭和 Showa
    ("2", date(1912, 7, 30)),  # 大正 Taisho
    ("1", date(1868, 10, 23)),  # 明治 Meiji
)
CARD_SEX_TO_CERT = {1: "1", 2: "2", 9: "3"}  # ISO 5218 "not applicable" is the certificate's 3


def era_of(day: date) -> str:
    """The era digit a JPKI certificate puts before a Gregorian date ("0" before Meiji)."""
    return next((digit for digit, start in ERAS if day >= start), "0")


@dataclass(frozen=True)
class CardIdentity:
    """What a JPKI signing certificate says about its holder (SAN otherNames 8.5.5.1-6)."""

    name: str
    name_substituted: str  # one digit per character of `name`, "1" = 代替文字
    sex: str  # "1" male, "2" female, "3" unknown
    birth_date: date | None  # None when the era digit is 0 (unknown)
    birth_era: str
    address: str
    address_substituted: str


@dataclass(frozen=True)
class Mismatch:
    """Which facts differ; never the facts themselves (they are personal)."""

    fields: tuple[str, ...]


def normalise(text: str) -> str:
    """Width (NFKC), and every kind of space removed: the card and the certificate space names
    differently (U+3000 between family and given name in the certificate)."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace())


def _same_text(card: str, cert: str, flags: str) -> bool:
    """Equal after normalising; a character the certificate flags as substituted matches any
    single character of the card's text at that place."""
    if not flags or "1" not in flags:
        return normalise(card) == normalise(cert)
    if len(flags) != len(cert):
        return False
    kept = [(ch, flag) for ch, flag in zip(cert, flags, strict=True) if not ch.isspace()]
    card_chars = normalise(card)
    if len(card_chars) != len(kept):
        return False
    return all(
        flag == "1" or unicodedata.normalize("NFKC", ch) == c
        for (ch, flag), c in zip(kept, card_chars, strict=True)
    )


def match(
    card_name: str, card_address: str, card_birth: date, card_sex: int, cert: CardIdentity
) -> Mismatch | None:
    """Compare the card read in step 2 with the certificate that signed in step 5."""
    differs = []
    if not _same_text(card_name, cert.name, cert.name_substituted):
        differs.append("name")
    if not _same_text(card_address, cert.address, cert.address_substituted):
        differs.append("address")
    if cert.birth_date != card_birth or cert.birth_era != era_of(card_birth):
        differs.append("birth_date")
    if CARD_SEX_TO_CERT.get(card_sex) != cert.sex:
        differs.append("sex")
    return Mismatch(tuple(differs)) if differs else None
