"""The card's signature over the challenge: True only when it is right, False (never an error) otherwise."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

from adapters.ca_revocation.devca import Card, DevCA
from adapters.ca_revocation.signatures import public_key_der_of, verify_signature

DATA = b"honnin challenge 2026-11-23 0123456789abcdef"
ALGORITHMS = ("rsa-pkcs1v15-sha256", "rsa-pss-sha256", "ecdsa-sha256")


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class Keys:
    """A signer for each algorithm, and a second key of the same type that did not sign."""

    card: Card
    other_rsa: bytes
    ec_private: ec.EllipticCurvePrivateKey
    other_ec: bytes

    def public(self, algorithm: str) -> bytes:
        if algorithm == "ecdsa-sha256":
            return _spki(self.ec_private.public_key())
        return public_key_der_of(self.card.certificate)

    def other(self, algorithm: str) -> bytes:
        return self.other_ec if algorithm == "ecdsa-sha256" else self.other_rsa

    def sign(self, algorithm: str, data: bytes = DATA) -> bytes:
        if algorithm == "ecdsa-sha256":
            return self.ec_private.sign(data, ec.ECDSA(hashes.SHA256()))
        if algorithm == "rsa-pss-sha256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
            return self.card.key.sign(data, pss, hashes.SHA256())
        return self.card.sign(data)


@pytest.fixture(scope="module")
def keys() -> Keys:
    """Generated once: the CA's own RSA key is the wrong RSA key, a second EC key the wrong EC key."""
    ca = DevCA.create()
    return Keys(
        card=ca.issue(),
        other_rsa=_spki(ca.key.public_key()),
        ec_private=ec.generate_private_key(ec.SECP256R1()),
        other_ec=_spki(ec.generate_private_key(ec.SECP256R1()).public_key()),
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_right_signature_verifies(keys: Keys, algorithm: str) -> None:
    assert verify_signature(keys.public(algorithm), DATA, keys.sign(algorithm), algorithm) is True


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_other_data_does_not_verify(keys: Keys, algorithm: str) -> None:
    assert verify_signature(keys.public(algorithm), DATA + b"!", keys.sign(algorithm), algorithm) is False


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_another_key_does_not_verify(keys: Keys, algorithm: str) -> None:
    assert verify_signature(keys.other(algorithm), DATA, keys.sign(algorithm), algorithm) is False


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_truncated_or_flipped_signature_does_not_verify(keys: Keys, algorithm: str) -> None:
    signature = keys.sign(algorithm)
    flipped = bytes([signature[0], signature[1], signature[2] ^ 0x01]) + signature[3:]
    for bad in (signature[:-1], signature[: len(signature) // 2], signature + b"\x00", flipped, b""):
        assert verify_signature(keys.public(algorithm), DATA, bad, algorithm) is False


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_garbage_key_bytes_do_not_verify(keys: Keys, algorithm: str) -> None:
    public = keys.public(algorithm)
    signature = keys.sign(algorithm)
    for bad in (b"", b"\x00", b"garbage", public[:-1], public[: len(public) // 2], public + b"\x00"):
        assert verify_signature(bad, DATA, signature, algorithm) is False


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_data_is_just_data(keys: Keys, algorithm: str) -> None:
    assert verify_signature(keys.public(algorithm), b"", keys.sign(algorithm, b""), algorithm) is True
    assert verify_signature(keys.public(algorithm), b"", keys.sign(algorithm), algorithm) is False


@pytest.mark.parametrize("salt", [32, padding.PSS.DIGEST_LENGTH])
def test_pss_with_a_32_byte_salt_verifies(keys: Keys, salt: int) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    signature = keys.card.key.sign(DATA, pss, hashes.SHA256())
    assert verify_signature(keys.public("rsa-pss-sha256"), DATA, signature, "rsa-pss-sha256") is True


@pytest.mark.parametrize("salt", [0, 20, 31, 33, 64, padding.PSS.MAX_LENGTH])
def test_pss_with_any_other_salt_length_does_not_verify(keys: Keys, salt: int) -> None:
    """RFC 4055/8017's profile for SHA-256: the salt is the digest length, 32, and nothing else."""
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    signature = keys.card.key.sign(DATA, pss, hashes.SHA256())
    assert verify_signature(keys.public("rsa-pss-sha256"), DATA, signature, "rsa-pss-sha256") is False


def test_pss_with_another_mgf_hash_does_not_verify(keys: Keys) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=32)
    signature = keys.card.key.sign(DATA, pss, hashes.SHA256())
    assert verify_signature(keys.public("rsa-pss-sha256"), DATA, signature, "rsa-pss-sha256") is False


def test_rsa_paddings_are_not_interchangeable(keys: Keys) -> None:
    public = keys.public("rsa-pkcs1v15-sha256")
    assert verify_signature(public, DATA, keys.sign("rsa-pkcs1v15-sha256"), "rsa-pss-sha256") is False
    assert verify_signature(public, DATA, keys.sign("rsa-pss-sha256"), "rsa-pkcs1v15-sha256") is False


def test_another_hash_does_not_verify(keys: Keys) -> None:
    signature = keys.card.key.sign(DATA, padding.PKCS1v15(), hashes.SHA1())
    assert (
        verify_signature(keys.public("rsa-pkcs1v15-sha256"), DATA, signature, "rsa-pkcs1v15-sha256") is False
    )


def test_ecdsa_wants_der_not_raw_r_s(keys: Keys) -> None:
    r, s = utils.decode_dss_signature(keys.sign("ecdsa-sha256"))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verify_signature(keys.public("ecdsa-sha256"), DATA, raw, "ecdsa-sha256") is False


def test_a_key_type_that_does_not_fit_the_algorithm_does_not_verify(keys: Keys) -> None:
    ec_public, rsa_public = keys.public("ecdsa-sha256"), keys.public("rsa-pkcs1v15-sha256")
    ec_signature, rsa_signature = keys.sign("ecdsa-sha256"), keys.sign("rsa-pkcs1v15-sha256")
    assert verify_signature(ec_public, DATA, ec_signature, "rsa-pkcs1v15-sha256") is False
    assert verify_signature(ec_public, DATA, ec_signature, "rsa-pss-sha256") is False
    assert verify_signature(rsa_public, DATA, rsa_signature, "ecdsa-sha256") is False
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_public = _spki(ed_key.public_key())
    for algorithm in ALGORITHMS:
        assert verify_signature(ed_public, DATA, ed_key.sign(DATA), algorithm) is False


@pytest.mark.parametrize(
    "algorithm", ["", "rsa-pkcs1v15-sha1", "RSA-PKCS1V15-SHA256", "rsa-pkcs1v15-sha256 ", "ed25519", "none"]
)
def test_an_unknown_algorithm_does_not_verify(keys: Keys, algorithm: str) -> None:
    public = keys.public("rsa-pkcs1v15-sha256")
    assert verify_signature(public, DATA, keys.sign("rsa-pkcs1v15-sha256"), algorithm) is False


def test_inputs_of_the_wrong_type_do_not_raise(keys: Keys) -> None:
    public, signature = keys.public("rsa-pkcs1v15-sha256"), keys.sign("rsa-pkcs1v15-sha256")
    assert verify_signature(public, DATA, signature, None) is False  # type: ignore[arg-type]
    assert verify_signature(public, DATA, signature, ["rsa-pkcs1v15-sha256"]) is False  # type: ignore[arg-type]
    assert verify_signature(None, DATA, signature, "rsa-pkcs1v15-sha256") is False  # type: ignore[arg-type]
    assert verify_signature(public, "text", signature, "rsa-pkcs1v15-sha256") is False  # type: ignore[arg-type]
    assert verify_signature(public, DATA, None, "ecdsa-sha256") is False  # type: ignore[arg-type]


def test_all_empty_does_not_verify() -> None:
    for algorithm in ALGORITHMS:
        assert verify_signature(b"", b"", b"", algorithm) is False


def test_public_key_der_of_is_the_certificate_key(keys: Keys) -> None:
    expected = _spki(keys.card.key.public_key())
    assert public_key_der_of(keys.card.certificate) == expected
    assert verify_signature(expected, DATA, keys.card.sign(DATA), "rsa-pkcs1v15-sha256") is True


def test_random_bytes_never_raise(keys: Keys) -> None:
    rng = random.Random(20261123)
    publics = [keys.public(a) for a in ALGORITHMS]
    for _ in range(500):
        public = bytearray(rng.choice(publics))
        for _ in range(rng.randint(0, 3)):
            public[rng.randrange(len(public))] = rng.randrange(256)
        signature = rng.randbytes(rng.choice([0, 1, 64, 71, 256, 300]))
        algorithm = rng.choice([*ALGORITHMS, "x"])
        assert verify_signature(bytes(public), DATA, signature, algorithm) is False
