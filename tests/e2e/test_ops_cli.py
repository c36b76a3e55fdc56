"""`honnin ops` in real processes: lists and their cursor, `parked` that no longer misses rows, a
replay by code (dry run first, both audited, idempotent), `show` without personal facts, dead
letters, and an earlier version's file listed once migrated."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.store.sqlite import SqliteStore
from orchestrator.model import Signature, State, Verification
from orchestrator.ports import BusMessage, DeadLetter
from tests import factory
from tests.contract.test_store_contract import commit, registration
from tests.e2e.test_cli import HONNIN, ROOT
from tests.e2e.test_operators_cli import old_file, sealer_of

NOW = datetime.now(UTC).replace(microsecond=0)  # the commands' clock is the real one
LATER = NOW + timedelta(days=1)


def ops(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env |= {"HONNIN_DATA_DIR": str(data_dir), "HONNIN_OPERATOR_NAME": "erin", "HONNIN_LOG_LEVEL": "ERROR"}
    result = subprocess.run([*HONNIN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def parked(rid: str, minutes: int, code: str = "42") -> object:
    at = NOW - timedelta(hours=1) + timedelta(minutes=minutes)
    verification = Verification(attempt=1, status="parked", retries=5, code=code, decided_at=at)
    signature = Signature(
        certificate="Y2VydA==",
        signature="c2ln",
        algorithm="rsa-pkcs1v15-sha256",
        challenge="Y2g=",
        attempt=1,
        submitted_at=at,
    )
    return registration(
        rid,
        State.CONFIRMED,
        verification=verification,
        signature=signature,
        created_at=at,
        updated_at=at,
        expires_at=LATER,
    )


def arrange(data_dir: Path) -> list[str]:
    """Twelve confirmed registrations waiting for a signature (changed long ago), then three parked."""
    ops(data_dir, "check")
    rids = [f"reg-park{n:05d}" for n in range(3)]

    async def write() -> None:
        store = await SqliteStore.open(data_dir / "honnin.db", sealer_of(data_dir))
        for n in range(12):
            rid = f"reg-wait{n:05d}"
            at = NOW - timedelta(days=2, minutes=-n)
            reg = registration(rid, State.CONFIRMED, created_at=at, updated_at=at, expires_at=LATER)
            await store.commit(commit(f"w{n}", reg, 0, rid=rid))
        for n, rid in enumerate(rids):
            await store.commit(commit(f"p{n}", parked(rid, n), 0, rid=rid))  # type: ignore[arg-type]
        card = factory.event("card.info_read", "reg-wait00000")
        message = BusMessage(card.type, card.model_dump_json().encode(), str(card.event_id))
        await store.add_dead_letter(DeadLetter("honnin.orchestrator", message, "store_unavailable", 9), NOW)
        await store.close()

    asyncio.run(write())
    return rids


def lines(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    return [line.split("\t") for line in result.stdout.strip().splitlines()]


def test_parked_no_longer_misses_rows_and_lists_page_by_cursor(tmp_path: Path) -> None:
    rids = arrange(tmp_path)
    [only] = lines(ops(tmp_path, "parked", "--limit", "1"))
    assert only[:3] == [rids[0], "42", "5"], "found past the twelve confirmed rows changed earlier"
    assert [row[0] for row in lines(ops(tmp_path, "parked"))] == rids

    seen, after = [], []
    while True:
        page = ops(tmp_path, "ops", "registrations", "--state", "confirmed", "--limit", "5", *after)
        seen += [row[0] for row in lines(page)]
        if "more: --after" not in page.stderr:
            break
        after = ["--after", page.stderr.split("more: --after ", 1)[1].split()[0]]
    assert seen == [f"reg-wait{n:05d}" for n in range(12)] + rids, "every row once, by creation"
    old = lines(ops(tmp_path, "ops", "registrations", "--older-than", "1d"))
    assert len(old) == 12
    [row] = lines(ops(tmp_path, "ops", "registrations", "--verification", "parked", "--newer-than", "59m"))
    assert row[:5] == [rids[2], "confirmed", "parked", "42", "5"]
    refused = ops(tmp_path, "ops", "registrations", "--older-than", "soon", check=False)
    assert (refused.returncode, "--older-than: a whole number" in refused.stderr) == (1, True)


def test_a_replay_by_code_dry_run_first_both_audited_and_idempotent(tmp_path: Path) -> None:
    rids = arrange(tmp_path)
    dry = ops(tmp_path, "ops", "replay", "--code", "42", "--dry-run")
    assert [row[:3] for row in lines(dry)[:-1]] == [["registration", rid, "would_replay"] for rid in rids]
    assert lines(dry)[-1][0].startswith("would replay 3 of 3 (audit ")
    assert len(lines(ops(tmp_path, "parked"))) == 3, "a dry run changes nothing"

    done = ops(tmp_path, "ops", "replay", "--code", "42", "--rate", "50/s", "--reason", "OCSP back")
    assert [row[:3] for row in lines(done)[:-1]] == [["registration", rid, "replayed"] for rid in rids]
    assert "replaying at 50/s" in done.stderr, "the progress bar"
    assert ops(tmp_path, "parked").stdout.strip() == "no parked verifications"
    again = ops(tmp_path, "ops", "replay", "--code", "42")
    assert again.stdout.strip().startswith("replayed 0 of 0")
    by_id = lines(ops(tmp_path, "ops", "replay", rids[0], "reg-wait00001"))
    assert [row[2] for row in by_id[:-1]] == ["skipped", "skipped"]
    assert by_id[0][3] == "not_parked: verification pending, nothing to replay"
    legacy = ops(tmp_path, "replay", rids[0], check=False)
    assert (legacy.returncode, "not_parked" in legacy.stderr) == (1, True)

    audit = lines(ops(tmp_path, "ops", "audit"))
    assert [(a[2], a[3], a[4], a[5], a[6]) for a in audit] == [
        ("erin", "cli", "replay", "-", "0"),
        ("erin", "cli", "replay", "-", "0"),
        ("erin", "cli", "replay", "-", "0"),
        ("erin", "cli", "replay", "-", "3"),
        ("erin", "cli", "replay", "dry-run", "3"),
    ]
    assert json.loads(audit[-1][7]) == {"code": "42", "targets": 3, "done": 3}
    assert len(lines(ops(tmp_path, "ops", "audit", "--limit", "2"))) == 2


def test_show_dead_letters_and_a_dead_letter_replayed_by_id(tmp_path: Path) -> None:
    rids = arrange(tmp_path)
    shown = json.loads(ops(tmp_path, "ops", "show", rids[0]).stdout)
    assert (shown["summary"]["verification"], shown["verification"]["code"]) == ("parked", "42")
    assert len(shown["history"]) == 1
    text = json.dumps(shown, ensure_ascii=False)
    assert all(fact not in text for fact in (factory.NAME, factory.ADDRESS, "hanako@example.jp"))
    [letter] = lines(ops(tmp_path, "ops", "dead-letters"))
    assert letter[1:5] == ["honnin.orchestrator", letter[2], "card.info_read", "9"]
    assert factory.NAME not in ops(tmp_path, "ops", "dead-letters").stdout
    replayed = lines(ops(tmp_path, "ops", "replay", "--dead-letter", letter[0]))
    assert replayed[0][:3] == ["dead_letter", letter[0], "handled"]
    assert ops(tmp_path, "ops", "dead-letters").stdout.strip() == "no dead letters"
    assert json.loads(ops(tmp_path, "status", "reg-wait00000").stdout)["state"] == "confirmed"
    counts = json.loads(ops(tmp_path, "ops", "counts").stdout)
    assert counts["by_state"] == {"confirmed": 15}
    assert counts["by_code"] == {"42": 3}


def test_an_earlier_versions_file_is_listed_once_migrated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_file(data_dir, ["reg-old-000001", "reg-old-000002"])
    before = ops(data_dir, "ops", "registrations")
    assert before.stdout.strip() == "no registrations"
    assert "2 registrations were written before these lists: run `honnin migrate`" in before.stderr
    ops(data_dir, "migrate")
    after = ops(data_dir, "ops", "registrations")
    assert [row[:2] for row in lines(after)] == [
        ["reg-old-000001", "info_entered"],
        ["reg-old-000002", "info_entered"],
    ]
    assert "honnin migrate" not in after.stderr
    [migrated] = [a for a in lines(ops(data_dir, "ops", "audit")) if a[4] == "migrate"]
    assert migrated[6] == "2"
