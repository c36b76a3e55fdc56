"""The Store port's contract, written once and run against every store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.store.codec import Sealer
from orchestrator.errors import (
    DuplicateEventError,
    PermanentError,
    StoreUnavailableError,
    VersionConflictError,
)
from orchestrator.model import Registration, State
from orchestrator.ports import Commit, HistoryEntry, OutboxMessage, Store
from schemas.payloads import ApplicantInfo
from tests import factory
from tests.conftest import require
from tests.contract.stores import KINDS, dispose, open_store

NOW = factory.NOW


def _param(kind: str):
    marks = [pytest.mark.integration] if kind == "mongodb" else []
    return pytest.param(kind, marks=marks, id=kind)


@pytest.fixture(params=[_param(k) for k in KINDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path, sealer: Sealer) -> AsyncIterator[Store]:
    try:
        opened = await open_store(request.param, tmp_path, sealer)
    except StoreUnavailableError as exc:  # pragma: no cover - MongoDB named but not reachable
        require("MongoDB", exc.message)
    yield opened
    await dispose(opened)


def registration(
    rid: str = "reg-00000001", state: State = State.INFO_ENTERED, **changes: object
) -> Registration:
    base = Registration(
        id=rid,
        profile="facility",
        facility_id="facility-1",
        state=state,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        applicant=ApplicantInfo.model_validate(factory.APPLICANT),
    )
    return base.model_copy(update=changes)


def commit(
    event_id: str,
    reg: Registration | None,
    expected: int,
    *,
    rid: str = "reg-00000001",
    outbox: tuple[str, ...] = (),
    outcome: str = "applied",
    at_offset: int = 0,
) -> Commit:
    at = NOW + timedelta(seconds=at_offset)
    history = HistoryEntry(
        registration_id=rid,
        event_id=event_id,
        event_type="registration.started",
        source="web",
        occurred_at=at,
        recorded_at=at,
        outcome=outcome,  # type: ignore[arg-type]
        from_state="new",
        to_state=reg.state.value if reg else "new",
        code=None if outcome == "applied" else "event_not_accepted",
        event=f'{{"event_id": "{event_id}"}}'.encode(),
    )
    messages = [
        OutboxMessage(
            message_id=m,
            routing_key="registration.activated",
            registration_id=rid,
            body=m.encode(),
            created_at=at,
        )
        for m in outbox
    ]
    return Commit(event_id, rid, expected, reg, history, messages)


async def test_a_new_registration_is_saved_at_version_1_and_loads_back(store: Store) -> None:
    version = await store.commit(commit("e1", registration(), 0))
    loaded = await store.load("reg-00000001")
    assert version == 1
    assert loaded is not None
    assert loaded.version == 1
    assert loaded.registration == registration()
    assert await store.load("reg-missing-1") is None


async def test_each_commit_bumps_the_version_and_a_stale_one_conflicts(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    assert await store.commit(commit("e2", registration(state=State.CARD_READ), 1)) == 2
    with pytest.raises(VersionConflictError):
        await store.commit(commit("e3", registration(state=State.CONFIRMED), 1))
    loaded = await store.load("reg-00000001")
    assert loaded is not None
    assert (loaded.version, loaded.registration.state) == (2, State.CARD_READ)
    assert not await store.is_processed("e3"), "a conflicting commit must leave no trace"


async def test_creating_an_existing_registration_conflicts(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    with pytest.raises(VersionConflictError):
        await store.commit(commit("e2", registration(), 0))


async def test_an_event_id_is_processed_once(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1",)))
    assert await store.is_processed("e1")
    with pytest.raises(DuplicateEventError):
        await store.commit(commit("e1", registration(state=State.CARD_READ), 1, outbox=("m2",)))
    loaded = await store.load("reg-00000001")
    assert loaded is not None
    assert loaded.version == 1
    claimed = await store.claim_outbox("w1", NOW, 30, 10)
    assert [m.message_id for m in claimed] == ["m1"], "a duplicate commit writes no outbox row"
    assert len(await store.history("reg-00000001")) == 1


async def test_a_refusal_records_history_without_touching_the_registration(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    version = await store.commit(commit("e2", None, 1, outcome="rejected", outbox=("rej",)))
    loaded = await store.load("reg-00000001")
    assert version == 1
    assert loaded is not None
    assert loaded.version == 1
    assert [h.outcome for h in await store.history("reg-00000001")] == ["applied", "rejected"]
    with pytest.raises(VersionConflictError):
        await store.commit(commit("e3", None, 7, outcome="rejected"))


async def test_a_refusal_for_a_registration_that_does_not_exist_is_recorded(store: Store) -> None:
    await store.commit(commit("e1", None, 0, rid="reg-unknown-1", outcome="rejected"))
    assert await store.load("reg-unknown-1") is None
    assert [h.event_id for h in await store.history("reg-unknown-1")] == ["e1"]
    assert await store.is_processed("e1")


async def test_history_comes_back_in_order_with_the_event(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    await store.commit(commit("e2", registration(state=State.CARD_READ), 1, at_offset=1))
    await store.commit(commit("e3", None, 2, outcome="rejected", at_offset=2))
    entries = await store.history("reg-00000001")
    assert [e.event_id for e in entries] == ["e1", "e2", "e3"]
    assert entries[1].event == b'{"event_id": "e2"}'
    assert entries[2].code == "event_not_accepted"
    assert entries[0].recorded_at == NOW


async def test_due_lists_open_registrations_whose_deadline_passed(store: Store) -> None:
    await store.commit(
        commit(
            "e1", registration("reg-early-01", expires_at=NOW + timedelta(minutes=1)), 0, rid="reg-early-01"
        )
    )
    await store.commit(
        commit(
            "e2", registration("reg-later-01", expires_at=NOW + timedelta(minutes=10)), 0, rid="reg-later-01"
        )
    )
    ended = registration("reg-ended-01", state=State.ACTIVATED, expires_at=NOW, ended_at=NOW)
    await store.commit(commit("e3", ended, 0, rid="reg-ended-01"))
    assert await store.due(NOW, 10) == []
    assert await store.due(NOW + timedelta(minutes=5), 10) == ["reg-early-01"]
    assert await store.due(NOW + timedelta(hours=1), 10) == ["reg-early-01", "reg-later-01"]
    assert await store.due(NOW + timedelta(hours=1), 1) == ["reg-early-01"]


async def test_the_outbox_is_leased_in_order_and_marked_sent(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1", "m2")))
    await store.commit(commit("e2", registration(state=State.CARD_READ), 1, outbox=("m3",), at_offset=1))
    assert await store.outbox_backlog() == 3
    first = await store.claim_outbox("w1", NOW, 30, 2)
    assert [m.message_id for m in first] == ["m1", "m2"]
    assert first[0].body == b"m1"
    other = await store.claim_outbox("w2", NOW, 30, 10)
    assert [m.message_id for m in other] == ["m3"], "w1's lease keeps w2 off m1 and m2"
    again = await store.claim_outbox("w1", NOW, 30, 10)
    assert [m.message_id for m in again] == ["m1", "m2"], "a worker sees its own leases again"
    await store.mark_sent(["m1"], NOW)
    assert await store.outbox_backlog() == 2
    after_lease = await store.claim_outbox("w2", NOW + timedelta(seconds=31), 30, 10)
    assert [m.message_id for m in after_lease] == ["m2", "m3"], "an expired lease is free again"


async def test_purge_forgets_ended_registrations_but_not_activated_ones(store: Store) -> None:
    expired = registration("reg-expired1", state=State.EXPIRED, ended_at=NOW)
    activated = registration("reg-active-1", state=State.ACTIVATED, ended_at=NOW)
    await store.commit(commit("e1", expired, 0, rid="reg-expired1", outbox=("m1",)))
    await store.commit(commit("e2", activated, 0, rid="reg-active-1"))
    await store.mark_sent(["m1"], NOW)
    assert await store.purge_ended(NOW, 10) == 0, "not older than the cut-off yet"
    assert await store.purge_ended(NOW + timedelta(days=1), 10) == 1
    assert await store.load("reg-expired1") is None
    assert await store.history("reg-expired1") == []
    assert await store.load("reg-active-1") is not None
    assert await store.is_processed("e1"), "deduplication outlives the purge"


async def test_an_outbox_id_written_twice_is_a_permanent_error_and_leaves_no_trace(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1",)))
    with pytest.raises(PermanentError) as collided:
        await store.commit(commit("e2", registration(state=State.CARD_READ), 1, outbox=("m1",)))
    assert collided.value.code == "outbox_collision"
    assert not await store.is_processed("e2")
    loaded = await store.load("reg-00000001")
    assert loaded is not None
    assert loaded.version == 1


async def test_registrations_are_listed_by_state_least_recently_changed_first(store: Store) -> None:
    later = registration("reg-later-01", state=State.CONFIRMED, updated_at=NOW + timedelta(minutes=5))
    await store.commit(commit("e1", later, 0, rid="reg-later-01"))
    await store.commit(
        commit("e2", registration("reg-early-01", state=State.CONFIRMED), 0, rid="reg-early-01")
    )
    await store.commit(commit("e3", registration("reg-other-01"), 0, rid="reg-other-01"))
    assert await store.in_state("confirmed", 10) == ["reg-early-01", "reg-later-01"]
    assert await store.in_state("confirmed", 1) == ["reg-early-01"]
    assert await store.in_state("activated", 10) == []
