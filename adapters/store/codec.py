"""Personal facts at rest: AES-GCM with the key from settings, bound to the row they sit in."""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.errors import ConfigurationError

_VERSION = b"\x01"
_NONCE = 12


def decode_key(text: str) -> bytes:
    """A data key is 32 random bytes, written as base64 (either alphabet)."""
    try:
        key = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError("the data key is not base64") from exc
    if len(key) != 32:
        raise ConfigurationError(f"the data key must be 32 bytes, not {len(key)}")
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class Sealer:
    """Seals a blob to its place (`aad`), so a blob copied to another row does not open."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def open(self, blob: bytes, aad: str) -> bytes:
        if blob[:1] != _VERSION:
            raise ConfigurationError(f"unknown sealed-blob version at {aad}")
        nonce, sealed = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            return self._aead.decrypt(nonce, sealed, aad.encode())
        except InvalidTag as exc:
            raise ConfigurationError(f"the data key does not open {aad}: wrong key or tampered row") from exc


def stamp(value: datetime) -> str:
    """UTC, fixed width: these strings sort as the instants do."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def unstamp(value: str) -> datetime:
    return datetime.fromisoformat(value)
