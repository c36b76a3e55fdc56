"""Text fields stay printable, JSON text is UTF-8 with each key once, envelopes likewise."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import EnvelopeError, parse_event
from schemas.privacy import CONTROL_REFUSED, LINE_BREAK_REFUSED
from schemas.strict_json import JsonTextError, loads
from tests import factory
from tests.unit.test_schemas import FREE_TEXT, OTHER_PAYLOADS, refused, wire, with_payload_value

CONTROLS = {
    "NUL": "\x00",
    "BEL": "\x07",
    "backspace": "\x08",
    "ESC": "\x1b",
    "unit separator": "\x1f",
    "DEL": "\x7f",
    "C1 padding": "\x80",
    "NEL": "\x85",
    "C1 APC": "\x9f",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "LRE": "\u202a",
    "RLE": "\u202b",
    "PDF": "\u202c",
    "LRO": "\u202d",
    "RLO": "\u202e",
    "LRI": "\u2066",
    "RLI": "\u2067",
    "FSI": "\u2068",
    "PDI": "\u2069",
    "LRM": "\u200e",
    "RLM": "\u200f",
    "ALM": "\u061c",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
}
LINE_BREAKS = {"CR": "\r", "LF": "\n", "CRLF": "\r\n", "TAB": "\t", "line separator": "\u2028"}
MULTILINE = {("registration.cancel_requested", "reason")}
SINGLE_LINE = [field for field in FREE_TEXT if field not in MULTILINE]
# Short fields get a short value, so the length limit cannot answer first.
VALUE = {"applicant.postal_code": "100{}0001"}


def value_for(path: str, control: str) -> str:
    return VALUE.get(path, "公的{}花子").format(control)


def assert_refused(raw: dict[str, Any], loc: str, message: str) -> None:
    exc = refused(raw)
    assert [d["loc"] for d in exc.details] == [loc]
    assert message in exc.details[0]["msg"]


@pytest.mark.parametrize("name", sorted(CONTROLS))
@pytest.mark.parametrize(("kind", "path"), FREE_TEXT)
def test_every_text_field_refuses_controls_bidi_and_lone_surrogates(kind: str, path: str, name: str) -> None:
    raw = with_payload_value(kind, path, value_for(path, CONTROLS[name]))
    assert_refused(raw, f"{kind}.payload.{path}", CONTROL_REFUSED)


@pytest.mark.parametrize("name", sorted(LINE_BREAKS))
@pytest.mark.parametrize(("kind", "path"), SINGLE_LINE)
def test_single_line_fields_refuse_line_breaks_and_tabs(kind: str, path: str, name: str) -> None:
    raw = with_payload_value(kind, path, value_for(path, LINE_BREAKS[name]))
    assert_refused(raw, f"{kind}.payload.{path}", LINE_BREAK_REFUSED)


@pytest.mark.parametrize("where", ["leading", "trailing"])
def test_a_control_at_either_end_is_refused_not_stripped(where: str) -> None:
    value = "\n公的　花子" if where == "leading" else "公的　花子\x1b"
    raw = with_payload_value("card.info_read", "card.name", value)
    assert refused(raw).details[0]["loc"] == "card.info_read.payload.card.name"


@pytest.mark.parametrize("name", sorted(LINE_BREAKS))
def test_a_reason_may_break_lines(name: str) -> None:
    reason = f"予約を{LINE_BREAKS[name]}取り消します"
    event = parse_event(with_payload_value("registration.cancel_requested", "reason", reason))
    assert event.payload.reason == reason  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("verification.completed", "message"),
        ("verification.completed", "code"),
        ("registration.verification_failed", "message"),
        ("registration.event_rejected", "message"),
        ("registration.cancelled", "reason"),
    ],
)
def test_messages_between_workers_are_held_to_the_same_rules(kind: str, path: str) -> None:
    base = wire(kind)
    if kind == "verification.completed":
        base["payload"] = {"attempt": 1, "outcome": "fail", "code": "23", "message": "m"}
    base["payload"][path] = "text\x1b[31m"
    assert refused(base).details[0]["loc"] == f"{kind}.payload.{path}"


def test_a_lone_surrogate_escape_in_envelope_json_is_refused() -> None:
    text = json.dumps(factory.raw("card.info_read"), ensure_ascii=False).replace("公的", "\\ud800")
    assert "\\ud800" in text
    exc = refused(text)
    assert exc.details[0]["loc"] == "card.info_read.payload.card.name"
    assert CONTROL_REFUSED in exc.details[0]["msg"]


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40))
def test_printable_text_without_controls_passes_or_is_refused_by_name(text: str) -> None:
    """Whatever a name holds, it is accepted as is, or refused with the field named: never a crash."""
    raw = with_payload_value("card.info_read", "card.name", text)
    try:
        event = parse_event(raw)
    except EnvelopeError as exc:
        refusal = exc
    else:
        assert event.payload.card.name == text.strip()  # type: ignore[union-attr]
        return
    assert refusal.details[0]["loc"] == "card.info_read.payload.card.name"


# --- JSON text -----------------------------------------------------------------------------------

BODY = {"card": {"name": "公的　花子", "address": "東京都"}}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (json.dumps(BODY, ensure_ascii=False).encode("utf-16"), "invalid_encoding"),
        (json.dumps(BODY, ensure_ascii=False).encode("utf-16-le"), "invalid_encoding"),
        (json.dumps(BODY, ensure_ascii=False).encode("utf-32"), "invalid_encoding"),
        (b"\xef\xbb\xbf" + json.dumps(BODY).encode(), "invalid_encoding"),
        ("\ufeff" + json.dumps(BODY), "invalid_encoding"),
        ('{"name": "Müller"}'.encode("latin-1"), "invalid_encoding"),
        ('{"a": "東京"}'.encode("shift_jis"), "invalid_encoding"),
        (b'{"a": "\xed\xa0\x80"}', "invalid_encoding"),  # a surrogate encoded as UTF-8 (CESU-8)
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b'{"card": {"name": "x", "name": "y"}}', "duplicate_key"),
        (b'[{"deep": [{"k": 1, "k": 1}]}]', "duplicate_key"),
        (b'{"n": NaN}', "malformed_json"),
        (b'{"n": -Infinity}', "malformed_json"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),
        (b"{", "malformed_json"),
    ],
)
def test_json_text_is_utf8_with_unique_keys_and_finite_numbers(raw: bytes | str, code: str) -> None:
    with pytest.raises(JsonTextError) as caught:
        loads(raw)
    assert caught.value.code == code


def test_utf8_json_with_escapes_and_any_script_is_read() -> None:
    assert loads('{"name": "公的\\u3000花子", "n": [1, 2.5, null, true]}'.encode()) == {
        "name": "公的\u3000花子",
        "n": [1, 2.5, None, True],
    }


def test_an_envelope_with_a_duplicate_key_is_refused() -> None:
    text = json.dumps(factory.raw("registration.complete_requested"))
    twice = text.replace('"source": "web"', '"source": "web", "source": "operator"')
    assert twice != text
    exc = refused(twice.encode())
    assert exc.details == [
        {"loc": "", "type": "duplicate_key", "msg": "a JSON object holds the same key twice"}
    ]
    payload_twice = text.replace('"payload": {}', '"payload": {"reason": "a", "reason": "b"}')
    cancel = payload_twice.replace("complete_requested", "cancel_requested")
    assert refused(cancel).details[0]["type"] == "duplicate_key"


def test_an_envelope_in_utf16_is_refused() -> None:
    exc = refused(json.dumps(factory.raw("registration.started"), ensure_ascii=False).encode("utf-16"))
    assert exc.details[0]["type"] == "invalid_encoding"


def test_outbound_events_still_parse() -> None:
    for kind in OTHER_PAYLOADS:
        assert parse_event(json.dumps(wire(kind)).encode()).type == kind


@pytest.mark.parametrize("spelling", [str.upper, lambda u: u.replace("-", ""), lambda u: "{" + u + "}"])
def test_an_event_id_is_a_uuid_kept_in_its_canonical_form(spelling: Any) -> None:
    """Ids are deduplicated by their canonical text, so another spelling is the same event."""
    canonical = str(uuid.uuid4())
    event = parse_event(factory.raw("registration.complete_requested", event_id=spelling(canonical)))
    assert str(event.event_id) == canonical
    assert json.loads(event.model_dump_json())["event_id"] == canonical


def test_an_event_id_that_is_no_uuid_is_refused() -> None:
    exc = refused(factory.raw("registration.complete_requested", event_id="123456789012"))
    assert exc.details[0]["loc"] == "registration.complete_requested.event_id"
    assert "123456789012" not in json.dumps(exc.details)
