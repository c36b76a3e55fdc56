"""Every municipality in the vendored table, and the forms of its name an address may begin with."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from orchestrator.municipality.codes import is_valid_code
from orchestrator.municipality.text import WILDCARD, Token, fold, tokens


@dataclass(frozen=True)
class Municipality:
    """A 地方公共団体 as 「お住まいの自治体」 names it; in a designated city, the ward."""

    code: str  # 全国地方公共団体コード, six digits with the check digit
    prefecture: str
    city: str  # 市区町村; for a ward of a designated city (政令指定都市), the city
    ward: str = ""  # the ward (区) of a designated city
    county: str = ""  # the 郡 of a town or village (on two of Tokyo's islands, the island)

    @property
    def name(self) -> str:
        """Prefecture and municipality, without the 郡: 東京都檜原村, 神奈川県横浜市鶴見区."""
        return self.prefecture + self.city + self.ward


@dataclass(frozen=True)
class _End:
    municipality: Municipality
    whole: bool  # a designated city without a ward names the whole address or nothing


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    ends: list[_End] = field(default_factory=list)


@dataclass(frozen=True)
class _Index:
    by_code: dict[str, Municipality]
    root: _Node


def _rows() -> Iterator[Municipality]:
    text = resources.files(__package__).joinpath("data/municipalities.tsv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines(), delimiter="\t"):
        if not is_valid_code(row["code"]):
            raise ValueError(f"municipalities.tsv: {row['code']} is no valid 全国地方公共団体コード")
        yield Municipality(row["code"], row["prefecture"], row["city"], row["ward"], row["county"])


def _forms(m: Municipality, designated: bool) -> Iterator[tuple[str, bool]]:
    """With and without the 郡 (an address may carry either)."""
    if m.ward or not m.county:
        yield m.prefecture + m.city + m.ward, designated and not m.ward
        return
    yield m.prefecture + m.county + m.city, False
    yield m.prefecture + m.city, False


@cache
def _index() -> _Index:
    """Built on first use, never at import."""
    table = list(_rows())
    designated = {(m.prefecture, m.city) for m in table if m.ward}
    root = _Node()
    for m in table:
        for form, whole in _forms(m, (m.prefecture, m.city) in designated):
            node = root
            for ch in fold(form):
                node = node.children.setdefault(ch, _Node())
            node.ends.append(_End(m, whole))
    return _Index({m.code: m for m in table}, root)


def _matches(root: _Node, address: list[Token]) -> Iterator[tuple[_End, int]]:
    """Every form the address begins with, and how many of its characters the form took."""
    stack = [(root, 0)]
    while stack:
        node, at = stack.pop()
        yield from ((end, at) for end in node.ends)
        if at == len(address):
            continue
        token = address[at]
        if token is WILDCARD:
            stack.extend((child, at + 1) for child in node.children.values())
        elif (child := node.children.get(token)) is not None:
            stack.append((child, at + 1))


def resolve(address: str, substituted: str = "") -> Municipality | None:
    """The municipality a certificate's address (住所, from the prefecture on) lies in.

    `substituted` is the certificate's flags for the address, one digit per character, "1" where
    the character is a 代替文字 (it then matches any character). None when the address names no
    municipality in the table, or more than one could fit: never a guess.
    """
    folded = tokens(address, substituted)
    if not folded:
        return None
    found = {
        end.municipality
        for end, taken in _matches(_index().root, folded)
        if not end.whole or taken == len(folded)
    }
    return found.pop() if len(found) == 1 else None


def by_code(code: str) -> Municipality | None:
    """The municipality a stored 全国地方公共団体コード stands for."""
    return _index().by_code.get(code)


def municipalities() -> tuple[Municipality, ...]:
    return tuple(_index().by_code.values())
