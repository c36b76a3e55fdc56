"""Root generations: J-LIS's published fingerprints decide what `honnin anchors add` installs, and a
card under an installed root verifies through the pipeline the worker builds."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from adapters.ca_revocation.anchors import (
    JLIS_SIGNING_GENERATIONS,
    Generation,
    install_anchor,
    installed_anchors,
    sha256_hex,
)
from adapters.ca_revocation.devca import DevCA, Person
from adapters.ca_revocation.pipeline import Subject
from adapters.clock import FakeClock
from honnin import verification
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from schemas.payloads import CardFacts
from schemas.privacy import mask_individual_numbers

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_2015 = ROOT / "adapters" / "ca_revocation" / "trust_anchors" / "sign_ca_2015.pem"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CHALLENGE = b"the registration's challenge"
FACTS = CardFacts(name="公的 花子", address="東京都千代田区千代田1-1", birth_date=Person().birth_date, sex=2)


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=10))


def table_for(ca: DevCA) -> tuple[Generation, ...]:
    """The injectable table: J-LIS's, plus the test CA's root as if J-LIS had published it."""
    test = Generation(
        "signca-test", "01", date(2026, 1, 1), date(2036, 1, 1), sha256_hex(ca.der), "test cards"
    )
    return (*JLIS_SIGNING_GENERATIONS, test)


def pem_file(ca: DevCA, path: Path) -> Path:
    path.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    return path


def settings_for(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", revocation="none", accept_test_certificates=True)


async def verdict_code(settings: Settings, ca: DevCA, generations: tuple[Generation, ...]) -> str:
    card = ca.issue(Person(), now=NOW - timedelta(days=1))
    pipeline = verification.pipeline(settings, None, FakeClock(NOW), generations=generations)
    subject = Subject(card.der, card.sign(CHALLENGE), "rsa-pkcs1v15-sha256", CHALLENGE, FACTS, NOW)
    return (await pipeline.verify(subject)).code


async def test_a_signature_under_a_root_installed_with_anchors_add_verifies(
    ca: DevCA, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    table = table_for(ca)
    assert await verdict_code(settings, ca, table) == "30"  # not trusted before it is installed
    generation, target = install_anchor(pem_file(ca, tmp_path / "root.pem"), settings.anchors_folder, table)
    assert generation.name == "signca-test"
    assert target.parent == settings.anchors_folder
    assert installed_anchors(settings.anchors_folder, table) == [ca.der]
    assert await verdict_code(settings, ca, table) == "ok"


def test_a_file_with_another_fingerprint_is_refused_and_nothing_is_installed(
    ca: DevCA, tmp_path: Path
) -> None:
    folder = tmp_path / "anchors"
    with pytest.raises(ConfigurationError, match="not a published JPKI signing root"):
        install_anchor(pem_file(ca, tmp_path / "root.pem"), folder)  # J-LIS's table: the dev CA is not in it
    assert not folder.exists()


def test_a_root_copied_into_the_folder_by_hand_is_checked_too(ca: DevCA, tmp_path: Path) -> None:
    folder = tmp_path / "anchors"
    folder.mkdir()
    pem_file(ca, folder / "signca02.pem")
    with pytest.raises(ConfigurationError, match="remove it"):
        installed_anchors(folder)


def test_der_and_pem_both_install(ca: DevCA, tmp_path: Path) -> None:
    der = tmp_path / "signca.cer"
    der.write_bytes(ca.der)
    assert install_anchor(der, tmp_path / "a", table_for(ca))[0].name == "signca-test"
    assert (
        install_anchor(pem_file(ca, tmp_path / "r.pem"), tmp_path / "b", table_for(ca))[0].name
        == "signca-test"
    )


def test_start_up_names_the_cards_a_missing_generation_would_refuse(ca: DevCA, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with capture_logs() as logs:
        verification.pipeline(settings, None, FakeClock(NOW))
    missing = [entry for entry in logs if entry["event"] == "trust_anchors.generation_missing"]
    assert [(entry["generation"], entry["log_level"]) for entry in missing] == [("signca02", "warning")]
    assert "cards issued from September 2019 to July 2023" in missing[0]["refused"]
    table = table_for(ca)
    with capture_logs() as logs:
        verification.pipeline(settings, None, FakeClock(NOW), generations=table)
    assert {entry.get("generation") for entry in logs} >= {"signca02", "signca-test"}
    install_anchor(pem_file(ca, tmp_path / "root.pem"), settings.anchors_folder, table)
    with capture_logs() as logs:
        verification.pipeline(settings, None, FakeClock(NOW), generations=table)
    assert "signca-test" not in {entry.get("generation") for entry in logs}


def honnin(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")} | {
        "HONNIN_DATA_DIR": str(data_dir)
    }
    return subprocess.run(
        [sys.executable, "-m", "honnin.cli", "anchors", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_installs_the_real_2015_root_and_refuses_a_dev_ca_root(ca: DevCA, tmp_path: Path) -> None:
    data = tmp_path / "data"
    listed = honnin(data, "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(line[0], line[4]) for line in lines] == [
        ("signca01", "shipped"),
        ("signca02", "MISSING"),
        ("signca03", "shipped"),
    ]
    assert lines[1][3] == "valid today" or datetime.now(UTC).date() > date(2029, 9, 14)

    der = tmp_path / "signca01.cer"  # J-LIS publishes DER .cer files
    der.write_bytes(
        x509.load_pem_x509_certificate(SHIPPED_2015.read_bytes()).public_bytes(serialization.Encoding.DER)
    )
    added = honnin(data, "add", str(der))
    assert added.returncode == 0, added.stderr
    assert "installed signca01" in added.stdout
    assert (data / "anchors" / "signca01.pem").exists()

    refused = honnin(data, "add", str(pem_file(ca, tmp_path / "dev-root.pem")))
    assert refused.returncode == 1
    assert "not a published JPKI signing root" in refused.stderr
    assert sorted(path.name for path in (data / "anchors").iterdir()) == ["signca01.pem"]


def test_every_generations_cards_survive_the_log_screen() -> None:
    """The warning is written through the individual-number screen, which masks any 12 digits in a
    row with separators between them: dates written as digits ("2019-09 – 2023-07") were masked
    and the operator read "[individual-number-removed] would be refused"."""
    for generation in JLIS_SIGNING_GENERATIONS:
        text = f"{generation.cards} would be refused with Code 30"
        assert mask_individual_numbers(text) == text, generation.name
