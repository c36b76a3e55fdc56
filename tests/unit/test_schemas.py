"""The wire formats: envelope, payloads, the individual-number screen and the exported JSON Schemas."""

from __future__ import annotations

import copy
import json
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import events as ev
from schemas.events import (
    ALL_EVENTS,
    INBOUND,
    INBOUND_TYPES,
    OUTBOUND_TYPES,
    EnvelopeError,
    derived_event_id,
    event_type,
    parse_event,
)
from schemas.export import export, json_schemas
from schemas.privacy import (
    ID_DIGITS_REFUSED,
    INDIVIDUAL_NUMBER_REFUSED,
    contains_individual_number,
    mask_individual_numbers,
)
from tests import factory

try:
    import jsonschema
except ImportError:  # pragma: no cover - the fallback below checks the required keys instead
    jsonschema = None

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "facility-flow.jsonl"
INBOUND_KINDS = sorted(factory.SOURCES)
ALL_SOURCES = ("web", "app", "verifier", "orchestrator", "operator")

# Wire shapes of the events the orchestrator sends itself or emits (factory builds only inbound ones).
OTHER_PAYLOADS: dict[str, dict[str, Any]] = {
    "registration.deadline_reached": {"deadline": factory.NOW.isoformat()},
    "registration.challenge_issued": {"challenge": "Y2hhbGxlbmdl", "attempt": 1},
    "verification.requested": {"attempt": 1},
    "registration.verification_failed": {
        "attempt": 1,
        "code": "23",
        "message": "失効済みのマイナンバーカードの可能性があります。(Code: 23)",
        "may_sign_again": True,
    },
    "registration.signature_verified": {"attempt": 1, "certificate_fingerprint": "a" * 64},
    "registration.activated": {"facility_id": "facility-1", "activated_at": factory.NOW.isoformat()},
    "registration.expired": {"facility_id": "facility-1", "reason": "activation_timeout"},
    "registration.cancelled": {"facility_id": "facility-1", "reason": "cancel_requested"},
    "email.confirmation_requested": {"attempt": 1},
    "registration.event_rejected": {
        "rejected_event_id": str(uuid.uuid4()),
        "rejected_type": "registration.complete_requested",
        "code": "event_not_accepted",
        "message": "registration.complete_requested is not accepted while the registration is info_entered",
    },
}
ALL_KINDS = sorted(event_type(cls) for cls in ALL_EVENTS)


def wire(kind: str, **changes: Any) -> dict[str, Any]:
    """A valid wire-shaped envelope of any event type."""
    if kind in factory.SOURCES:
        return copy.deepcopy(factory.raw(kind, **changes))
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "registration_id": "reg-00000001",
        "occurred_at": factory.NOW.isoformat(),
        "source": "orchestrator",
        "schema_version": 1,
        "payload": copy.deepcopy(OTHER_PAYLOADS[kind]),
    }
    envelope.update(changes)
    return envelope


def refused(raw: Any) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        parse_event(raw)
    assert not isinstance(info.value, ValidationError)
    return info.value


def everything_said(exc: EnvelopeError) -> str:
    return " ".join([str(exc), exc.message, json.dumps(exc.details, ensure_ascii=False)])


def with_payload_value(kind: str, path: str, value: Any) -> dict[str, Any]:
    raw = wire(kind)
    *parents, leaf = path.split(".")
    node = raw["payload"]
    for name in parents:
        node = node[name]
    node[leaf] = value
    return raw


def read(event: Any, path: str) -> Any:
    node = event.payload
    for name in path.split("."):
        node = getattr(node, name)
    return node


# --- every event type parses -------------------------------------------------------------------


def test_factory_covers_every_inbound_type() -> None:
    assert set(factory.SOURCES) == INBOUND_TYPES
    assert set(factory.PAYLOADS) == INBOUND_TYPES
    assert set(OTHER_PAYLOADS) | INBOUND_TYPES == set(ALL_KINDS)
    assert not INBOUND_TYPES & OUTBOUND_TYPES


@pytest.mark.parametrize("kind", INBOUND_KINDS)
def test_inbound_event_parses_from_the_factory_wire_shape(kind: str) -> None:
    raw = factory.raw(kind)
    event = parse_event(raw)
    cls = next(c for c in INBOUND if event_type(c) == kind)
    assert type(event) is cls
    assert event.type == kind
    assert event.event_id == uuid.UUID(raw["event_id"])
    assert event.registration_id == "reg-00000001"
    assert event.occurred_at == factory.NOW
    assert event.source == factory.SOURCES[kind]
    assert event.schema_version == 1


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_event_type_round_trips_through_json_bytes_and_text(kind: str) -> None:
    event = parse_event(wire(kind))
    assert event.type == kind
    text = event.model_dump_json()
    assert parse_event(text) == event
    assert parse_event(text.encode()) == event


def test_started_payload_keeps_what_the_person_typed() -> None:
    event = parse_event(factory.raw("registration.started"))
    assert isinstance(event, ev.RegistrationStarted)
    applicant = event.payload.applicant
    assert applicant.name == factory.NAME
    assert applicant.address == factory.ADDRESS
    assert applicant.login_id == "tarou12345"
    assert applicant.identity_document == "my_number_card"
    assert event.payload.facility_id == "facility-1"


def test_card_facts_parse_birth_date_and_sex() -> None:
    event = parse_event(factory.raw("card.info_read"))
    assert isinstance(event, ev.CardInfoRead)
    assert event.payload.card.birth_date.isoformat() == "1990-04-01"
    assert event.payload.card.sex == 2


@pytest.mark.parametrize("sex", [0, 3, "male"])
def test_card_sex_outside_iso_5218_is_refused(sex: Any) -> None:
    raw = with_payload_value("card.info_read", "card.sex", sex)
    assert refused(raw).details[0]["loc"] == "card.info_read.payload.card.sex"


def test_envelope_defaults_schema_version_to_1_when_absent() -> None:
    raw = factory.raw("registration.started")
    del raw["schema_version"]
    assert parse_event(raw).schema_version == 1


def test_payload_strings_are_stripped() -> None:
    raw = with_payload_value("registration.started", "facility_id", "  facility-1  ")
    event = parse_event(raw)
    assert isinstance(event, ev.RegistrationStarted)
    assert event.payload.facility_id == "facility-1"


def test_events_are_frozen() -> None:
    event = parse_event(factory.raw("registration.started"))
    with pytest.raises(ValidationError):
        event.source = "app"  # type: ignore[misc]


# --- unknown fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", INBOUND_KINDS)
def test_unknown_envelope_field_is_refused(kind: str) -> None:
    exc = refused(factory.raw(kind, trace_id="abc"))
    assert [(d["loc"], d["type"]) for d in exc.details] == [(f"{kind}.<unknown>", "extra_forbidden")]
    assert "trace_id" not in everything_said(exc), "a name the caller invented is never repeated"


@pytest.mark.parametrize("kind", INBOUND_KINDS)
def test_unknown_payload_field_is_refused(kind: str) -> None:
    raw = factory.raw(kind, payload={**factory.PAYLOADS[kind], "unexpected": "x"})
    exc = refused(raw)
    assert [(d["loc"], d["type"]) for d in exc.details] == [(f"{kind}.payload.<unknown>", "extra_forbidden")]
    assert "unexpected" not in everything_said(exc)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("registration.started", "applicant.individual_number"),
        ("card.info_read", "card.my_number"),
    ],
)
def test_unknown_nested_payload_field_is_refused(kind: str, path: str) -> None:
    raw = with_payload_value(kind, path, "x")
    exc = refused(raw)
    parent, _, invented = path.rpartition(".")
    assert exc.details[0]["loc"] == f"{kind}.payload.{parent}.<unknown>"
    assert exc.details[0]["type"] == "extra_forbidden"
    assert invented not in everything_said(exc)


@pytest.mark.parametrize("field", ["password", "signing_password", "pin"])
def test_a_password_in_the_applicant_is_refused_and_not_echoed(field: str) -> None:
    secret = "Sup3rSecretPw"
    raw = with_payload_value("registration.started", f"applicant.{field}", secret)
    exc = refused(raw)
    assert exc.details[0]["loc"] == "registration.started.payload.applicant.<unknown>"
    assert secret not in everything_said(exc)


# --- the individual number ---------------------------------------------------------------------

# (kind, path in the payload) of every free-text field an outside caller fills in.
FREE_TEXT = [
    ("registration.started", "applicant.login_id"),
    ("registration.started", "applicant.user_type"),
    ("registration.started", "applicant.user_category"),
    ("registration.started", "applicant.name"),
    ("registration.started", "applicant.name_kana"),
    ("registration.started", "applicant.postal_code"),
    ("registration.started", "applicant.address"),
    ("registration.started", "applicant.phone"),
    ("registration.started", "applicant.email"),
    ("card.info_read", "card.name"),
    ("card.info_read", "card.address"),
    ("registration.confirmed", "phone"),
    ("registration.confirmed", "email"),
    ("registration.cancel_requested", "reason"),
]
SHORT_FIELDS = {"applicant.postal_code"}  # max_length 10: refused for its length before the screen runs
NUMBERS = [
    "123456789012",
    "１２３４５６７８９０１２",
    "1234-5678-9012",
    "1234 5678 9012",
    "１２３４－５６７８－９０１２",
    "1234　5678　9012",
    "番号123456789012です",
]
LONGER_RUNS = ["1234567890123", "1234-5678-90123", "+81 90-1234-5678", "03-1234-5678, 03-1234-5679"]
"""Strict on purpose: 12 or more digits in a row are refused, a 13th digit or a `+` saves nothing."""
NOT_NUMBERS = ["12345678901", "１２３４５６７８９０１", "123-4567-8901", "03-1234-5678", "〒100-0001"]


def _digits(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isdigit())


def assert_refused_without_echo(
    raw: dict[str, Any],
    value: str,
    loc: str,
    *,
    screened: bool = True,
    refusal: str = INDIVIDUAL_NUMBER_REFUSED,
) -> None:
    exc = refused(raw)
    said = everything_said(exc)
    assert _digits(value) not in said
    assert value not in said
    for run in ("1234", "5678", "9012"):
        assert f"{run}-" not in said
    assert all("input" not in detail for detail in exc.details)
    assert exc.details[0]["loc"] == loc
    if screened:
        assert refusal in exc.details[0]["msg"]
        assert refusal in exc.message


@pytest.mark.parametrize("value", NUMBERS)
@pytest.mark.parametrize(("kind", "path"), FREE_TEXT)
def test_individual_number_is_refused_in_every_free_text_field(kind: str, path: str, value: str) -> None:
    raw = with_payload_value(kind, path, value)
    loc = f"{kind}.payload.{path}"
    assert_refused_without_echo(raw, value, loc, screened=path not in SHORT_FIELDS)


@pytest.mark.parametrize("value", LONGER_RUNS)
@pytest.mark.parametrize(("kind", "path"), [fp for fp in FREE_TEXT if fp[1] not in SHORT_FIELDS])
def test_runs_longer_than_twelve_digits_are_refused_too(kind: str, path: str, value: str) -> None:
    raw = with_payload_value(kind, path, value)
    assert_refused_without_echo(raw, value, f"{kind}.payload.{path}")


@pytest.mark.parametrize("value", NOT_NUMBERS)
@pytest.mark.parametrize(("kind", "path"), [fp for fp in FREE_TEXT if fp[1] not in SHORT_FIELDS])
def test_eleven_digits_pass(kind: str, path: str, value: str) -> None:
    event = parse_event(with_payload_value(kind, path, value))
    assert read(event, path) == value


ID_SPELLINGS = [
    "reg-123456789012",
    "r1234-5678-9012",
    "reg_1234_5678_9012",
    "r1-2-3-4-5-6-7-8-9-0-1-2",
    "a1b2c3d4e5f6g7h8i9j0k1l2",
]
"""An id holds 12 digits however they are spread: letters between them do not help either."""


@pytest.mark.parametrize("value", ID_SPELLINGS)
def test_an_id_with_twelve_digits_in_any_spelling_is_refused(value: str) -> None:
    raw = factory.raw("registration.started", registration_id=value)
    assert_refused_without_echo(raw, value, "registration.started.registration_id", refusal=ID_DIGITS_REFUSED)


@pytest.mark.parametrize(
    "value", ["facility-123456789012", "f1.2.3.4.5.6.7.8.9.0.1.2", "施設１２３４５６７８９０１２"]
)
def test_a_facility_id_with_twelve_digits_is_refused(value: str) -> None:
    raw = with_payload_value("registration.started", "facility_id", value)
    loc = "registration.started.payload.facility_id"
    assert_refused_without_echo(raw, value, loc, refusal=ID_DIGITS_REFUSED)


@pytest.mark.parametrize("value", ["reg-12345678901", "a1b2c3d4e5f6g7h8i9j0k1", "reg-" + "x" * 60])
def test_an_id_with_eleven_digits_passes(value: str) -> None:
    assert parse_event(factory.raw("registration.started", registration_id=value)).registration_id == value


@pytest.mark.parametrize("path", ["message", "code"])
def test_individual_number_is_refused_in_verifier_free_text(path: str) -> None:
    raw = factory.raw(
        "verification.completed",
        payload={"attempt": 1, "outcome": "fail", "code": "23", path: "123456789012"},
    )
    assert_refused_without_echo(raw, "123456789012", f"verification.completed.payload.{path}")


@pytest.mark.parametrize("where", ["envelope", "payload"])
def test_individual_number_as_an_unknown_field_name_is_not_echoed(where: str) -> None:
    raw = factory.raw("registration.started")
    if where == "envelope":
        raw["123456789012"] = "x"
    else:
        raw["payload"] = {**raw["payload"], "123456789012": "x"}
    assert "123456789012" not in everything_said(refused(raw))


def test_individual_number_as_the_type_is_not_echoed() -> None:
    raw = factory.raw("registration.started", type="123456789012")
    assert "123456789012" not in everything_said(refused(raw))


@pytest.mark.parametrize("value", [*NUMBERS, *LONGER_RUNS])
def test_contains_individual_number_finds_every_form(value: str) -> None:
    assert contains_individual_number(value)
    masked = mask_individual_numbers(value)
    assert "[individual-number-removed]" in masked
    assert _digits(value) not in _digits(masked)


@pytest.mark.parametrize("value", [*NOT_NUMBERS, "03-1234-5678", "100-0001", "", "abc"])
def test_contains_individual_number_ignores_other_numbers(value: str) -> None:
    assert not contains_individual_number(value)
    assert mask_individual_numbers(value) == value, "text without a number is left as it was"


# --- envelope rules ----------------------------------------------------------------------------

WRONG_SOURCES = [
    (kind, source)
    for kind, allowed in [
        ("registration.started", {"web", "operator"}),
        ("card.info_read", {"app"}),
        ("registration.confirmed", {"web", "operator"}),
        ("card.signature_submitted", {"app"}),
        ("verification.completed", {"verifier"}),
        ("registration.complete_requested", {"web", "operator"}),
        ("registration.cancel_requested", {"web", "operator"}),
        ("registration.deadline_reached", {"orchestrator"}),
        ("registration.activated", {"orchestrator"}),
        ("registration.verification_failed", {"orchestrator"}),
    ]
    for source in ALL_SOURCES
    if source not in allowed
]


@pytest.mark.parametrize(("kind", "source"), WRONG_SOURCES)
def test_a_source_that_may_not_send_the_type_is_refused(kind: str, source: str) -> None:
    exc = refused(wire(kind, source=source))
    assert f"source {source!r} may not send this event" in exc.message


def test_card_info_read_from_web_is_refused() -> None:
    exc = refused(factory.raw("card.info_read", source="web"))
    assert "allowed: app" in exc.message


@pytest.mark.parametrize("kind", [k for k, s in factory.SOURCES.items() if s == "web"])
def test_operator_may_send_what_web_sends(kind: str) -> None:
    assert parse_event(factory.raw(kind, source="operator")).source == "operator"


def test_a_source_outside_the_list_is_refused() -> None:
    exc = refused(factory.raw("registration.started", source="mallory"))
    assert exc.details[0]["loc"] == "registration.started.source"


@pytest.mark.parametrize("occurred_at", ["2026-11-23T09:00:00", "2026-11-23 09:00:00"])
def test_a_naive_occurred_at_is_refused(occurred_at: str) -> None:
    exc = refused(factory.raw("registration.started", occurred_at=occurred_at))
    assert exc.details[0]["loc"] == "registration.started.occurred_at"


def test_a_naive_occurred_at_is_refused_from_python_too() -> None:
    naive = datetime(2026, 11, 23, 9, 0)
    refused(factory.raw("registration.started", occurred_at=naive))


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-23T09:00:00Z",
        "2026-11-23T18:00:00+09:00",
        factory.NOW.astimezone(timezone(timedelta(hours=9))),
    ],
)
def test_an_aware_occurred_at_is_kept_as_the_same_instant(occurred_at: Any) -> None:
    event = parse_event(factory.raw("registration.started", occurred_at=occurred_at))
    assert event.occurred_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("version", [2, 0, "2"])
def test_another_schema_version_is_refused(version: Any) -> None:
    exc = refused(factory.raw("registration.started", schema_version=version))
    assert exc.details[0]["loc"] == "registration.started.schema_version"


@pytest.mark.parametrize("kind", ["registration.deleted", "card.pin_read", "", "REGISTRATION.STARTED"])
def test_an_unknown_type_is_refused(kind: str) -> None:
    raw = factory.raw("registration.started", type=kind)
    exc = refused(raw)
    assert exc.details[0]["type"] == "union_tag_invalid"


def test_a_missing_type_is_refused() -> None:
    raw = factory.raw("registration.started")
    del raw["type"]
    refused(raw)


@pytest.mark.parametrize("field", ["event_id", "registration_id", "occurred_at", "source", "payload"])
def test_a_missing_envelope_field_is_refused(field: str) -> None:
    raw = factory.raw("registration.started")
    del raw[field]
    exc = refused(raw)
    assert exc.details[0]["loc"] == f"registration.started.{field}"
    assert exc.details[0]["type"] == "missing"


@pytest.mark.parametrize("registration_id", ["x", "abcdefg", "-starts-with-dash", "has space 0001", "a" * 65])
def test_a_malformed_registration_id_is_refused(registration_id: str) -> None:
    refused(factory.raw("registration.started", registration_id=registration_id))


@pytest.mark.parametrize("event_id", ["not-a-uuid", "", 42])
def test_a_malformed_event_id_is_refused(event_id: Any) -> None:
    exc = refused(factory.raw("registration.started", event_id=event_id))
    assert exc.details[0]["loc"] == "registration.started.event_id"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"not json",
        b"",
        b"\xff\xfe\x00",
        b"[]",
        b"null",
        b'"registration.started"',
        b'{"type": "registration.started"',
        "{'single': 'quotes'}",
    ],
)
def test_malformed_json_raises_envelope_error_not_a_pydantic_error(raw: bytes | str) -> None:
    exc = refused(raw)
    assert exc.message.startswith("invalid event: ")
    assert exc.details
    assert isinstance(exc, ValueError)


def test_envelope_error_details_never_carry_the_input() -> None:
    raw = factory.raw("registration.started", source="web")
    raw["payload"] = {**raw["payload"], "applicant": {**factory.APPLICANT, "name": ""}}
    exc = refused(raw)
    assert exc.details
    assert all(set(detail) == {"loc", "type", "msg"} for detail in exc.details)


# --- payload rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["fail", "retry_later"])
@pytest.mark.parametrize("code", [None, ""])
def test_verification_failure_without_a_code_is_refused(outcome: str, code: str | None) -> None:
    payload: dict[str, Any] = {"attempt": 1, "outcome": outcome}
    if code is not None:
        payload["code"] = code
    exc = refused(factory.raw("verification.completed", payload=payload))
    assert "needs a code" in exc.message


@pytest.mark.parametrize("outcome", ["fail", "retry_later"])
def test_verification_failure_with_a_code_parses(outcome: str) -> None:
    raw = factory.raw("verification.completed", payload={"attempt": 2, "outcome": outcome, "code": "23"})
    event = parse_event(raw)
    assert isinstance(event, ev.VerificationCompleted)
    assert (event.payload.outcome, event.payload.code, event.payload.attempt) == (outcome, "23", 2)


def test_verification_pass_needs_no_code() -> None:
    event = parse_event(factory.raw("verification.completed", payload={"attempt": 1, "outcome": "pass"}))
    assert isinstance(event, ev.VerificationCompleted)
    assert event.payload.code is None


@pytest.mark.parametrize(
    "payload",
    [
        {"attempt": 0, "outcome": "pass"},
        {"attempt": 1, "outcome": "maybe"},
        {"attempt": 1, "outcome": "pass", "certificate_fingerprint": "A" * 64},
        {"attempt": 1, "outcome": "pass", "certificate_fingerprint": "a" * 63},
    ],
)
def test_malformed_verification_payload_is_refused(payload: dict[str, Any]) -> None:
    refused(factory.raw("verification.completed", payload=payload))


@pytest.mark.parametrize("acknowledged", [False, None, "yes"])
def test_confirmation_without_the_notice_acknowledged_is_refused(acknowledged: Any) -> None:
    exc = refused(factory.raw("registration.confirmed", payload={"notice_acknowledged": acknowledged}))
    assert exc.details[0]["loc"] == "registration.confirmed.payload.notice_acknowledged"


def test_confirmation_missing_the_notice_is_refused() -> None:
    exc = refused(factory.raw("registration.confirmed", payload={"email": "a@example.jp"}))
    assert exc.details[0]["type"] == "missing"


def test_confirmation_may_correct_contact_info() -> None:
    payload = {"notice_acknowledged": True, "phone": "090-0000-0000", "email": "new@example.jp"}
    event = parse_event(factory.raw("registration.confirmed", payload=payload))
    assert isinstance(event, ev.RegistrationConfirmed)
    assert (event.payload.phone, event.payload.email) == ("090-0000-0000", "new@example.jp")


@pytest.mark.parametrize(
    "changes",
    [
        {"certificate": "not base64!"},
        {"signature": "c2l"},
        {"algorithm": "md5"},
        {"certificate": "A" * 16_388},
    ],
)
def test_malformed_signature_is_refused(changes: dict[str, Any]) -> None:
    payload = {**factory.PAYLOADS["card.signature_submitted"], **changes}
    refused(factory.raw("card.signature_submitted", payload=payload))


def test_registration_started_only_knows_the_facility_profile() -> None:
    raw = with_payload_value("registration.started", "profile", "xid")
    assert refused(raw).details[0]["loc"] == "registration.started.payload.profile"


@pytest.mark.parametrize("field", ["login_id", "user_type", "user_category", "name", "address"])
def test_required_applicant_fields_may_not_be_empty(field: str) -> None:
    raw = with_payload_value("registration.started", f"applicant.{field}", "   ")
    assert refused(raw).details[0]["loc"] == f"registration.started.payload.applicant.{field}"


# --- derived ids -------------------------------------------------------------------------------


def test_derived_event_id_is_stable_and_depends_on_every_part() -> None:
    cause = "8bf6c248-c531-580a-8c51-d8063622da4f"
    first = derived_event_id(cause, "registration.challenge_issued", "")
    assert first == derived_event_id(cause, "registration.challenge_issued", "")
    assert first.version == 5
    assert first == uuid.uuid5(uuid.NAMESPACE_URL, f"honnin:{cause}:registration.challenge_issued:")
    others = {
        derived_event_id(cause, "verification.requested", ""),
        derived_event_id(cause, "registration.challenge_issued", "1"),
        derived_event_id(str(uuid.uuid4()), "registration.challenge_issued", ""),
        derived_event_id("registration.challenge_issued", cause, ""),
    }
    assert first not in others
    assert len(others) == 4


def test_new_event_ids_are_random() -> None:
    assert ev.new_event_id() != ev.new_event_id()


def _validates(schema: dict[str, Any], instance: dict[str, Any]) -> bool:
    if jsonschema is not None:
        return jsonschema.Draft202012Validator(schema).is_valid(instance)
    required = set(schema.get("required", []))  # pragma: no cover - without jsonschema
    return required <= set(instance) and set(instance) <= set(schema.get("properties", instance))


def test_export_writes_one_schema_per_event_type_plus_the_envelope(tmp_path: Path) -> None:
    written = export(tmp_path / "schemas")
    names = {path.name for path in written}
    assert names == {f"{kind}.schema.json" for kind in ALL_KINDS} | {"envelope.schema.json"}
    assert len(written) == len(ALL_EVENTS) + 1
    assert {p.name for p in (tmp_path / "schemas").iterdir()} == names
    assert written == sorted(written)


def test_export_twice_overwrites_in_place(tmp_path: Path) -> None:
    first = [p.read_text(encoding="utf-8") for p in export(tmp_path)]
    second = [p.read_text(encoding="utf-8") for p in export(tmp_path)]
    assert first == second


def test_every_exported_file_is_json_that_validates_its_event(tmp_path: Path) -> None:
    written = {path.name: path for path in export(tmp_path)}
    envelope = json.loads(written["envelope.schema.json"].read_text(encoding="utf-8"))
    for kind in ALL_KINDS:
        schema = json.loads(written[f"{kind}.schema.json"].read_text(encoding="utf-8"))
        instance = wire(kind)
        parse_event(instance)  # the sample is valid for the parser
        assert _validates(schema, instance), kind
        assert _validates(envelope, instance), kind
        assert {"event_id", "registration_id", "occurred_at", "source"} <= set(schema["required"])


def test_exported_schema_is_written_as_readable_utf8(tmp_path: Path) -> None:
    text = next(p for p in export(tmp_path) if p.name == "registration.started.schema.json").read_text(
        encoding="utf-8"
    )
    assert "氏名" in text
    assert text.endswith("\n")


@pytest.mark.skipif(jsonschema is None, reason="needs jsonschema to evaluate the schemas")
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_exported_schemas_refuse_unknown_fields_and_other_types(kind: str) -> None:
    schemas = json_schemas()
    own = schemas[f"{kind}.schema.json"]
    envelope = schemas["envelope.schema.json"]
    extra = wire(kind, trace_id="x")
    assert not _validates(own, extra)
    assert not _validates(envelope, extra)
    other = next(k for k in ALL_KINDS if k != kind)
    assert not _validates(own, wire(other))
    assert not _validates(envelope, wire(kind, schema_version=2))


def test_exported_schemas_require_the_type_discriminator() -> None:
    schemas = json_schemas()
    missing = [kind for kind in ALL_KINDS if "type" not in schemas[f"{kind}.schema.json"].get("required", [])]
    typeless = wire("registration.started")
    del typeless["type"]
    refused(typeless)
    assert missing == []
    assert not _validates(schemas["envelope.schema.json"], typeless)


def test_exported_schema_constrains_the_registration_id_like_the_parser() -> None:
    schema = json_schemas()["registration.started.schema.json"]
    assert schema["properties"]["registration_id"].get("pattern") == r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$"


# --- the shipped example -----------------------------------------------------------------------


def test_example_facility_flow_parses() -> None:
    lines = [line for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = [parse_event(line) for line in lines if not line.lstrip().startswith("#")]
    assert {e.type for e in events} <= INBOUND_TYPES
    first = [e.type for e in events if e.registration_id == events[0].registration_id]
    assert first[:4] == factory.FLOW[:4], "the web and app steps up to the signature, in order"
    assert "verification.completed" not in first, "the verifier answers, not the file"


def test_personal_text_as_a_field_name_or_a_type_is_not_echoed() -> None:
    key = factory.raw("registration.started", **{"hanako@example.jp 公的花子": "x"})
    assert "hanako" not in everything_said(refused(key))
    assert "公的" not in everything_said(refused(key))
    tag = factory.raw("registration.started", type="hanako@example.jp")
    exc = refused(tag)
    assert "hanako" not in everything_said(exc)
    assert exc.details[0]["msg"] == "unknown event type"
