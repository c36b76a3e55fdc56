"""Pure rules of this change: schema versions and their upgrade steps, the redelivery window and
RabbitMQ's delay tiers, per-facility registration ids."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.bus.redelivery import TIERS, Redelivery, tier, tier_label
from orchestrator import versions
from orchestrator.errors import CorruptRowError
from orchestrator.model import Registration, State
from schemas.events import EnvelopeError, parse_event
from schemas.references import namespaced_id
from tests import factory

V1 = {
    "id": "reg-client-0001",
    "profile": "facility",
    "facility_id": "facility-1",
    "state": "info_entered",
    "created_at": "2026-11-23T09:00:00Z",
    "updated_at": "2026-11-23T09:00:00Z",
    "expires_at": "2026-11-23T10:00:00Z",
}


def test_a_document_without_a_version_is_v1_and_upgrades_with_its_id_as_reference() -> None:
    upgraded = versions.upgrade_registration(copy.deepcopy(V1))
    assert upgraded["reference"] == "reg-client-0001"
    assert "schema_version" not in upgraded
    assert Registration.model_validate(upgraded).reference == "reg-client-0001"
    explicit = versions.upgrade_registration({**V1, "schema_version": 1})
    assert explicit == upgraded


def test_a_current_document_passes_unchanged_and_steps_are_pure() -> None:
    current = {**V1, "reference": "mine-0000001", "schema_version": 2}
    before = copy.deepcopy(current)
    assert versions.upgrade_registration(current) == {
        k: v for k, v in before.items() if k != "schema_version"
    }
    assert current == before, "the stored document is not changed in place"
    v1 = copy.deepcopy(V1)
    assert versions.upgrade_registration(v1) == versions.upgrade_registration(v1)
    assert v1 == V1


@pytest.mark.parametrize("version", [3, 99])
def test_a_newer_version_is_refused_not_guessed(version: int) -> None:
    with pytest.raises(CorruptRowError, match=f"schema_version {version} is newer") as caught:
        versions.upgrade_registration({**V1, "schema_version": version})
    assert caught.value.code == "unknown_schema_version"


@pytest.mark.parametrize("version", [0, -1, "2", 2.0, True, None])
def test_a_version_that_is_not_a_positive_whole_number_is_refused(version: object) -> None:
    with pytest.raises(CorruptRowError):
        versions.upgrade_registration({**V1, "schema_version": version})


def test_every_version_below_the_current_one_has_its_step() -> None:
    assert set(versions.REGISTRATION_STEPS) == set(range(1, versions.REGISTRATION_VERSION))
    assert set(versions.ENVELOPE_STEPS) == set(range(1, versions.ENVELOPE_VERSION))


def test_envelopes_keep_their_version_and_refuse_a_newer_one() -> None:
    body = {"event_id": "e", "schema_version": 1}
    assert versions.upgrade_envelope(body) == body
    with pytest.raises(CorruptRowError):
        versions.upgrade_envelope({"event_id": "e", "schema_version": 2})


# -- redelivery ------------------------------------------------------------------------------------


def test_redelivery_backs_off_exponentially_up_to_the_cap_within_the_window() -> None:
    policy = Redelivery(window=600, base=0.05, cap=300)
    delays = [policy.delay(n, 0.0, 0.0) for n in range(1, 16)]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.4]
    assert max(d for d in delays if d is not None) == 300, "up to minutes"
    assert policy.delay(20, first_seen=100.0, now=699.0) == pytest.approx(1.0), "never past the window"
    assert policy.delay(3, first_seen=100.0, now=700.0) is None
    assert policy.delay(40, first_seen=0.0, now=1.0) == 300


def test_a_schedule_rides_out_a_thirty_second_outage_and_gives_up_after_the_window() -> None:
    policy = Redelivery()
    now, attempt = 0.0, 1
    while (delay := policy.delay(attempt, 0.0, now)) is not None:
        now += delay
        attempt += 1
    assert now == pytest.approx(600.0), "the last delivery falls on the window's end"
    assert 10 < attempt < 30, "a few dozen deliveries, not thousands"
    assert "window of 600s passed" in policy.gave_up(attempt, "StoreUnavailableError")


def test_the_deprecated_delivery_limit_still_caps_deliveries() -> None:
    policy = Redelivery(limit=3)
    assert policy.delay(2, 0.0, 0.0) is not None
    assert policy.delay(3, 0.0, 0.0) is None
    assert policy.gave_up(3, "x") == "delivery limit 3 reached; last: x"


@given(st.floats(min_value=0.0, max_value=1000.0))
def test_a_tier_is_never_longer_than_asked_unless_it_is_the_shortest(delay: float) -> None:
    chosen = tier(delay)
    assert chosen in TIERS
    assert chosen <= delay or chosen == min(TIERS)
    assert not [t for t in TIERS if chosen < t <= delay], "the longest tier that fits"


def test_tier_names() -> None:
    assert [tier_label(t) for t in TIERS] == ["100ms", "1s", "10s", "60s", "300s"]


# -- per-facility ids ------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_a_namespaced_id_is_letters_and_keeps_facilities_apart(facility: str, reference: str) -> None:
    rid = namespaced_id(facility, reference)
    assert rid.startswith("reg-")
    assert len(rid) == 36
    assert set(rid[4:]) <= set("abcdefghijklmnop"), "no digit: no run of 12 can form"
    assert rid == namespaced_id(facility, reference)
    assert rid != namespaced_id(facility + "x", reference)
    assert namespaced_id("ab", "c") != namespaced_id("a", "bc"), "the separator keeps pairs apart"


def test_a_start_with_a_reference_must_carry_the_derived_id() -> None:
    payload = {**factory.PAYLOADS["registration.started"], "reference": "mine-0000001"}
    good = factory.event("registration.started", namespaced_id("facility-1", "mine-0000001"), payload=payload)
    assert good.payload.reference == "mine-0000001"  # type: ignore[union-attr]
    forged = good.model_dump(mode="json") | {"registration_id": namespaced_id("facility-2", "mine-0000001")}
    with pytest.raises(EnvelopeError):
        parse_event(__import__("json").dumps(forged))


def test_the_machine_keeps_the_reference_or_the_id() -> None:
    from orchestrator.machine import RegistrationMachine
    from orchestrator.model import Context

    ctx = Context(now=factory.NOW, profiles=factory.profiles(), new_challenge="Y2hhbGxlbmdl")
    plain = factory.event("registration.started", "reg-bus-000001")
    applied = RegistrationMachine().apply(None, plain, ctx).applied
    assert applied is not None
    assert applied.registration.reference == "reg-bus-000001", "started on the bus: the id is both"
    payload = {**factory.PAYLOADS["registration.started"], "reference": "mine-0000001"}
    rid = namespaced_id("facility-1", "mine-0000001")
    applied = (
        RegistrationMachine()
        .apply(None, factory.event("registration.started", rid, payload=payload), ctx)
        .applied
    )
    assert applied is not None
    assert (applied.registration.id, applied.registration.reference) == (rid, "mine-0000001")
    assert applied.registration.state is State.INFO_ENTERED
    assert applied.registration.expires_at - factory.NOW == timedelta(hours=1)
