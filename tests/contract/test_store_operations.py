"""The Store port's operator half, on every store: the quarantine, schema versions and migrations,
dead letters, history in commit order, and id collisions in batches."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from adapters.store.codec import Sealer
from orchestrator import versions
from orchestrator.errors import (
    ConfigurationError,
    DuplicateEventError,
    PermanentError,
    QuarantinedError,
)
from orchestrator.model import State
from orchestrator.ports import BusMessage, DeadLetter, Store
from tests.contract.stores import Raw, open_store
from tests.contract.test_store_contract import (
    NOW,
    commit,
    endpoint,
    heard,
    outbox_body,
    registration,
    with_events,
)

RID = "reg-00000001"


async def two_registrations(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1",)))
    other = registration("reg-00000002", expires_at=NOW + timedelta(minutes=1))
    await store.commit(commit("e2", other, 0, rid="reg-00000002", outbox=("m2",)))


# -- the quarantine ---------------------------------------------------------------------------------


async def test_a_tampered_registration_is_moved_aside_and_the_rest_still_reads(store: Store) -> None:
    await two_registrations(store)
    tampered = registration(expires_at=NOW)  # due now: the sweeper would meet it
    await store.commit(commit("e3", tampered, 1, at_offset=1))
    await Raw(store).tamper("registration", RID)
    assert await store.due(NOW + timedelta(minutes=5), 10) == [RID, "reg-00000002"]

    with pytest.raises(QuarantinedError):
        await store.load(RID)
    with pytest.raises(QuarantinedError):
        await store.load(RID)  # again: from the quarantine, not a second entry
    with pytest.raises(QuarantinedError):
        await store.load_for_event(RID, "e-new")  # an event's read meets the quarantine too
    with pytest.raises(DuplicateEventError):
        await store.load_for_event(RID, "e3")  # processed: a duplicate before anything decodes
    assert (await store.load("reg-00000002")) is not None
    assert await store.due(NOW + timedelta(minutes=5), 10) == ["reg-00000002"], "no longer swept"
    [entry] = await store.list_quarantine()
    assert (entry.kind, entry.key) == ("registration", RID)
    assert "wrong key or tampered" in entry.reason
    assert await store.quarantine_count() == 1
    assert await store.quarantine_count("history") == 0
    assert RID in entry.raw
    assert all(fact not in entry.raw for fact in ("公的", "hanako")), "blobs stay sealed in the quarantine"
    assert await store.quarantined(entry.id) == entry


async def test_an_unknown_schema_version_is_quarantined_and_released_once_the_code_knows_it(
    store: Store, sealer: Sealer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await two_registrations(store)
    newer = {"schema_version": 3, **registration().model_dump(mode="json"), "field_of_v3": True}
    await Raw(store).set_blob(
        "registration", RID, sealer.seal(json.dumps(newer).encode(), f"registration:{RID}")
    )
    with pytest.raises(QuarantinedError):
        await store.load(RID)
    [entry] = await store.list_quarantine("registration")
    assert "schema_version 3 is newer than this code knows (2)" in entry.reason

    monkeypatch.setattr(versions, "REGISTRATION_VERSION", 3)  # the code was upgraded
    monkeypatch.setitem(versions.REGISTRATION_STEPS, 2, lambda doc: doc)  # type: ignore[index]
    assert await store.release_quarantined(entry.id)
    assert await store.list_quarantine() == []
    loaded = await store.load(RID)
    assert loaded is not None
    assert loaded.registration.id == RID
    assert not await store.release_quarantined(entry.id), "released once"


async def test_a_release_never_overwrites_a_row_that_came_back(store: Store) -> None:
    await two_registrations(store)
    await Raw(store).tamper("registration", RID)
    with pytest.raises(QuarantinedError):
        await store.load(RID)
    [entry] = await store.list_quarantine()
    await store.commit(commit("e9", registration(), 0))  # a new registration took the id meanwhile
    with pytest.raises(PermanentError) as caught:
        await store.release_quarantined(entry.id)
    assert caught.value.code == "release_conflict"
    assert await store.list_quarantine() == [entry], "nothing changed"
    assert await store.discard_quarantined(entry.id)
    assert not await store.discard_quarantined(entry.id)
    assert await store.quarantine_count() == 0
    assert (await store.load(RID)) is not None


async def test_a_tampered_history_entry_leaves_the_rest_of_the_history(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0))
    await store.commit(commit("e2", registration(state=State.CARD_READ), 1, at_offset=1))
    await store.commit(commit("e3", registration(state=State.CONFIRMED), 2, at_offset=2))
    await Raw(store).tamper("history", "e2")
    assert [h.event_id for h in await store.history(RID)] == ["e1", "e3"]
    assert [h.event_id for h in await store.history(RID)] == ["e1", "e3"]
    [entry] = await store.list_quarantine()
    assert (entry.kind, entry.key) == ("history", "e2")
    assert await store.release_quarantined(entry.id)
    assert await store.quarantine_count() == 0
    assert [h.event_id for h in await store.history(RID)] == ["e1", "e3"], "still tampered: back it goes"
    [again] = await store.list_quarantine()
    assert (again.kind, again.key) == ("history", "e2")
    assert again.id != entry.id


async def test_a_tampered_outbox_row_does_not_hold_up_the_others(store: Store) -> None:
    await two_registrations(store)
    await Raw(store).tamper("outbox", "m1")
    assert [m.message_id for m in await store.claim_outbox("w1", NOW, 30, 10)] == ["m2"]
    [entry] = await store.list_quarantine("outbox")
    assert entry.key == "m1"
    assert await store.outbox_backlog() == 1


async def test_an_outbox_body_of_an_unknown_envelope_version_is_quarantined(
    store: Store, sealer: Sealer
) -> None:
    await two_registrations(store)
    body = json.dumps({"event_id": "m1", "schema_version": 2}).encode()
    await Raw(store).set_blob("outbox", "m1", sealer.seal(body, "outbox:m1"))
    assert [m.message_id for m in await store.claim_outbox("w1", NOW, 30, 10)] == ["m2"]
    [entry] = await store.list_quarantine()
    assert "envelope schema_version 2" in entry.reason


async def test_a_tampered_feed_event_goes_aside_with_its_delivery(store: Store) -> None:
    await store.put_webhook(endpoint())
    base = commit("e1", registration(), 0)
    await store.commit(with_events(base, heard("f1"), heard("f2"), heard("f3")))
    await Raw(store).tamper("feed", "f2")
    assert [e.event_id for e in await store.feed("facility-1", 0, 10)] == ["f1", "f3"]
    claimed = await store.claim_deliveries("w1", NOW, 30, 10, 10)
    assert sorted(d.event_id for d in claimed) == ["f1", "f3"], "its delivery would send that body"
    [entry] = await store.list_quarantine()
    assert (entry.kind, entry.key) == ("feed", "f2")
    assert await store.delivery_backlog() == 2


async def test_a_tampered_webhook_secret_is_quarantined_and_the_endpoint_absent(store: Store) -> None:
    await store.put_webhook(endpoint())
    await store.put_webhook(endpoint("facility-2"))
    await Raw(store).tamper("webhook", "facility-1")
    assert [e.facility_id for e in await store.webhooks()] == ["facility-2"]
    assert await store.webhook("facility-1") is None
    [entry] = await store.list_quarantine("webhook")
    assert entry.key == "facility-1"
    assert endpoint().secret not in entry.raw, "the secret stays sealed"


async def test_a_store_does_not_open_with_another_key(tmp_path, sealer: Sealer, store: Store) -> None:
    """A wrong key would quarantine every row it reads: the store refuses to open instead."""
    if not Raw(store).sqlite:
        pytest.skip("one file per store: the MongoDB run checks the same with its own database")
    await store.commit(commit("e1", registration(), 0))
    with pytest.raises(ConfigurationError, match="does not open this store"):
        await open_store("sqlite", tmp_path, Sealer(bytes(32)))


# -- schema versions and migrations -----------------------------------------------------------------


def v1_document(rid: str) -> bytes:
    """A registration document as the code before versions wrote it: no version, no reference."""
    doc = registration(rid).model_dump(mode="json")
    del doc["reference"]
    return json.dumps(doc).encode()


async def test_a_v1_document_reads_as_v2_and_migrate_rewrites_it(store: Store, sealer: Sealer) -> None:
    raw = Raw(store)
    for rid in ("reg-old-000001", "reg-old-000002", "reg-old-000003"):
        await raw.insert_registration(rid, sealer.seal(v1_document(rid), f"registration:{rid}"))
    await store.commit(commit("e1", registration(), 0))
    loaded = await store.load("reg-old-000001")
    assert loaded is not None
    assert loaded.registration.reference == "reg-old-000001", "a v1 registration's reference is its id"
    assert await raw.schema_version("reg-old-000001") in (1, None)

    dry = await store.migrate("", 2, dry_run=True)
    assert (dry.scanned, dry.rewritten, dry.changed, dry.quarantined) == (2, 2, 0, 0)
    assert await raw.schema_version("reg-old-000001") in (1, None), "a dry run changes nothing"

    first = await store.migrate("", 2, dry_run=False)
    assert (first.scanned, first.rewritten, first.last) == (2, 2, "reg-old-000002")
    second = await store.migrate(first.last, 2, dry_run=False)
    assert (second.scanned, second.rewritten) == (1, 1)
    assert (await store.migrate(second.last, 2, dry_run=False)).scanned == 0
    assert (await store.migrate("", 100, dry_run=False)).scanned == 0, "idempotent: nothing older is left"
    assert await raw.schema_version("reg-old-000001") == versions.REGISTRATION_VERSION
    plain = json.loads(
        sealer.open(await raw.blob("registration", "reg-old-000001"), "registration:reg-old-000001")
    )
    assert (plain["schema_version"], plain["reference"]) == (2, "reg-old-000001")
    again = await store.load("reg-old-000001")
    assert again is not None
    assert again.version == 1, "a migration is no commit: the optimistic version stays"


async def test_migrate_quarantines_what_does_not_decode_and_a_dry_run_only_counts_it(
    store: Store, sealer: Sealer
) -> None:
    raw = Raw(store)
    await raw.insert_registration("reg-old-000001", sealer.seal(v1_document("reg-old-000001"), "elsewhere"))
    await raw.insert_registration(
        "reg-old-000002", sealer.seal(v1_document("reg-old-000002"), "registration:reg-old-000002")
    )
    dry = await store.migrate("", 10, dry_run=True)
    assert (dry.scanned, dry.rewritten, dry.quarantined) == (2, 1, 1)
    assert await store.quarantine_count() == 0
    done = await store.migrate("", 10, dry_run=False)
    assert (done.scanned, done.rewritten, done.quarantined) == (2, 1, 1)
    assert [e.key for e in await store.list_quarantine()] == ["reg-old-000001"]


async def test_a_new_registration_is_written_at_the_current_version(store: Store, sealer: Sealer) -> None:
    await store.commit(commit("e1", registration(), 0))
    raw = Raw(store)
    assert await raw.schema_version(RID) == versions.REGISTRATION_VERSION
    plain = json.loads(sealer.open(await raw.blob("registration", RID), f"registration:{RID}"))
    assert plain["schema_version"] == versions.REGISTRATION_VERSION
    assert plain["reference"] == RID


# -- dead letters -----------------------------------------------------------------------------------


def letter(message_id: str, queue: str = "honnin.orchestrator", **changes: object) -> DeadLetter:
    values: dict[str, object] = {
        "queue": queue,
        "message": BusMessage(
            "card.info_read", b'{"name": "\\u516c\\u7684"}', message_id, {"registration_id": RID}
        ),
        "reason": "delivery limit 3 reached; last: RetryLaterError",
        "attempts": 3,
        "first_seen_at": NOW,
    }
    values.update(changes)
    return DeadLetter(**values)  # type: ignore[arg-type]


async def test_dead_letters_are_kept_listed_filtered_paged_and_deleted(store: Store) -> None:
    await store.add_dead_letter(letter("d1"), NOW + timedelta(seconds=1))
    await store.add_dead_letter(letter("d2", "honnin.verifier"), NOW + timedelta(seconds=2))
    await store.add_dead_letter(letter("d3"), NOW + timedelta(seconds=3))
    listed = await store.dead_letters()
    assert [d.message.message_id for d in listed] == ["d1", "d2", "d3"]
    first = listed[0]
    assert first.message == letter("d1").message, "body and headers as they were"
    assert (first.reason, first.attempts, first.first_seen_at) == (letter("d1").reason, 3, NOW)
    assert first.last_seen_at == NOW + timedelta(seconds=1)
    assert [d.message.message_id for d in await store.dead_letters("honnin.orchestrator")] == ["d1", "d3"]
    assert [d.message.message_id for d in await store.dead_letters(after=first.id, limit=1)] == ["d2"]
    assert await store.dead_letter_count() == 3
    assert await store.dead_letter_count("honnin.verifier") == 1
    assert await store.dead_letter(first.id) == first
    assert await store.delete_dead_letter(first.id)
    assert not await store.delete_dead_letter(first.id)
    assert await store.dead_letter(first.id) is None
    assert await store.dead_letter_count() == 2


async def test_the_same_message_dead_lettered_again_updates_its_letter(store: Store) -> None:
    await store.add_dead_letter(letter("d1"), NOW + timedelta(seconds=1))
    later = letter(
        "d1", reason="poison_message: unknown type", attempts=1, first_seen_at=NOW + timedelta(hours=1)
    )
    await store.add_dead_letter(later, NOW + timedelta(hours=2))
    [kept] = await store.dead_letters()
    assert (kept.reason, kept.attempts) == ("poison_message: unknown type", 1)
    assert (kept.first_seen_at, kept.last_seen_at) == (NOW, NOW + timedelta(hours=2)), (
        "first seen stays first"
    )
    await store.add_dead_letter(letter("d1", "honnin.verifier"), NOW)
    assert await store.dead_letter_count() == 2, "another queue's is another letter"


# -- commit order and id collisions -----------------------------------------------------------------


async def test_history_follows_the_commit_order_not_the_workers_clocks(store: Store) -> None:
    """Two workers whose clocks disagree: the later commit carries the earlier time."""
    await store.commit(commit("e1", registration(), 0, at_offset=10))
    await store.commit(commit("e2", registration(state=State.CARD_READ), 1, at_offset=5))
    await store.commit(commit("e3", None, 2, outcome="rejected", at_offset=0))
    assert [h.event_id for h in await store.history(RID)] == ["e1", "e2", "e3"]


async def test_a_feed_id_written_twice_in_a_batch_is_a_permanent_error_and_leaves_no_trace(
    store: Store,
) -> None:
    await store.put_webhook(endpoint())
    await store.commit(with_events(commit("e1", registration(), 0), heard("f1")))
    clash = with_events(commit("e2", registration(state=State.CARD_READ), 1), heard("f2"), heard("f1"))
    with pytest.raises(PermanentError) as caught:
        await store.commit(clash)
    assert caught.value.code == "feed_collision"
    assert not await store.is_processed("e2")
    assert [e.event_id for e in await store.feed("facility-1", 0, 10)] == ["f1"]
    assert await store.delivery_backlog() == 1


async def test_an_outbox_id_clash_inside_one_batch_is_the_collision_too(store: Store) -> None:
    await store.commit(commit("e1", registration(), 0, outbox=("m1",)))
    with pytest.raises(PermanentError) as caught:
        await store.commit(commit("e2", registration(state=State.CARD_READ), 1, outbox=("m2", "m1")))
    assert caught.value.code == "outbox_collision"
    assert [m.message_id for m in await store.claim_outbox("w", NOW, 30, 10)] == ["m1"]
    assert (await store.claim_outbox("w", NOW, 30, 10))[0].body == outbox_body("m1")


async def test_a_purge_that_fails_halfway_changes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge is one transaction: history is deleted before the feed, and a failure at the feed
    must bring the history back (a purge in pieces would leave a registration without history)."""
    expired = registration("reg-expired1", state=State.EXPIRED, ended_at=NOW)
    await store.commit(
        with_events(commit("e1", expired, 0, rid="reg-expired1"), heard("f1", rid="reg-expired1"))
    )

    async def broken(*_: object) -> None:
        raise RuntimeError("the connection dropped halfway")

    monkeypatch.setattr(store, "_forget_registrations", broken)
    with pytest.raises(RuntimeError):
        await store.purge_ended(NOW + timedelta(days=1), 10)
    monkeypatch.undo()
    assert [h.event_id for h in await store.history("reg-expired1")] == ["e1"]
    assert await store.load("reg-expired1") is not None
    assert [e.event_id for e in await store.feed("facility-1", 0, 10)] == ["f1"]
    assert await store.purge_ended(NOW + timedelta(days=1), 10) == 1
    assert await store.history("reg-expired1") == []
    assert await store.feed("facility-1", 0, 10) == []
