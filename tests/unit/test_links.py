"""One-time links: they round-trip, resist tampering, expire, serve one step, and name one event."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.card_bridge.links import LINK_PATH, Links, Step, link_key
from adapters.clock import FakeClock
from adapters.http.common import HttpError

KEY = link_key(bytes(range(32)))
BASE = "https://bridge.example.jp"
TTL = timedelta(minutes=10)


@pytest.fixture
def links(clock: FakeClock) -> Links:
    return Links(KEY, BASE + "/", clock)


def _refused(links: Links, token: str, step: Step | None = None) -> HttpError:
    with pytest.raises(HttpError) as caught:
        links.open(token, step)
    return caught.value


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims_of(token: str) -> dict[str, object]:
    body = token.split(".")[0]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def _with_claims(token: str, **changes: object) -> str:
    """The same signature over changed claims: what someone editing a link would send."""
    claims = _claims_of(token) | changes
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{token.split('.')[1]}"


def test_an_issued_link_opens_with_its_claims(links: Links, clock: FakeClock) -> None:
    issued = links.issue("reg-links-0001", "sign", attempt=3)
    claims = links.open(issued.token, "sign")
    assert (claims.registration_id, claims.step, claims.attempt) == ("reg-links-0001", "sign", 3)
    assert claims.expires_at == issued.expires_at == clock.now() + TTL


def test_the_urls_name_the_token_under_the_public_base(links: Links) -> None:
    issued = links.issue("reg-links-0001", "card_read")
    assert issued.url == f"{BASE}{LINK_PATH}{issued.token}"
    assert (issued.qr_svg_url, issued.qr_png_url) == (f"{issued.url}/qr.svg", f"{issued.url}/qr.png")
    assert issued.deep_link == f"honnin-jpki://open?link={quote(issued.url, safe='')}"


def test_rebase_moves_new_links_to_the_bound_address(links: Links) -> None:
    links.rebase("http://127.0.0.1:9999/")
    assert links.issue("reg-links-0001", "card_read").url.startswith("http://127.0.0.1:9999/app/v1/links/")


def test_open_without_a_step_accepts_any_step(links: Links) -> None:
    for step in ("card_read", "sign"):
        assert links.open(links.issue("reg-links-0001", step).token).step == step


def test_claims_changed_for_another_registration_are_unknown(links: Links) -> None:
    token = links.issue("reg-links-000A", "card_read").token
    forged = _with_claims(token, rid="reg-links-000B")
    error = _refused(links, forged)
    assert (error.status, error.code) == (404, "unknown_link")


@pytest.mark.parametrize("change", [{"step": "sign"}, {"attempt": 9}, {"exp": 4_000_000_000}])
def test_any_changed_claim_is_unknown(links: Links, change: dict[str, object]) -> None:
    token = links.issue("reg-links-0001", "card_read", attempt=1).token
    assert _refused(links, _with_claims(token, **change)).status == 404


def test_a_link_signed_with_another_key_is_unknown(clock: FakeClock) -> None:
    other = Links(link_key(bytes(32)), BASE, clock)
    token = other.issue("reg-links-0001", "card_read").token
    assert _refused(Links(KEY, BASE, clock), token).status == 404


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.def", "é.ü", "a.b.c", "%%%.%%%", "\udcff.x"],
    ids=["empty", "dot", "no-dot", "junk", "non-ascii", "three-parts", "percent", "surrogate"],
)
def test_garbage_is_unknown_never_a_crash(links: Links, token: str) -> None:
    assert _refused(links, token).code == "unknown_link"


def test_a_cut_signature_is_unknown(links: Links) -> None:
    token = links.issue("reg-links-0001", "card_read").token
    assert _refused(links, token[:-2]).status == 404


def test_a_link_works_until_its_expiry_and_not_at_it(links: Links, clock: FakeClock) -> None:
    token = links.issue("reg-links-0001", "card_read").token
    clock.advance(TTL - timedelta(seconds=1))
    assert links.open(token, "card_read").registration_id == "reg-links-0001"
    clock.advance(timedelta(seconds=1))
    error = _refused(links, token, "card_read")
    assert (error.status, error.code) == (410, "link_expired")


def test_the_ttl_is_configurable(clock: FakeClock) -> None:
    short = Links(KEY, BASE, clock, ttl=timedelta(seconds=30))
    token = short.issue("reg-links-0001", "sign", attempt=1).token
    clock.advance(timedelta(seconds=31))
    assert _refused(short, token).status == 410


def test_a_link_for_one_step_is_refused_for_the_other(links: Links) -> None:
    card_read = links.issue("reg-links-0001", "card_read").token
    sign = links.issue("reg-links-0001", "sign", attempt=1).token
    error = _refused(links, card_read, "sign")
    assert (error.status, error.code) == (403, "wrong_step")
    assert _refused(links, sign, "card_read").status == 403


def test_the_event_id_is_the_same_for_every_use_of_a_link(links: Links) -> None:
    token = links.issue("reg-links-0001", "card_read").token
    assert links.open(token).event_id() == links.open(token, "card_read").event_id()


def test_every_link_names_its_own_event(links: Links) -> None:
    ids = {
        links.open(links.issue("reg-links-0001", step, attempt=1).token).event_id()
        for step in ("card_read", "card_read", "sign", "sign")
    }
    assert len(ids) == 4, "two links for the same registration and step must not share an event id"


def test_the_link_key_is_derived_not_the_data_key() -> None:
    data_key = bytes(range(32))
    assert link_key(data_key) == KEY
    assert len(KEY) == 32
    assert data_key != KEY
    assert link_key(bytes(32)) != KEY


# --- one spelling per link ---------------------------------------------------------------------


def _standard_alphabet(text: str) -> str:
    return text.replace("-", "+").replace("_", "/")


def _other_spellings(token: str) -> dict[str, str]:
    """The same bytes, written as a lenient decoder would still read them."""
    body, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]  # flips a bit the 32-byte signature does not use
    assert base64.urlsafe_b64decode(signature[:-1] + sibling + "=") == raw
    return {
        "padded signature": f"{body}.{signature}=",
        "padded twice": f"{body}.{signature}==",
        "padded body": f"{body}=.{signature}",
        "standard alphabet": f"{body}.{base64.b64encode(raw).rstrip(b'=').decode()}",
        "stray bits": f"{body}.{signature[:-1]}{sibling}",
        "a space inside": f"{body}.{signature[:5]} {signature[5:]}",
        "a newline at the end": f"{body}.{signature}\n",
        "a dot at the end": f"{token}.",
        "a character the decoder skips": f"{body}.{signature[:3]}!{signature[3:]}",
    }


def _token_with(links: Links, *characters: str) -> str:
    """A link whose signature holds one of `characters` (so another alphabet spells it differently)."""
    for _ in range(500):
        token = links.issue("reg-links-0001", "card_read").token
        if any(c in token.split(".")[1] for c in characters):
            return token
    raise AssertionError("no signature with the wanted character in 500 links")


@pytest.mark.parametrize(
    "spelling",
    [
        "padded signature",
        "padded twice",
        "padded body",
        "standard alphabet",
        "stray bits",
        "a space inside",
        "a newline at the end",
        "a dot at the end",
        "a character the decoder skips",
    ],
)
def test_a_link_has_one_spelling_and_any_other_is_unknown(links: Links, spelling: str) -> None:
    token = _token_with(links, "-", "_")
    other = _other_spellings(token)[spelling]
    assert other != token
    assert links.open(token).registration_id == "reg-links-0001"
    refusal = _refused(links, other)
    assert (refusal.status, refusal.code) == (404, "unknown_link")


@given(data=st.data())
def test_every_changed_token_is_unknown(data: st.DataObject) -> None:
    links = Links(KEY, BASE, FakeClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)))
    token = links.issue("reg-links-0001", "sign", 1).token
    position = data.draw(st.integers(0, len(token)))
    inserted = data.draw(st.sampled_from(["=", "==", "+", "/", " ", "\n", ".", "%3D", "A", "-"]))
    changed = data.draw(
        st.sampled_from(
            [
                token[:position] + inserted + token[position:],
                _standard_alphabet(token),
                token[:position] + token[position + 1 :],
            ]
        )
    )
    if changed == token:
        return
    assert _refused(links, changed).code == "unknown_link"
