"""Reading the basic four facts from a signing certificate, and refusing everything else cleanly."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.ca_revocation import jpki
from adapters.ca_revocation.certificates import (
    CertificateError,
    fingerprint,
    load_certificate,
    parse_identity,
)
from adapters.ca_revocation.devca import DevCA, Person, identity_names, new_key
from orchestrator.errors import PermanentError
from orchestrator.identity import CardIdentity

NAME = "公的　花子"
ADDRESS = "東京都千代田区千代田１－１"
GOOD = {
    jpki.OID_NAME: NAME,
    jpki.OID_NAME_SUBSTITUTED: "0" * len(NAME),
    jpki.OID_SEX: "2",
    jpki.OID_BIRTH_DATE: "419900401",
    jpki.OID_ADDRESS: ADDRESS,
    jpki.OID_ADDRESS_SUBSTITUTED: "0" * len(ADDRESS),
}


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create()


@pytest.fixture(scope="module")
def card_key():
    """One RSA key for every card of this module: generating RSA keys is slow."""
    return new_key()


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def issued_der(ca: DevCA, card_key) -> bytes:
    return ca.issue(Person(), key=card_key).der


def _value(text: str) -> bytes:
    """DER UTF8String, as JPKI encodes each fact."""
    body = text.encode()
    if len(body) < 0x80:
        return b"\x0c" + bytes([len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(size)]) + size + body


def _cert(key: ec.EllipticCurvePrivateKey, names: list[x509.GeneralName] | None) -> bytes:
    """A self-signed certificate with exactly these subjectAltName entries (None: no SAN at all)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2029, 1, 1, tzinfo=UTC))
    )
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _facts_cert(key: ec.EllipticCurvePrivateKey, **overrides: str | bytes | None) -> bytes:
    """GOOD facts, with some replaced (text, raw DER value bytes) or dropped (None); keys are OID suffixes."""
    values: dict[str, str | bytes | None] = dict(GOOD)
    for suffix, value in overrides.items():
        values[f"1.2.392.200149.8.5.5.{suffix.removeprefix('oid')}"] = value
    names: list[x509.GeneralName] = [
        x509.OtherName(x509.ObjectIdentifier(oid), value if isinstance(value, bytes) else _value(value))
        for oid, value in values.items()
        if value is not None
    ]
    return _cert(key, names)


def _code(der: bytes) -> str:
    with pytest.raises(CertificateError) as caught:
        parse_identity(der)
    return caught.value.code


# -- the four facts round-trip from the development CA ----------------------------------------------


def test_devca_certificate_round_trips(issued_der: bytes) -> None:
    identity = parse_identity(issued_der)
    assert identity == CardIdentity(
        name=NAME,
        name_substituted="00000",
        sex="2",
        birth_date=date(1990, 4, 1),
        birth_era="4",
        address=ADDRESS,
        address_substituted="0" * len(ADDRESS),
    )


def test_substitute_flags_round_trip(ca: DevCA, card_key) -> None:
    person = Person(
        name="高橋〓子",
        name_substituted="0010",
        address="東京都〓区",
        address_substituted="00010",
        sex="1",
    )
    identity = parse_identity(ca.issue(person, key=card_key).der)
    assert (identity.name, identity.name_substituted) == ("高橋〓子", "0010")
    assert (identity.address, identity.address_substituted) == ("東京都〓区", "00010")
    assert identity.sex == "1"


def test_a_200_character_address_round_trips(ca: DevCA, card_key) -> None:
    address = "北海道札幌市中央区" + "一" * 191  # 600 bytes of UTF-8: a two-byte DER length
    identity = parse_identity(ca.issue(Person(address=address), key=card_key).der)
    assert (identity.address, identity.address_substituted) == (address, "0" * 200)


@pytest.mark.parametrize(
    ("born", "era"),
    [
        (date(1900, 1, 1), "1"),  # Meiji
        (date(1912, 7, 29), "1"),
        (date(1912, 7, 30), "2"),  # Taisho
        (date(1926, 12, 24), "2"),
        (date(1926, 12, 25), "3"),  # Showa
        (date(1989, 1, 7), "3"),
        (date(1989, 1, 8), "4"),  # Heisei
        (date(2019, 4, 30), "4"),
        (date(2019, 5, 1), "5"),  # Reiwa
        (date(2024, 2, 29), "5"),
    ],
)
def test_birth_date_in_every_era(ca: DevCA, card_key, born: date, era: str) -> None:
    identity = parse_identity(ca.issue(Person(birth_date=born), key=card_key).der)
    assert (identity.birth_date, identity.birth_era) == (born, era)


def test_era_zero_means_unknown_birth_date(ca: DevCA, card_key, ec_key) -> None:
    before_meiji = parse_identity(ca.issue(Person(birth_date=date(1860, 1, 1)), key=card_key).der)
    assert (before_meiji.birth_date, before_meiji.birth_era) == (None, "0")
    all_zero = parse_identity(_facts_cert(ec_key, oid4="000000000"))
    assert (all_zero.birth_date, all_zero.birth_era) == (None, "0")


@pytest.mark.parametrize("sex", ["1", "2", "3"])
def test_every_sex_code(ec_key, sex: str) -> None:
    assert parse_identity(_facts_cert(ec_key, oid3=sex)).sex == sex


def test_absent_flags_mean_none_substituted(ec_key) -> None:
    identity = parse_identity(_facts_cert(ec_key, oid2=None, oid6=None))
    assert (identity.name_substituted, identity.address_substituted) == ("", "")


def test_double_wrapped_value_is_tolerated(ec_key) -> None:
    wrapped = b"\xa0" + bytes([len(_value("1"))]) + _value("1")
    assert parse_identity(_facts_cert(ec_key, oid3=wrapped)).sex == "1"


def test_other_san_entries_are_ignored(ec_key) -> None:
    names: list[x509.GeneralName] = [
        x509.DNSName("example.jp"),
        x509.OtherName(x509.ObjectIdentifier("1.2.3.4"), _value("x")),
        *identity_names(Person()),
    ]
    assert parse_identity(_cert(ec_key, names)).name == Person().name


# -- code 33: not a certificate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        lambda der: b"",
        lambda der: b"\x00",
        lambda der: b"not a certificate at all",
        lambda der: der[:-1],
        lambda der: der[: len(der) // 2],
        lambda der: der[:4],
        lambda der: der + b"\x00",
        lambda der: b"\x31" + der[1:],  # SET instead of SEQUENCE
        lambda der: x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM),
    ],
    ids=["empty", "one-byte", "garbage", "minus-one", "half", "header", "trailing", "wrong-tag", "pem"],
)
def test_malformed_bytes_are_code_33(issued_der: bytes, mangle) -> None:
    bad = mangle(issued_der)
    with pytest.raises(CertificateError) as caught:
        load_certificate(bad)
    assert caught.value.code == "33"
    assert _code(bad) == "33"


def test_load_certificate_reads_der(issued_der: bytes) -> None:
    cert = load_certificate(issued_der)
    assert cert.public_bytes(serialization.Encoding.DER) == issued_der


def test_certificate_error_is_permanent() -> None:
    assert issubclass(CertificateError, PermanentError)
    assert CertificateError("x").code == "33"


# -- code 34: a certificate, but not a JPKI signing certificate ----------------------------------------


def test_no_subject_alt_name_is_code_34(ec_key) -> None:
    assert _code(_cert(ec_key, None)) == "34"


def test_san_without_the_four_facts_is_code_34(ec_key) -> None:
    assert _code(_cert(ec_key, [x509.DNSName("example.jp")])) == "34"


@pytest.mark.parametrize("missing", ["oid1", "oid3", "oid4", "oid5"])
def test_missing_required_fact_is_code_34(ec_key, missing: str) -> None:
    assert _code(_facts_cert(ec_key, **{missing: None})) == "34"


def test_duplicated_oid_is_code_34(ec_key) -> None:
    names = [*identity_names(Person()), x509.OtherName(x509.ObjectIdentifier(jpki.OID_SEX), _value("1"))]
    assert _code(_cert(ec_key, names)) == "34"


@pytest.mark.parametrize(
    "overrides",
    [
        {"oid3": "9"},
        {"oid3": ""},
        {"oid3": "12"},
        {"oid3": "２"},
        {"oid4": "420230230"},  # 30 February
        {"oid4": "419901301"},  # month 13
        {"oid4": "400000101"},  # year 0
        {"oid4": "619900401"},  # no era 6 yet
        {"oid4": "41990041"},
        {"oid4": "4199004010"},
        {"oid4": "4１990401"},  # full-width digit
        {"oid4": "4-1990-04-01"},
        {"oid2": "0010"},  # flags of the wrong length
        {"oid2": ""},
        {"oid2": "00200"},
        {"oid6": "0"},
        {"oid1": ""},
        {"oid5": "   "},
        {"oid1": "公的\n花子"},
        {"oid3": b"\x13\x011"},  # PrintableString, not UTF8String
        {"oid1": b"\x0c\x02\xff\xfe"},  # not UTF-8
        {"oid3": b"\xa0\x03\xa0\x01\x00"},  # wrapped, but not a string
        {"oid3": b"\xa0\x04\x0c\x81\x011"},  # wrapped, BER long length form inside
    ],
    ids=lambda overrides: next(f"{k}={v!r}" for k, v in overrides.items()),
)
def test_bad_fact_format_is_code_34(ec_key, overrides: dict[str, str | bytes]) -> None:
    assert _code(_facts_cert(ec_key, **overrides)) == "34"


def test_error_messages_hold_no_personal_facts(ec_key) -> None:
    for overrides in ({"oid4": "420230230"}, {"oid2": "0010"}, {"oid3": "9"}, {"oid1": "公的\n花子"}):
        with pytest.raises(CertificateError) as caught:
            parse_identity(_facts_cert(ec_key, **overrides))
        message = str(caught.value)
        for fact in ("公的", "花子", "東京都", "420230230", "19900401", "1990"):
            assert fact not in message


# -- fingerprint ------------------------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_der(issued_der: bytes) -> None:
    assert fingerprint(issued_der) == hashlib.sha256(issued_der).hexdigest()
    assert fingerprint(issued_der) == fingerprint(issued_der).lower()
    assert len(fingerprint(issued_der)) == 64
    assert fingerprint(b"") == hashlib.sha256(b"").hexdigest()


# -- fuzz: any bytes give an identity or a CertificateError, nothing else -------------------------------


def _mutations(der: bytes, san: tuple[int, int], rng: random.Random, count: int) -> list[bytes]:
    cases = []
    for _ in range(count):
        data = bytearray(der)
        kind = rng.randrange(6)
        if kind == 0:  # a few random bytes anywhere
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # a few random bytes inside the subjectAltName
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(*san)] = rng.randrange(256)
        elif kind == 2:  # truncated
            del data[rng.randrange(len(data)) :]
        elif kind == 3:  # bytes inserted
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 4:  # bytes deleted inside the subjectAltName
            at = rng.randrange(*san)
            del data[at : at + rng.randint(1, 8)]
        else:  # one bit flipped
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
        cases.append(bytes(data))
    return cases


def test_fuzzed_der_never_raises_anything_else(ca: DevCA, card_key) -> None:
    card = ca.issue(Person(name="高橋〓子", name_substituted="0010"), key=card_key)
    der = card.der
    san_value = card.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    start = der.index(san_value.public_bytes())
    rng = random.Random(20261123)
    outcomes = {"ok": 0, "33": 0, "34": 0}
    for case in _mutations(der, (start, start + len(san_value.public_bytes())), rng, 2000):
        try:
            identity = parse_identity(case)
        except CertificateError as exc:
            outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
        else:
            assert isinstance(identity, CardIdentity)
            outcomes["ok"] += 1
        assert fingerprint(case) == hashlib.sha256(case).hexdigest()
    assert set(outcomes) == {"ok", "33", "34"}  # no other code
    assert min(outcomes.values()) > 0  # the mutations reached every kind of answer
