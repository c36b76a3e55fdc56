"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets and headers.

A secret is `whsec_` + base64 of 24–32 random bytes; a signature is `v1,` + base64 of
HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}"), one per secret, space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(message_id: str, at: datetime, body: bytes, keys: Iterable[str]) -> dict[str, str]:
    """The three headers of one attempt: its id, its time (whole seconds) and every signature."""
    timestamp = int(at.timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, message_id, timestamp, body) for k in keys),
        "content-type": "application/json",
    }
