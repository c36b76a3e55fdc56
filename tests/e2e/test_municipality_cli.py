"""`honnin municipality` as a person runs it, and the address of a real certificate resolved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.ca_revocation import parse_identity
from adapters.ca_revocation.devca import DevCA, Person
from orchestrator.municipality import resolve

ROOT = Path(__file__).resolve().parents[2]


def municipality(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    return subprocess.run(
        [sys.executable, "-m", "honnin.cli", "municipality", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("address", "line"),
    [
        ("東京都千代田区千代田１－１", "131016\t東京都千代田区"),
        ("東京都西多摩郡桧原村467-1", "133078\t東京都檜原村"),
        ("神奈川県横浜市中区港町1-1", "141046\t神奈川県横浜市中区"),
    ],
)
def test_prints_the_code_and_the_name(address, line) -> None:
    result = municipality(address)
    assert (result.returncode, result.stdout, result.stderr) == (0, line + "\n", "")


def test_the_substitute_flags_come_as_an_option() -> None:
    address = "東京都西多摩郡〓原村467-1"
    flags = "".join("1" if ch == "〓" else "0" for ch in address)
    assert municipality(address).returncode == 1
    result = municipality(address, "--substituted", flags)
    assert (result.returncode, result.stdout) == (0, "133078\t東京都檜原村\n")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["静岡県浜松市中区元城町103-2"], "no municipality"),
        (["府中市宮西町2-24"], "or more than one could fit"),
        (["東京都千代田区千代田1-1", "--substituted", "0101"], "one digit, 0 or 1, per character"),
    ],
)
def test_an_address_that_names_no_single_municipality_exits_1_without_repeating_it(args, says) -> None:
    result = municipality(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert says in result.stderr
    assert args[0] not in result.stderr, "the address is a personal fact"


def test_the_address_and_flags_of_a_signing_certificate_resolve() -> None:
    """What activation does for 「お住まいの自治体」: the certificate's 住所 and its 代替文字 flags."""
    address = "長崎県長\ufa11市魚の町4-1"  # 﨑 is outside JIS levels 1-2: the card writes a substitute
    written = address.replace("\ufa11", "〓")
    flags = "".join("1" if ch == "〓" else "0" for ch in written)
    card = DevCA.create().issue(Person(address=written, address_substituted=flags))
    identity = parse_identity(card.der)
    found = resolve(identity.address, identity.address_substituted)
    assert found is not None
    assert (found.code, found.name) == ("422011", "長崎県長崎市")
