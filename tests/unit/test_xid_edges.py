"""The xID edges: app client and terms settings, the device key check, the e-mail link's secret."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from adapters.card_bridge.xid_checks import device_key
from adapters.card_bridge.xid_links import EmailLinks
from adapters.http.common import HttpError
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from orchestrator.xid import digest

FACILITY = "facility-1:token-of-facility-one-000"


def test_app_clients_are_read_and_kept_apart_from_facility_tokens() -> None:
    settings = Settings(app_clients="xid-ios:secret-of-ios-client-01", facility_tokens=FACILITY)
    assert settings.app_client_secrets() == {"secret-of-ios-client-01": "xid-ios"}
    with pytest.raises(ConfigurationError, match="keep them apart"):
        Settings(
            app_clients="xid-ios:token-of-facility-one-000", facility_tokens=FACILITY
        ).app_client_secrets()
    with pytest.raises(ConfigurationError, match="keep them apart"):
        Settings(
            app_clients="facility-1:secret-of-ios-client-01", facility_tokens=FACILITY
        ).app_client_secrets()
    with pytest.raises(ConfigurationError, match="16\\+ characters"):
        Settings(app_clients="xid-ios:short").app_client_secrets()


def test_terms_are_version_and_digest_pairs() -> None:
    terms = Settings(xid_terms=f"2026-10:{'A' * 64}, 2027-04:{'b' * 64}").accepted_terms()
    assert [(t.version, t.sha256) for t in terms] == [("2026-10", "a" * 64), ("2027-04", "b" * 64)]
    assert Settings().accepted_terms() == ()
    assert Settings().profiles()["xid"].terms == ()
    with pytest.raises(ConfigurationError, match="version:sha256"):
        Settings(xid_terms="2026-10:not-a-digest").accepted_terms()


def _spki(key) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_a_p256_or_rsa_device_key_is_taken_with_its_digest() -> None:
    ec_key = device_key(_spki(ec.generate_private_key(ec.SECP256R1()).public_key()))
    assert ec_key.algorithm == "ec-p256"
    assert len(ec_key.sha256) == 64
    rsa_key = device_key(_spki(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()))
    assert rsa_key.algorithm == "rsa"


@pytest.mark.parametrize(
    "key",
    [
        lambda: _spki(ec.generate_private_key(ec.SECP384R1()).public_key()),
        lambda: _spki(ed25519.Ed25519PrivateKey.generate().public_key()),
        lambda: _spki(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()),
        lambda: base64.b64encode(b"not a key").decode(),
        lambda: base64.b64encode(
            base64.b64decode(_spki(ec.generate_private_key(ec.SECP256R1()).public_key())) + b"\0"
        ).decode(),
    ],
    ids=["p384", "ed25519", "rsa1024", "garbage", "trailing"],
)
def test_other_device_keys_are_refused(key) -> None:
    with pytest.raises(HttpError) as refused:
        device_key(key())
    assert (refused.value.status, refused.value.code) == (422, "invalid_device_key")


def test_a_link_secret_derives_from_the_key_and_only_its_digest_is_kept() -> None:
    links = EmailLinks(bytes(range(32)), "https://honnin.example/")
    made = links.new("reg-xid-0001")
    url = links.url_for("reg-xid-0001", made.link_id)
    assert url.startswith("https://honnin.example/app/v1/xid/email-confirmations/reg-xid-0001.")
    token = url.rsplit("/", 1)[1]
    presented = EmailLinks.presented(token)
    assert presented is not None
    assert (presented.registration_id, presented.link_sha256) == ("reg-xid-0001", made.link_sha256)
    assert made.link_sha256 == digest(token.split(".", 1)[1])
    other = EmailLinks(bytes(32), "https://honnin.example/")
    assert other.url_for("reg-xid-0001", made.link_id) != url, "another key, another secret"
    assert EmailLinks.presented("reg-xid-0001.short") is None
    assert EmailLinks.presented("no-dot-here") is None
