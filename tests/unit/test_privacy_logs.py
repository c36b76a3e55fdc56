"""Log masking, AMQP topic matching, and sealing personal facts at rest."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.bus.topic import matches
from adapters.store.codec import Sealer, decode_key, new_key, stamp, unstamp
from honnin.logs import PERSONAL_KEYS, mask_personal
from orchestrator.errors import ConfigurationError
from tests import factory

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
REMOVED = "[individual-number-removed]"


def masked(**event_dict: Any) -> dict[str, Any]:
    result = mask_personal(None, "info", event_dict)
    return dict(result)


# --- mask_personal -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(PERSONAL_KEYS))
def test_personal_keys_are_masked_at_top_level(key: str) -> None:
    out = masked(event="registration.applied", registration_id="reg-00000001", **{key: "公的　花子"})
    assert out[key] == "***"
    assert out["registration_id"] == "reg-00000001"
    assert out["event"] == "registration.applied"


@pytest.mark.parametrize("key", sorted(PERSONAL_KEYS))
def test_personal_keys_are_masked_whatever_the_value_type(key: str) -> None:
    out = masked(**{key: {"name": "x", "nested": ["y"]}})
    assert out[key] == "***"


def test_personal_keys_are_masked_when_nested() -> None:
    out = masked(
        event="event.received",
        payload={
            "facility_id": "facility-1",
            "applicant": dict(factory.APPLICANT),
            "card": dict(factory.CARD),
            "deeper": {"contact": {"email": "hanako@example.jp", "phone": "03-1234-5678", "kind": "home"}},
        },
    )
    payload = out["payload"]
    assert payload["facility_id"] == "facility-1"
    assert payload["applicant"] == "***"
    assert payload["card"] == "***"
    assert payload["deeper"]["contact"] == {"email": "***", "phone": "***", "kind": "home"}
    rendered = json.dumps(out, ensure_ascii=False)
    for secret in (factory.NAME, factory.ADDRESS, "hanako@example.jp", "03-1234-5678", "tarou12345"):
        assert secret not in rendered


def test_personal_keys_are_masked_inside_lists_and_tuples() -> None:
    out = masked(items=[{"name": "公的　花子", "n": 1}, ({"address": "東京都"},), "plain"])
    assert out["items"] == [{"name": "***", "n": 1}, [{"address": "***"}], "plain"]


@pytest.mark.parametrize(
    "text",
    [
        "card number 123456789012 seen",
        "１２３４５６７８９０１２",
        "1234-5678-9012",
        "1234 5678 9012",
        "x123456789012y",
        "1234567890123",
        "1.2.3.4.5.6.7.8.9.0.1.2",
        "1234\u200b5678\u00ad9012",
    ],
)
def test_twelve_digit_runs_are_masked_anywhere(text: str) -> None:
    out = masked(event=text, detail={"note": text, "list": [text]}, other=(text,))
    rendered = json.dumps(out, ensure_ascii=False)
    assert "123456789012" not in rendered
    assert "9012" not in rendered
    assert out["event"].count(REMOVED) == 1
    assert REMOVED in out["detail"]["note"]
    assert REMOVED in out["detail"]["list"][0]
    assert REMOVED in out["other"][0]


@pytest.mark.parametrize(
    "text", ["12345678901", "03-1234-5678", "attempt 2", "6f1c2a3b-1234-5678-9012-abcdefabcdef"]
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert masked(event=text)["event"] == text


def test_non_personal_non_string_values_are_kept() -> None:
    out = masked(attempt=2, ok=True, none=None, ratio=0.5)
    assert out == {"attempt": 2, "ok": True, "none": None, "ratio": 0.5}


def test_mask_personal_returns_the_same_mapping() -> None:
    event_dict: dict[str, Any] = {"name": "x", "event": "e"}
    assert mask_personal(None, "warning", event_dict) is event_dict
    assert event_dict == {"name": "***", "event": "e"}


def test_a_twelve_digit_integer_is_masked_too() -> None:
    out = masked(event="e", number=123456789012, nested={"n": 123456789012})
    assert "123456789012" not in json.dumps(out)


# --- topic matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("binding", "routing_key", "expected"),
    [
        ("registration.#", "registration", True),
        ("registration.#", "registration.started", True),
        ("registration.#", "registration.a.b", True),
        ("registration.#", "registrations.started", False),
        ("registration.#", "card.info_read", False),
        ("*.started", "registration.started", True),
        ("*.started", "a.b.started", False),
        ("*.started", "started", False),
        ("*.started", "registration.started.x", False),
        ("registration.*", "registration", False),
        ("registration.*", "registration.started", True),
        ("registration.*", "registration.a.b", False),
        ("#", "registration.started", True),
        ("#", "a", True),
        ("#.completed", "verification.completed", True),
        ("#.completed", "completed", True),
        ("#.completed", "a.b.completed", True),
        ("#.completed", "verification.completed.x", False),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.b.b.c", True),
        ("a.#.c", "a.b.b", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.c", False),
        ("a.*.#", "a.b", True),
        ("a.*.#", "a", False),
        ("#.#", "a.b", True),
        ("card.info_read", "card.info_read", True),
        ("card.info_read", "card.info_read.x", False),
        ("card.info_read.x", "card.info_read", False),
        ("card.info_read", "card.signature_submitted", False),
        ("Registration.started", "registration.started", False),
    ],
)
def test_topic_matching_follows_amqp(binding: str, routing_key: str, expected: bool) -> None:
    assert matches(binding, routing_key) is expected


# --- the sealer --------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", [b"", b"x", "公的　花子".encode(), bytes(range(256)) * 8])
def test_sealer_round_trips(plaintext: bytes) -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(plaintext, "registration:reg-00000001")
    assert len(blob) == 1 + 12 + len(plaintext) + 16
    if len(plaintext) >= 8:
        assert plaintext not in blob
    assert sealer.open(blob, "registration:reg-00000001") == plaintext
    assert Sealer(KEY).open(blob, "registration:reg-00000001") == plaintext


def test_sealing_twice_gives_different_blobs() -> None:
    sealer = Sealer(KEY)
    first, second = sealer.seal(b"same", "a"), sealer.seal(b"same", "a")
    assert first != second
    assert sealer.open(first, "a") == sealer.open(second, "a") == b"same"


def test_a_blob_does_not_open_at_another_place() -> None:
    sealer = Sealer(KEY)
    blob = sealer.seal(b"personal facts", "registration:reg-00000001")
    with pytest.raises(ConfigurationError, match="registration:reg-00000002"):
        sealer.open(blob, "registration:reg-00000002")


def test_a_blob_does_not_open_with_another_key() -> None:
    blob = Sealer(KEY).seal(b"personal facts", "history:1")
    with pytest.raises(ConfigurationError, match="wrong key or tampered"):
        Sealer(OTHER_KEY).open(blob, "history:1")


@pytest.mark.parametrize("index", [1, 13, -1])
def test_a_tampered_blob_does_not_open(index: int) -> None:
    sealer = Sealer(KEY)
    blob = bytearray(sealer.seal(b"personal facts", "outbox:1"))
    blob[index] ^= 0x01
    with pytest.raises(ConfigurationError):
        sealer.open(bytes(blob), "outbox:1")


@pytest.mark.parametrize("blob", [b"", b"\x02" + bytes(40)])
def test_an_unknown_blob_version_is_refused(blob: bytes) -> None:
    with pytest.raises(ConfigurationError, match="unknown sealed-blob version"):
        Sealer(KEY).open(blob, "outbox:1")


def test_sealing_errors_are_configuration_errors() -> None:
    assert ConfigurationError("x").code == "configuration"


# --- data keys ---------------------------------------------------------------------------------


def test_new_key_decodes_to_32_bytes() -> None:
    text = new_key()
    key = decode_key(text)
    assert len(key) == 32
    assert new_key() != text


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("strip_padding", [False, True])
def test_decode_key_accepts_either_alphabet_with_or_without_padding(encode: Any, strip_padding: bool) -> None:
    key = bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFE, 0xFF])  # encodes to '+' and '/' (or '-' and '_')
    text = encode(key).decode()
    if strip_padding:
        text = text.rstrip("=")
    assert decode_key(text) == key


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33, 64])
def test_decode_key_refuses_wrong_lengths(length: int) -> None:
    text = base64.b64encode(bytes(length)).decode()
    with pytest.raises(ConfigurationError, match=f"32 bytes, not {length}"):
        decode_key(text)


def test_decode_key_refuses_non_base64() -> None:
    with pytest.raises(ConfigurationError):
        decode_key("this is not a key at all!")


# --- stamps ------------------------------------------------------------------------------------


def test_stamp_is_utc_fixed_width_and_round_trips() -> None:
    tokyo = factory.NOW.astimezone(timezone(timedelta(hours=9)))
    text = stamp(tokyo)
    assert text == "2026-11-23T09:00:00.000000+00:00"
    assert unstamp(text) == factory.NOW
    assert unstamp(text).tzinfo is not None


def test_stamps_sort_as_the_instants_do() -> None:
    instants = [
        datetime(2026, 11, 23, 9, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 23, 17, 59, 59, tzinfo=timezone(timedelta(hours=9))),
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 22, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
    ]
    assert sorted(instants, key=stamp) == sorted(instants)
