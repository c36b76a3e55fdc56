"""The operators' commands in real processes: `honnin quarantine`, `honnin dead-letters`,
`honnin migrate` on a file an earlier version wrote, and a data key that does not fit the file."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.store.codec import Sealer, decode_key
from adapters.store.sqlite import SqliteStore
from adapters.store.sqlite_outbound import OUTBOUND_SCHEMA
from adapters.store.sqlite_schema import CORE_SCHEMA
from orchestrator.ports import BusMessage, DeadLetter
from tests import factory
from tests.contract.stores import Raw
from tests.contract.test_store_contract import commit, registration
from tests.e2e.test_cli import honnin

OLD_SCHEMA = CORE_SCHEMA.replace(",\n    schema_version INTEGER NOT NULL DEFAULT 1", "") + OUTBOUND_SCHEMA
"""The tables as the version before schema versions made them."""


def sealer_of(data_dir: Path) -> Sealer:
    return Sealer(decode_key((data_dir / "data.key").read_text().strip()))


def v1_row(sealer: Sealer, rid: str) -> tuple[str, bytes]:
    doc = registration(rid).model_dump(mode="json")
    del doc["reference"]
    return rid, sealer.seal(json.dumps(doc).encode(), f"registration:{rid}")


def old_file(data_dir: Path, rids: list[str]) -> Sealer:
    """A data folder as the earlier version left it: its key, its tables, registrations at v1."""
    data_dir.mkdir()
    key = base64.urlsafe_b64encode(bytes(range(1, 33))).decode()
    (data_dir / "data.key").write_text(key + "\n")
    sealer = sealer_of(data_dir)
    with sqlite3.connect(data_dir / "honnin.db") as db:
        db.executescript(OLD_SCHEMA)
        db.executemany(
            "INSERT INTO registrations (id, version, state, next_deadline_at, updated_at, ended_at, data)"
            " VALUES (?, 1, 'info_entered', NULL, '2026-11-23T09:00:00.000000+00:00', NULL, ?)",
            [v1_row(sealer, rid) for rid in rids],
        )
    return sealer


def test_migrate_rewrites_a_file_the_earlier_version_wrote(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rids = ["reg-old-000001", "reg-old-000002", "reg-old-000003"]
    sealer = old_file(data_dir, rids)
    status = json.loads(honnin(data_dir, "status", "reg-old-000002").stdout)
    assert status["state"] == "info_entered", "v2 code reads the v1 document"

    dry = honnin(data_dir, "migrate", "--dry-run").stdout.strip().splitlines()
    assert dry[-1] == "scanned 3, would rewrite 3, changed meanwhile 0, undecodable 0"
    done = honnin(data_dir, "migrate", "--batch", "2").stdout.strip().splitlines()
    assert done == [
        "batch\t2\t2\t0\t0",
        "batch\t1\t1\t0\t0",
        "scanned 3, rewritten 3, changed meanwhile 0, quarantined 0",
    ]
    again = honnin(data_dir, "migrate").stdout.strip()
    assert again == "scanned 0, rewritten 0, changed meanwhile 0, quarantined 0", "resumable and idempotent"
    with sqlite3.connect(data_dir / "honnin.db") as db:
        rows = db.execute(
            "SELECT id, version, schema_version, data FROM registrations ORDER BY id"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(rid, 1, 2) for rid in rids]
    plain = json.loads(sealer.open(rows[0][3], f"registration:{rids[0]}"))
    assert (plain["schema_version"], plain["reference"]) == (2, rids[0])


def test_a_data_key_that_is_not_the_files_stops_the_worker_instead_of_quarantining_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_file(data_dir, ["reg-old-000001"])
    (data_dir / "data.key").write_text(base64.urlsafe_b64encode(bytes(32)).decode() + "\n")
    result = honnin(data_dir, "check", check=False)
    assert result.returncode != 0
    assert "the data key does not open this store" in result.stderr
    with sqlite3.connect(data_dir / "honnin.db") as db:
        assert db.execute("SELECT COUNT(*) FROM registrations").fetchone() == (1,), "nothing moved aside"


def test_quarantine_lists_shows_releases_and_discards(tmp_path: Path) -> None:
    honnin(tmp_path, "check")
    sealer = sealer_of(tmp_path)

    async def arrange() -> None:
        store = await SqliteStore.open(tmp_path / "honnin.db", sealer)
        for n, rid in enumerate(("reg-00000001", "reg-00000002")):
            await store.commit(commit(f"e{n}", registration(rid), 0, rid=rid))
        await Raw(store).tamper("registration", "reg-00000001")
        await store.close()

    asyncio.run(arrange())
    refused = honnin(tmp_path, "status", "reg-00000001", check=False)
    assert refused.returncode != 0
    assert "quarantined" in refused.stderr
    assert json.loads(honnin(tmp_path, "status", "reg-00000002").stdout)["state"] == "info_entered"
    assert "quarantined=1" in honnin(tmp_path, "check").stdout

    [line] = honnin(tmp_path, "quarantine").stdout.strip().splitlines()
    entry, kind, key, _, reason = line.split("\t")
    assert (kind, key) == ("registration", "reg-00000001")
    assert "wrong key or tampered" in reason
    shown = honnin(tmp_path, "quarantine", "show", entry).stdout
    assert '"registrations"' in shown
    assert all(fact not in shown for fact in (factory.NAME, factory.ADDRESS, "hanako@example.jp"))
    assert honnin(tmp_path, "quarantine", "--kind", "history").stdout.strip() == "nothing in quarantine"

    released = honnin(tmp_path, "quarantine", "release", entry).stdout.strip()
    assert released == f"{entry}: released; its rows are read again from now on"
    honnin(tmp_path, "status", "reg-00000001", check=False)  # still tampered: back to the quarantine
    [line] = honnin(tmp_path, "quarantine").stdout.strip().splitlines()
    newer = line.split("\t")[0]
    assert honnin(tmp_path, "quarantine", "discard", newer).stdout.strip() == f"{newer}: discarded"
    assert honnin(tmp_path, "quarantine").stdout.strip() == "nothing in quarantine"
    missing = honnin(tmp_path, "quarantine", "release", "999", check=False)
    assert (missing.returncode, "no quarantine entry 999" in missing.stderr) == (1, True)


def test_dead_letters_are_listed_replayed_and_deleted(tmp_path: Path) -> None:
    honnin(tmp_path, "check")
    sealer = sealer_of(tmp_path)
    card = factory.event("card.info_read", "reg-00000001")
    poison = BusMessage("registration.activated", b'{"not": "an inbound event"}', "poison-0001")

    async def arrange() -> None:
        store = await SqliteStore.open(tmp_path / "honnin.db", sealer)
        later = datetime.now(UTC) + timedelta(days=1)  # the replaying worker's clock is the real one
        await store.commit(commit("e1", registration(expires_at=later), 0))
        for message, reason in (
            (BusMessage(card.type, card.model_dump_json().encode(), str(card.event_id)), "store_unavailable"),
            (poison, "poison_message: not an inbound event"),
        ):
            letter = DeadLetter("honnin.orchestrator", message, reason, 9, first_seen_at=factory.NOW)
            await store.add_dead_letter(letter, factory.NOW)
        await store.close()

    asyncio.run(arrange())
    lines = [line.split("\t") for line in honnin(tmp_path, "dead-letters").stdout.strip().splitlines()]
    assert [(f[1], f[2], f[3], f[4]) for f in lines] == [
        ("honnin.orchestrator", str(card.event_id), "card.info_read", "9"),
        ("honnin.orchestrator", "poison-0001", "registration.activated", "9"),
    ]
    assert factory.NAME not in honnin(tmp_path, "dead-letters").stdout, "never the body"
    assert "dead_letters=2" in honnin(tmp_path, "check").stdout
    assert honnin(tmp_path, "dead-letters", "--queue", "honnin.verifier").stdout.strip() == "no dead letters"

    handled = honnin(tmp_path, "dead-letters", "replay", lines[0][0]).stdout.strip()
    assert handled == f"{lines[0][0]}: handled"
    assert json.loads(honnin(tmp_path, "status", "reg-00000001").stdout)["state"] == "card_read"
    again = honnin(tmp_path, "dead-letters", "replay", lines[1][0]).stdout.strip()
    assert again.startswith(f"{lines[1][0]}: dead-lettered again: poison_message")
    [left] = honnin(tmp_path, "dead-letters").stdout.strip().splitlines()
    assert left.split("\t")[2] == "poison-0001"
    assert honnin(tmp_path, "dead-letters", "delete", lines[1][0]).stdout.strip() == f"{lines[1][0]}: deleted"
    assert honnin(tmp_path, "dead-letters").stdout.strip() == "no dead letters"
