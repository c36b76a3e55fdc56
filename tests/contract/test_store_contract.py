"""The Store port's contract, written once and run against every store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from orchestrator.errors import (
    DuplicateEventError,
    PermanentError,
    VersionConflictError,
)
from orchestrator.model import Registration, State
from orchestrator.ports import Commit, HistoryEntry, OutboxLease, OutboxMessage, Store
from schemas.payloads import ApplicantInfo
from tests import factory

NOW = factory.NOW


def registration(
    rid: str = "reg-00000001", state: State = State.INFO_ENTERED, **changes: object
) -> Registration:
    base = Registration(
        id=rid,
        reference=rid,
        profile="facility",
        facility_id="facility-1",
        state=state,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        applicant=ApplicantInfo.model_validate(factory.APPLICANT),
    )
    return base.model_copy(update=changes)


def outbox_body(message_id: str) -> bytes:
    """Outbox bodies are envelopes: the store checks they are JSON at a version it knows."""
    return f'{{"event_id": "{message_id}", "schema_version": 1}}'.encode()


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
            body=outbox_body(m),
            created_at=at,
        )
        for m in outbox
    ]
    return Commit(event_id, rid, expected, reg, history, messages)


async def test_a_new_registration_is_saved_at_version_1_and_loads_back(store: Store) -> None:
    version = (await store.commit(commit("e1", registration(), 0))).version
    loaded = await store.load("reg-00000001")
    assert version == 1
    assert loaded is not None
    assert loaded.version == 1
    assert loaded.registration == registration()
    assert await store.load("reg-missing-1") is None


async def test_each_commit_bumps_the_version_and_a_stale_one_conflicts(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    assert (await store.commit(commit("e2", registration(state=State.CARD_READ), 1))).version == 2
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


async def test_loading_for_an_event_says_in_one_read_whether_it_was_processed(store: Store) -> None:
    assert await store.load_for_event("reg-00000001", "e1") is None, "nothing yet, nothing processed"
    await store.commit(commit("e1", registration(), 0))
    with pytest.raises(DuplicateEventError):
        await store.load_for_event("reg-00000001", "e1")
    loaded = await store.load_for_event("reg-00000001", "e2")
    assert loaded == await store.load("reg-00000001")
    assert loaded is not None
    assert (loaded.version, loaded.registration.state) == (1, State.INFO_ENTERED)
    await store.commit(commit("e2", registration(state=State.CARD_READ), 1))
    with pytest.raises(DuplicateEventError):
        await store.load_for_event("reg-00000001", "e2")
    again = await store.load_for_event("reg-00000001", "e3")
    assert again is not None
    assert (again.version, again.registration.state) == (2, State.CARD_READ)
    with pytest.raises(DuplicateEventError):
        await store.load_for_event("reg-unknown-2", "e1")  # an event id is processed store-wide


async def test_a_refusal_records_history_without_touching_the_registration(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    version = (await store.commit(commit("e2", None, 1, outcome="rejected", outbox=("rej",)))).version
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
    other_registration = registration("reg-other-01")
    await store.commit(commit("e3", other_registration, 0, rid="reg-other-01", outbox=("o1",), at_offset=2))
    assert await store.outbox_backlog() == 4
    first = await store.claim_outbox("w1", NOW, 30, 2)
    assert [m.message_id for m in first] == ["m1", "m2"]
    assert first[0].body == outbox_body("m1")
    other = await store.claim_outbox("w2", NOW, 30, 10)
    assert [m.message_id for m in other] == ["o1"], "w1's lease keeps w2 off m1, m2 and m3 behind them"
    again = await store.claim_outbox("w1", NOW, 30, 10)
    assert [m.message_id for m in again] == ["m1", "m2", "m3"], "a worker sees its own leases again"
    await store.mark_sent(["m1", "o1"], NOW)
    assert await store.outbox_backlog() == 2
    after_lease = await store.claim_outbox("w2", NOW + timedelta(seconds=31), 30, 10)
    assert [m.message_id for m in after_lease] == ["m2", "m3"], "an expired lease is free again"


async def test_a_commit_takes_its_lease_only_behind_its_own_workers_unsent_messages(store: Store) -> None:
    """The direct path may publish a commit's messages only if nothing earlier of the registration
    waits elsewhere: a message another worker holds, one held back after a refusal, one a stopped
    worker left. Otherwise the rows are written free, and no relay claims them before the earlier
    one is sent. Behind the same worker's own unsent messages the lease is taken, naming them."""
    lease_a = OutboxLease("wa", NOW + timedelta(seconds=30))
    lease_b = OutboxLease("wb", NOW + timedelta(seconds=30))
    first = await store.commit(replace(commit("e1", registration(), 0, outbox=("m1",)), lease=lease_a))
    assert first.leased, "nothing earlier: the committing worker publishes m1 itself"
    second = commit("e2", registration(state=State.CARD_READ), 1, outbox=("m2",), at_offset=1)
    later = await store.commit(replace(second, lease=lease_b))
    assert (later.version, later.leased) == (2, False), "m1 is unsent: m2 waits behind it"
    assert await store.claim_outbox("wb", NOW, 30, 10) == [], "m2 is not claimed while wa holds m1"
    assert [m.message_id for m in await store.claim_outbox("wa", NOW, 30, 10)] == ["m1", "m2"]
    await store.defer_outbox(["m1"], NOW + timedelta(seconds=5))  # its publish was refused
    assert await store.claim_outbox("wa", NOW + timedelta(seconds=1), 30, 10) == []
    assert await store.claim_outbox("wb", NOW + timedelta(seconds=1), 30, 10) == []
    claimed = await store.claim_outbox("wa", NOW + timedelta(seconds=6), 30, 10)
    assert [m.message_id for m in claimed] == ["m1", "m2"], "once the hold passes, in order"
    await store.mark_sent(["m1", "m2"], NOW + timedelta(seconds=6))
    third = commit("e3", registration(state=State.CONFIRMED), 2, outbox=("m3",), at_offset=7)
    assert (await store.commit(replace(third, lease=lease_a))).leased, "all sent: direct again"
    fourth = commit("e4", registration(state=State.CONFIRMED), 3, outbox=("m4",), at_offset=8)
    behind_own = await store.commit(replace(fourth, lease=lease_a))
    assert (behind_own.leased, behind_own.behind) == (True, ("m3",)), "m3 is wa's own: m4 follows it"
    refusal = commit("e5", None, 4, outcome="rejected", outbox=("m5",), at_offset=9)
    assert not (await store.commit(refusal)).leased, "no lease asked, none taken"


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


# -- the outbound half: feed, webhook endpoints, deliveries, deferred outbox rows ------------------


def heard(event_id: str, facility: str = "facility-1", rid: str = "reg-00000001", at_offset: int = 0):
    from orchestrator.ports import FacilityEvent

    body = f'{{"event_id": "{event_id}", "type": "registration.cancelled"}}'.encode()
    return FacilityEvent(
        facility, event_id, "registration.cancelled", rid, body, NOW + timedelta(seconds=at_offset)
    )


def with_events(base: Commit, *events) -> Commit:
    from dataclasses import replace

    return replace(base, facility_events=tuple(events))


def endpoint(facility: str = "facility-1", **changes: object):
    from orchestrator.ports import WebhookEndpoint

    base = WebhookEndpoint(facility, f"https://{facility}.example/hook", f"whsec_{facility}", NOW, NOW)
    from dataclasses import replace

    return replace(base, **changes)


async def test_a_commit_writes_its_facility_events_to_the_feed_in_commit_order(store: Store) -> None:
    await store.commit(with_events(commit("e1", registration(), 0), heard("f1"), heard("f2")))
    other = registration("reg-other-01", facility_id="facility-2")
    await store.commit(with_events(commit("e2", other, 0, rid="reg-other-01"), heard("g1", "facility-2")))
    await store.commit(with_events(commit("e3", None, 1, outcome="rejected"), heard("f3", at_offset=1)))
    feed = await store.feed("facility-1", 0, 10)
    assert [e.event_id for e in feed] == ["f1", "f2", "f3"]
    assert feed[0].body == heard("f1").body
    assert (feed[0].event_type, feed[0].registration_id, feed[0].created_at) == (
        "registration.cancelled",
        "reg-00000001",
        NOW,
    )
    assert feed[0].seq < feed[1].seq < feed[2].seq
    assert [e.event_id for e in await store.feed("facility-1", feed[0].seq, 10)] == ["f2", "f3"]
    assert [e.event_id for e in await store.feed("facility-1", 0, 2)] == ["f1", "f2"]
    assert [e.event_id for e in await store.feed("facility-2", 0, 10)] == ["g1"]
    assert await store.feed("facility-3", 0, 10) == []


async def test_a_failed_commit_writes_no_feed_row_and_no_delivery(store: Store) -> None:
    await store.put_webhook(endpoint())
    await store.commit(commit("e1", registration(), 0))
    with pytest.raises(VersionConflictError):
        await store.commit(with_events(commit("e2", registration(state=State.CANCELLED), 0), heard("f1")))
    with pytest.raises(DuplicateEventError):
        await store.commit(with_events(commit("e1", registration(state=State.CANCELLED), 1), heard("f2")))
    assert await store.feed("facility-1", 0, 10) == []
    assert await store.delivery_backlog() == 0


async def test_a_delivery_is_written_only_when_the_facility_has_an_endpoint(store: Store) -> None:
    await store.commit(with_events(commit("e1", registration(), 0), heard("f1")))
    assert await store.delivery_backlog() == 0, "no endpoint at commit time: the feed only"
    await store.put_webhook(endpoint())
    await store.commit(with_events(commit("e2", registration(state=State.CANCELLED), 1), heard("f2")))
    assert await store.delivery_backlog() == 1
    assert await store.delivery_backlog("facility-1") == 1
    assert await store.delivery_backlog("facility-2") == 0
    [claimed] = await store.claim_deliveries("w1", NOW, 30, 10, 4)
    assert (claimed.event_id, claimed.body, claimed.attempts) == ("f2", heard("f2").body, 0)
    assert claimed.endpoint.secret == "whsec_facility-1"
    assert claimed.scheduled_from == NOW


async def test_an_endpoint_round_trips_with_its_sealed_secrets_and_can_be_replaced(store: Store) -> None:
    assert await store.webhook("facility-1") is None
    await store.put_webhook(endpoint())
    await store.put_webhook(endpoint("facility-2", state="failing"))
    assert await store.webhook("facility-1") == endpoint()
    rotated = endpoint(
        url="https://new.example/hook",
        secret="whsec_new",
        previous_secret="whsec_facility-1",
        previous_until=NOW + timedelta(hours=24),
        updated_at=NOW + timedelta(minutes=1),
    )
    await store.put_webhook(rotated)
    assert await store.webhook("facility-1") == rotated
    assert [e.facility_id for e in await store.webhooks()] == ["facility-1", "facility-2"]
    assert (await store.webhook("facility-2")).state == "failing"  # type: ignore[union-attr]


async def test_deleting_an_endpoint_drops_its_undelivered_deliveries_but_not_the_feed(store: Store) -> None:
    await store.put_webhook(endpoint())
    await store.commit(with_events(commit("e1", registration(), 0), heard("f1")))
    assert await store.delete_webhook("facility-1")
    assert not await store.delete_webhook("facility-1")
    assert await store.webhook("facility-1") is None
    assert await store.delivery_backlog() == 0
    assert [e.event_id for e in await store.feed("facility-1", 0, 10)] == ["f1"]


async def test_a_test_delivery_carries_its_own_body_and_needs_an_endpoint(store: Store) -> None:
    assert not await store.add_delivery(heard("t1", rid=None))  # type: ignore[arg-type]
    await store.put_webhook(endpoint())
    assert await store.add_delivery(heard("t1", rid=None))  # type: ignore[arg-type]
    [claimed] = await store.claim_deliveries("w1", NOW, 30, 10, 4)
    assert (claimed.event_id, claimed.body) == ("t1", heard("t1").body)
    assert await store.feed("facility-1", 0, 10) == [], "a test event is not a feed event"


async def test_deliveries_are_leased_and_bounded_per_endpoint_across_workers(store: Store) -> None:
    await store.put_webhook(endpoint())
    for i in range(5):
        await store.add_delivery(heard(f"d{i}", at_offset=i))
    first = await store.claim_deliveries("w1", NOW + timedelta(seconds=9), 30, 10, 2)
    assert [d.event_id for d in first] == ["d0", "d1"], "oldest first, two in flight at most"
    assert await store.claim_deliveries("w2", NOW + timedelta(seconds=9), 30, 10, 2) == []
    assert await store.claim_deliveries("w1", NOW + timedelta(seconds=9), 30, 10, 3) != []
    expired = await store.claim_deliveries("w2", NOW + timedelta(seconds=60), 30, 10, 5)
    assert {d.event_id for d in expired} == {"d0", "d1", "d2", "d3", "d4"}, "expired leases are free"


async def test_claiming_is_fair_between_endpoints_and_skips_what_is_not_due(store: Store) -> None:
    await store.put_webhook(endpoint())
    await store.put_webhook(endpoint("facility-2"))
    for i in range(6):
        await store.add_delivery(heard(f"a{i}", at_offset=i))
    await store.add_delivery(heard("b0", "facility-2", at_offset=5))
    await store.add_delivery(heard("later", "facility-2", at_offset=100))
    claimed = await store.claim_deliveries("w1", NOW + timedelta(seconds=10), 30, 2, 4)
    assert sorted(d.event_id for d in claimed) == ["a0", "b0"], "each endpoint gets its turn"


async def test_an_attempt_reschedules_delivers_or_stops_the_endpoint(store: Store) -> None:
    from orchestrator.ports import DeliveryAttempt

    await store.put_webhook(endpoint())
    await store.add_delivery(heard("d1"))
    await store.add_delivery(heard("d2"))
    assert len(await store.claim_deliveries("w1", NOW, 30, 10, 4)) == 2
    later = NOW + timedelta(minutes=1)
    await store.record_attempt("w2", DeliveryAttempt("d1", NOW, "delivered", 200, None))  # not its lease
    await store.record_attempt("w1", DeliveryAttempt("d1", NOW, "pending", 500, "HTTP 500", later))
    await store.record_attempt("w1", DeliveryAttempt("d2", NOW, "delivered", 204, None))
    shown = await store.webhook("facility-1")
    assert shown is not None
    assert (shown.last_status, shown.last_delivered_at, shown.state) == (204, NOW, "active")
    assert await store.delivery_backlog() == 1
    assert await store.claim_deliveries("w1", NOW + timedelta(seconds=59), 30, 10, 4) == []
    [again] = await store.claim_deliveries("w1", later, 30, 10, 4)
    assert (again.event_id, again.attempts) == ("d1", 1)
    await store.record_attempt(
        "w1", DeliveryAttempt("d1", later, "failed", 500, "HTTP 500", endpoint_state="failing")
    )
    assert (await store.webhook("facility-1")).state == "failing"  # type: ignore[union-attr]
    await store.add_delivery(heard("d3", at_offset=120))
    assert await store.claim_deliveries("w1", NOW + timedelta(hours=1), 30, 10, 4) == [], (
        "a failing endpoint waits"
    )


async def test_a_replay_makes_undelivered_deliveries_due_on_a_fresh_schedule(store: Store) -> None:
    from orchestrator.ports import DeliveryAttempt

    await store.put_webhook(endpoint())
    await store.add_delivery(heard("old", at_offset=0))
    await store.add_delivery(heard("new", at_offset=60))
    await store.add_delivery(heard("done", at_offset=61))
    for d in await store.claim_deliveries("w1", NOW + timedelta(seconds=61), 30, 10, 4):
        state = "delivered" if d.event_id == "done" else "failed"
        await store.record_attempt(
            "w1",
            DeliveryAttempt(d.event_id, NOW, state, 500, None, endpoint_state="failing"),  # type: ignore[arg-type]
        )
    replay_at = NOW + timedelta(days=4)
    assert await store.replay_deliveries("facility-1", NOW + timedelta(seconds=30), replay_at) == 1
    assert (await store.webhook("facility-1")).state == "active"  # type: ignore[union-attr]
    [due] = await store.claim_deliveries("w1", replay_at, 30, 10, 4)
    assert (due.event_id, due.attempts, due.scheduled_from) == ("new", 0, replay_at)
    assert await store.replay_deliveries("facility-1", None, replay_at) == 2, "without since: every one"


async def test_purging_forgets_old_feed_events_and_those_of_purged_registrations(store: Store) -> None:
    await store.put_webhook(endpoint())
    activated = registration(state=State.ACTIVATED, ended_at=NOW)
    await store.commit(with_events(commit("e1", activated, 0), heard("f1")))
    cancelled = registration("reg-cancel-1", state=State.CANCELLED, ended_at=NOW)
    later = heard("f2", rid="reg-cancel-1", at_offset=3600)
    await store.commit(with_events(commit("e2", cancelled, 0, rid="reg-cancel-1"), later))
    assert await store.purge_feed(NOW, 10) == 0
    assert await store.purge_feed(NOW + timedelta(seconds=1), 10) == 1
    assert [e.event_id for e in await store.feed("facility-1", 0, 10)] == ["f2"]
    assert await store.delivery_backlog() == 1
    assert await store.purge_ended(NOW + timedelta(seconds=1), 10) == 1
    assert await store.feed("facility-1", 0, 10) == []
    assert await store.delivery_backlog() == 0


async def test_a_deferred_outbox_row_holds_back_its_registration_until_its_time(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1", "m2")))
    other = registration("reg-other-01")
    await store.commit(commit("e2", other, 0, rid="reg-other-01", outbox=("o1",), at_offset=1))
    await store.claim_outbox("w1", NOW, 30, 10)
    await store.defer_outbox(["m1"], NOW + timedelta(seconds=5))
    await store.commit(commit("e3", registration(state=State.CARD_READ), 1, outbox=("m3",), at_offset=2))
    claimed = await store.claim_outbox("w1", NOW + timedelta(seconds=3), 30, 10)
    assert [m.message_id for m in claimed] == ["o1"], "m2 and m3 wait behind the deferred m1"
    assert await store.outbox_backlog() == 4
    after = await store.claim_outbox("w1", NOW + timedelta(seconds=6), 30, 10)
    assert [m.message_id for m in after] == ["m1", "m2", "o1", "m3"]


async def test_a_worker_gives_back_its_leases_and_only_its_own(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1", "m2")))
    other = registration("reg-other-01")
    await store.commit(commit("e2", other, 0, rid="reg-other-01", outbox=("o1",), at_offset=1))
    third = registration("reg-third-01")
    await store.commit(commit("e3", third, 0, rid="reg-third-01", outbox=("t1",), at_offset=2))
    assert len(await store.claim_outbox("w1", NOW, 30, 2)) == 2  # m1, m2
    assert [m.message_id for m in await store.claim_outbox("w2", NOW, 30, 1)] == ["o1"]
    assert [m.message_id for m in await store.claim_outbox("w1", NOW, 30, 10)] == ["m1", "m2", "t1"]
    await store.mark_sent(["m1"], NOW)
    await store.defer_outbox(["t1"], NOW + timedelta(seconds=5))  # held back: nobody's lease
    assert await store.release_outbox("w1") == 1, "m2 only: m1 is sent, t1 held, o1 is w2's"
    assert await store.release_outbox("w1") == 0
    assert [m.message_id for m in await store.claim_outbox("w3", NOW, 30, 10)] == ["m2"]
