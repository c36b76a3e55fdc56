"""The `honnin` command as a person runs it: real processes, a fresh data folder, its logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import factory

ROOT = Path(__file__).resolve().parents[2]
HONNIN = [sys.executable, "-m", "honnin.cli"]
EXAMPLE = ROOT / "examples" / "facility-flow.jsonl"


def honnin(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env["HONNIN_DATA_DIR"] = str(data_dir)
    result = subprocess.run([*HONNIN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    data_dir = tmp_path_factory.mktemp("honnin-data")
    return data_dir, honnin(data_dir, "run", "--events", str(EXAMPLE), "--until-idle")


def test_the_readme_run_shows_the_verifiers_refusal_and_the_seeds_error(ran) -> None:
    data_dir, result = ran
    assert "reg-demo-0001: confirmed" in result.stdout
    entries = honnin(data_dir, "history", "reg-demo-0001").stdout.splitlines()
    last = entries[-2].split("\t")
    assert last[1:] == [
        "registration.complete_requested",
        "web",
        "rejected",
        "confirmed->confirmed",
        "33",
        "失効済みのマイナンバーカードの可能性があります。(Code: 33)",
    ]
    assert "reg-demo-0002: info_entered" in result.stdout
    assert "0 dead-lettered" in result.stdout


def test_the_logs_are_json_lines_bound_to_the_registration_and_free_of_personal_facts(ran) -> None:
    _, result = ran
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    applied = [entry for entry in lines if entry["event"] == "event.applied"]
    assert len(applied) == 6  # four steps and the verdict of reg-demo-0001, the start of reg-demo-0002
    decided = [entry for entry in lines if entry["event"] == "verification.decided"]
    assert [(d["outcome"], d["code"], d["step"]) for d in decided] == [("fail", "33", "certificate")]
    assert all(entry["registration_id"].startswith("reg-demo-") for entry in applied)
    assert any(entry["event"] == "event.duplicate" for entry in lines)
    for fact in (factory.NAME, factory.ADDRESS, "hanako@example.jp", "tarou12345", "1990-04-01"):
        assert fact not in result.stderr
        assert fact not in result.stdout


def test_status_shows_the_state_and_masks_personal_facts(ran) -> None:
    data_dir, _ = ran
    shown = json.loads(honnin(data_dir, "status", "reg-demo-0001").stdout)
    assert shown["state"] == "confirmed"
    assert (shown["verification"]["status"], shown["verification"]["code"]) == ("failed", "33")
    assert shown["challenge_attempt"] == 2, "a fresh challenge to sign again"
    assert factory.NAME not in json.dumps(shown, ensure_ascii=False)


def test_history_lists_applied_and_refused_events_in_order(ran) -> None:
    data_dir, _ = ran
    first = honnin(data_dir, "history", "reg-demo-0001").stdout.splitlines()
    assert [line.split("\t")[1] for line in first] == [
        *factory.FLOW[:4],
        "verification.completed",
        factory.FLOW[5],
        "card.info_read",
    ]
    assert first[-1].split("\t")[1:6] == [
        "card.info_read",
        "app",
        "rejected",
        "confirmed->confirmed",
        "event_not_accepted",
    ]
    second = honnin(data_dir, "history", "reg-demo-0002").stdout.splitlines()
    assert [line.split("\t")[1] for line in second] == ["registration.started"]


def test_running_the_same_events_again_changes_nothing(ran) -> None:
    data_dir, _ = ran
    before = honnin(data_dir, "history", "reg-demo-0001").stdout
    again = honnin(data_dir, "run", "--events", str(EXAMPLE), "--until-idle")
    assert "reg-demo-0001: confirmed" in again.stdout
    assert honnin(data_dir, "history", "reg-demo-0001").stdout == before


def test_an_unknown_registration_is_a_clear_error(ran) -> None:
    data_dir, _ = ran
    result = honnin(data_dir, "status", "reg-nobody-01", check=False)
    assert result.returncode == 1
    assert "not_found: no registration reg-nobody-01" in result.stderr


def test_bad_lines_are_reported_by_number_without_their_content(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    good = json.dumps(factory.raw("registration.started", "reg-cli-0001"), ensure_ascii=False)
    bad = json.dumps(
        factory.raw(
            "card.info_read",
            "reg-cli-0001",
            payload={"card": {**factory.CARD, "address": "番号 1234 5678 9012"}},
        ),
        ensure_ascii=False,
    )
    events.write_text(f"{good}\n{{oops\n{bad}\n", encoding="utf-8")
    result = honnin(tmp_path / "data", "run", "--events", str(events), "--until-idle")
    assert f"{events}:2: invalid event" in result.stderr
    assert f"{events}:3: invalid event" in result.stderr
    assert "1234" not in result.stderr
    assert "reg-cli-0001: info_entered" in result.stdout


def test_schemas_export_writes_one_schema_per_event(tmp_path: Path) -> None:
    result = honnin(tmp_path, "schemas", "export", str(tmp_path / "schemas"))
    written = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert "registration.started.schema.json" in written
    assert "envelope.schema.json" in written
    assert len(written) == len(result.stdout.splitlines()) == 27  # 26 event types (17 + xID 9), envelope


def test_the_embedded_default_keeps_its_data_key_private(ran) -> None:
    data_dir, _ = ran
    key = data_dir / "data.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_a_misconfigured_worker_says_why_and_exits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env |= {"HONNIN_DATA_DIR": str(tmp_path), "HONNIN_REVOCATION": "ocsp"}
    result = subprocess.run([*HONNIN, "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "configuration: HONNIN_REVOCATION=ocsp needs HONNIN_OCSP_URL" in result.stderr


def test_a_database_that_is_no_database_is_refused_and_the_worker_exits(tmp_path: Path) -> None:
    (tmp_path / "honnin.db").write_bytes(b"this is not SQLite" * 100)
    result = honnin(tmp_path, "status", "reg-any-00001", check=False)
    assert result.returncode == 1
    assert "store_unavailable: cannot open the SQLite store" in result.stderr


def test_a_token_given_to_two_facilities_stops_start_up_without_printing_it(tmp_path: Path) -> None:
    token = "token-shared-by-two-facilities"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    env |= {
        "HONNIN_DATA_DIR": str(tmp_path),
        "HONNIN_HTTP_PORT": "0",
        "HONNIN_FACILITY_TOKENS": f"facility-a:{token},facility-b:{token}",
    }
    result = subprocess.run(
        [*HONNIN, "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "pairs 1 and 2 give facilities 'facility-a' and 'facility-b' the same token" in result.stderr
    assert token not in result.stdout + result.stderr


def test_webhooks_list_and_replay_a_failing_endpoint_s_deliveries(tmp_path: Path) -> None:
    import asyncio
    from datetime import timedelta

    from adapters.store.codec import Sealer, decode_key
    from adapters.store.sqlite import SqliteStore
    from orchestrator.ports import DeliveryAttempt, FacilityEvent, WebhookEndpoint

    honnin(tmp_path, "check")  # makes the data key and the database
    key = decode_key((tmp_path / "data.key").read_text().strip())
    at = factory.NOW

    async def arrange() -> None:
        store = await SqliteStore.open(tmp_path / "honnin.db", Sealer(key))
        await store.put_webhook(
            WebhookEndpoint("facility-1", "https://hooks.example/h", "whsec_QUJD", at, at)
        )
        for i, offset in enumerate((0, 3600)):
            event = FacilityEvent(
                "facility-1", f"ev-{i}", "registration.activated", None, b"{}", at + timedelta(seconds=offset)
            )
            await store.add_delivery(event)
        for d in await store.claim_deliveries("w", at + timedelta(hours=2), 30, 10, 4):
            await store.record_attempt(
                "w", DeliveryAttempt(d.event_id, at, "failed", 500, "HTTP 500", endpoint_state="failing")
            )
        await store.close()

    asyncio.run(arrange())
    listed = honnin(tmp_path, "webhooks", "list").stdout.strip().split("\t")
    assert listed == [
        "facility-1",
        "failing",
        "2",
        at.isoformat(timespec="seconds"),
        "500",
        "https://hooks.example/h",
    ]
    assert "whsec_" not in honnin(tmp_path, "webhooks", "list").stdout
    since = (at + timedelta(minutes=30)).isoformat()
    replayed = honnin(tmp_path, "webhooks", "replay", "--facility", "facility-1", "--since", since)
    assert replayed.stdout.strip() == "facility-1: 1 deliveries due again"
    assert honnin(tmp_path, "webhooks", "list").stdout.split("\t")[1] == "active"
    unknown = honnin(tmp_path, "webhooks", "replay", "--facility", "nobody", check=False)
    assert unknown.returncode != 0
    assert "no webhook endpoint" in unknown.stderr
    bad = honnin(
        tmp_path, "webhooks", "replay", "--facility", "facility-1", "--since", "yesterday", check=False
    )
    assert bad.returncode == 2
