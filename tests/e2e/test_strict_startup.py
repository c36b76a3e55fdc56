"""HONNIN_STRICT_STARTUP (compose's production workers): a worker that could accept nobody, or would
park every verification, refuses to start and says what is missing; the embedded default is untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from honnin.readiness import problems
from honnin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "facility-strict-token-0123456789"


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_the_embedded_default_lacks_tokens_and_revocation_data(tmp_path: Path) -> None:
    found = problems(_settings(tmp_path))
    assert len(found) == 2
    assert "HONNIN_FACILITY_TOKENS" in found[0]
    assert "HONNIN_CRL_FILES" in found[1]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"revocation": "none"}, "HONNIN_REVOCATION=none"),
        ({"revocation": "ocsp"}, "HONNIN_OCSP_URL"),
        ({"revocation": "platform", "platform_url": "https://p.example"}, "HONNIN_PLATFORM_TOKEN"),
        ({"crl_files": ["/nowhere/tokyo.der"]}, "HONNIN_CRL_FILES entry 1"),
        ({"store": "mongodb", "crl_files": []}, "HONNIN_DATA_KEY"),
    ],
)
def test_each_missing_piece_is_named(tmp_path: Path, values: dict[str, object], named: str) -> None:
    found = problems(_settings(tmp_path, facility_tokens=SecretStr(f"f:{TOKEN}"), **values))
    assert any(named in problem for problem in found), found


def test_a_configured_worker_has_no_problem(tmp_path: Path) -> None:
    crl = tmp_path / "crl.der"
    crl.write_bytes(b"checked when read, not here")
    assert problems(_settings(tmp_path, facility_tokens=SecretStr(f"f:{TOKEN}"), crl_files=[crl])) == []
    ocsp = _settings(tmp_path, app_clients=SecretStr(f"app:{TOKEN}"), revocation="ocsp", ocsp_url="http://o")
    assert problems(ocsp) == []  # an xID-only deployment has app clients instead of facilities


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    clean |= {"HONNIN_DATA_DIR": str(tmp_path), "HONNIN_HTTP_PORT": "0", **env}
    return subprocess.run(
        [sys.executable, "-m", "honnin.cli", "run", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_honnin_run_refuses_to_start_and_lists_what_is_missing(tmp_path: Path) -> None:
    result = _run(tmp_path, HONNIN_STRICT_STARTUP="true", HONNIN_PLATFORM_TOKEN="secret-token-never-shown")
    assert result.returncode == 1
    assert "refusing to start (HONNIN_STRICT_STARTUP=true)" in result.stderr
    assert "HONNIN_FACILITY_TOKENS" in result.stderr
    assert "HONNIN_CRL_FILES" in result.stderr
    assert "secret-token-never-shown" not in result.stdout + result.stderr
    assert not (tmp_path / "honnin.db").exists()  # nothing was opened


def test_honnin_run_starts_once_everything_is_there(tmp_path: Path) -> None:
    crl = tmp_path / "crl.der"
    crl.write_bytes(b"")
    events = tmp_path / "none.jsonl"
    events.write_text("")
    result = _run(
        tmp_path,
        "--events",
        str(events),
        "--until-idle",
        HONNIN_STRICT_STARTUP="true",
        HONNIN_FACILITY_TOKENS=f"f:{TOKEN}",
        HONNIN_CRL_FILES=str(crl),
    )
    assert result.returncode == 0, result.stderr
    assert "fed 0 events" in result.stdout
