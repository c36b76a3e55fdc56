"""The Store port's operator listings on every store: filters served from the listing columns, a
keyset cursor that walks every row once (while rows change), counts, the audit, and old rows that
gain their columns through `migrate`."""

from __future__ import annotations

import json
from datetime import timedelta

from adapters.store.codec import Sealer
from orchestrator.listing import AuditRecord, RegistrationQuery
from orchestrator.model import Registration, State, Verification
from orchestrator.ports import Store
from tests.contract.stores import Raw
from tests.contract.test_store_contract import NOW, commit, registration


def parked(rid: str, code: str, minutes: int, **changes: object) -> Registration:
    verification = Verification(attempt=1, status="parked", retries=2, code=code, decided_at=NOW)
    at = NOW + timedelta(minutes=minutes)
    return registration(
        rid, State.CONFIRMED, verification=verification, created_at=at, updated_at=at, **changes
    )


async def ids(store: Store, query: RegistrationQuery) -> list[str]:
    return [r.id for r in await store.registrations(query, None, 1000)]


async def five(store: Store) -> None:
    rows = [
        parked("reg-aaaaaaa1", "42", 1),
        parked("reg-aaaaaaa2", "44", 2, facility_id="facility-2"),
        parked("reg-aaaaaaa3", "42", 3, profile="xid"),
        registration("reg-aaaaaaa4", State.ACTIVATED, created_at=NOW + timedelta(minutes=4)),
        registration("reg-aaaaaaa5", created_at=NOW + timedelta(minutes=5)),
    ]
    for n, reg in enumerate(rows):
        await store.commit(commit(f"e{n}", reg, 0, rid=reg.id))


async def test_each_filter_is_answered_from_the_listing_columns_in_creation_order(store: Store) -> None:
    await five(store)
    assert await ids(store, RegistrationQuery()) == [f"reg-aaaaaaa{n}" for n in range(1, 6)]
    assert await ids(store, RegistrationQuery(state="confirmed", verification="parked", code="42")) == [
        "reg-aaaaaaa1",
        "reg-aaaaaaa3",
    ]
    assert await ids(store, RegistrationQuery(code="44")) == ["reg-aaaaaaa2"]
    assert await ids(store, RegistrationQuery(facility_id="facility-2")) == ["reg-aaaaaaa2"]
    assert await ids(store, RegistrationQuery(profile="xid")) == ["reg-aaaaaaa3"]
    assert await ids(store, RegistrationQuery(state="activated")) == ["reg-aaaaaaa4"]
    window = RegistrationQuery(
        created_after=NOW + timedelta(minutes=2), created_before=NOW + timedelta(minutes=4)
    )
    assert await ids(store, window) == ["reg-aaaaaaa2", "reg-aaaaaaa3"]
    older = RegistrationQuery(updated_before=NOW + timedelta(minutes=3))
    assert await ids(store, older) == ["reg-aaaaaaa1", "reg-aaaaaaa2", "reg-aaaaaaa4", "reg-aaaaaaa5"]
    [row] = await store.registrations(RegistrationQuery(code="44"))
    assert (row.state, row.verification, row.code, row.retries, row.version) == (
        "confirmed",
        "parked",
        "44",
        2,
        1,
    )
    assert (row.facility_id, row.profile, row.reference) == ("facility-2", "facility", "reg-aaaaaaa2")


async def test_a_cursor_walks_every_row_exactly_once_while_rows_change(store: Store) -> None:
    rids = [f"reg-page{n:05d}" for n in range(23)]
    for n, rid in enumerate(rids):  # three rows share each creation time: ties break by id
        reg = registration(rid, created_at=NOW + timedelta(seconds=n // 3))
        await store.commit(commit(f"e{n}", reg, 0, rid=rid))
    seen: list[str] = []
    after = None
    while page := await store.registrations(RegistrationQuery(), after, 4):
        seen += [r.id for r in page]
        after = page[-1].cursor
        if len(seen) < len(rids):  # a row not seen yet moves on meanwhile (its updated_at changes)
            ahead = rids.index(seen[-1]) + 1
            rid = rids[ahead]
            later = NOW + timedelta(hours=1)
            moved = registration(rid, State.CARD_READ, created_at=NOW + timedelta(seconds=ahead // 3))
            await store.commit(commit(f"m-{rid}", moved.model_copy(update={"updated_at": later}), 1, rid=rid))
    assert seen == rids, "every row once, in order"
    assert len(await ids(store, RegistrationQuery(state="card_read"))) == 5


async def test_counts_by_state_verification_and_code(store: Store) -> None:
    await five(store)
    counts = await store.registration_counts()
    assert counts.by_state == {"confirmed": 3, "activated": 1, "info_entered": 1}
    assert counts.by_verification == {"parked": 3}
    assert counts.by_code == {"42": 2, "44": 1}
    assert counts.unindexed == 0


async def test_a_pass_after_a_retry_carries_no_code(store: Store) -> None:
    passed = Verification(attempt=1, status="passed", retries=1, code="42", decided_at=NOW)
    await store.commit(commit("e1", registration(state=State.SIGNATURE_VERIFIED, verification=passed), 0))
    assert (await store.registration_counts()).by_code == {}
    [row] = await store.registrations(RegistrationQuery(verification="passed"))
    assert row.code is None


async def test_the_audit_keeps_who_what_when_and_how_many_newest_first(store: Store) -> None:
    for n, who in enumerate(("alice", "bob", "alice")):
        record = AuditRecord(
            who,
            "replay",
            NOW + timedelta(seconds=n),
            {"code": "42", "registration_ids": ["reg-1"], "n": n},
            affected=n,
            dry_run=n == 0,
            channel="http" if who == "bob" else "cli",
        )
        assert await store.add_audit(record) > 0
    records = await store.audit_records()
    assert [(r.operator, r.affected, r.dry_run, r.channel) for r in records] == [
        ("alice", 2, False, "cli"),
        ("bob", 1, False, "http"),
        ("alice", 0, True, "cli"),
    ]
    assert records[0].parameters == {"code": "42", "registration_ids": ["reg-1"], "n": 2}
    assert records[0].at == NOW + timedelta(seconds=2)
    assert [r.affected for r in await store.audit_records(records[0].id, 10)] == [1, 0]
    assert [r.affected for r in await store.audit_records(operator="alice")] == [2, 0]
    assert [r.affected for r in await store.audit_records(limit=1)] == [2]


async def test_rows_written_before_the_listing_columns_are_counted_then_migrated(
    store: Store, sealer: Sealer
) -> None:
    await five(store)
    old = parked("reg-old00001", "42", 9)
    doc = json.loads(old.model_dump_json())
    await Raw(store).insert_registration(
        old.id, sealer.seal(json.dumps(doc).encode(), f"registration:{old.id}"), state="confirmed"
    )
    counts = await store.registration_counts()
    assert counts.unindexed == 1
    assert counts.by_state["confirmed"] == 4, "its state column is older than the listing"
    assert "reg-old00001" not in await ids(store, RegistrationQuery())

    dry = await store.migrate("", 100, dry_run=True)
    assert (dry.scanned, dry.rewritten) == (1, 1)
    assert (await store.registration_counts()).unindexed == 1, "a dry run writes nothing"
    done = await store.migrate("", 100, dry_run=False)
    assert (done.scanned, done.rewritten, done.changed) == (1, 1, 0)
    assert (await store.registration_counts()).unindexed == 0
    assert await ids(store, RegistrationQuery(verification="parked", code="42")) == [
        "reg-aaaaaaa1",
        "reg-aaaaaaa3",
        "reg-old00001",
    ]
    assert (await store.migrate("", 100, dry_run=False)).scanned == 0, "idempotent"
