"""The e-mail confirmation link (メールアドレス確認): single-use, expiring, stored only as a digest.

A link is `{PUBLIC_URL}/app/v1/xid/email-confirmations/{registration_id}.{secret}`, where the
secret is base64url(HMAC-SHA256(key, "honnin-xid-email-link/1:{registration_id}:{link_id}")) and
the key derives from the data key. The registration keeps `link_id` and SHA-256(secret), never the
secret: the mail worker derives it again to write the mail (a retry sends the same link), the
confirmation route hashes what comes back. Whether it is current, expired, void or used is the
registration's to say; a made-up token matches nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator.xid import digest

CONFIRM_PATH = "/app/v1/xid/email-confirmations/"
_TOKEN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{7,63})\.([A-Za-z0-9_-]{43})$")


def email_link_key(data_key: bytes) -> bytes:
    """A key of its own for e-mail links, derived from the data key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"honnin xid e-mail links").derive(
        data_key
    )


@dataclass(frozen=True)
class NewLink:
    link_id: str
    link_sha256: str


@dataclass(frozen=True)
class Presented:
    registration_id: str
    link_sha256: str


class EmailLinks:
    def __init__(self, key: bytes, public_url: str) -> None:
        self._key = key
        self._base = public_url.rstrip("/")

    def rebase(self, public_url: str) -> None:
        """Where the person's browser reaches Honnin, once known (a test server on port 0)."""
        self._base = public_url.rstrip("/")

    def new(self, registration_id: str) -> NewLink:
        """A fresh link for a registration: its name and the digest the registration keeps."""
        link_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        return NewLink(link_id, digest(self._secret(registration_id, link_id)))

    def url_for(self, registration_id: str, link_id: str) -> str:
        return f"{self._base}{CONFIRM_PATH}{registration_id}.{self._secret(registration_id, link_id)}"

    @staticmethod
    def presented(token: str) -> Presented | None:
        """The registration and the digest of a token from the path; None when it cannot be one."""
        match = _TOKEN.match(token)
        if match is None:
            return None
        return Presented(match[1], digest(match[2]))

    def _secret(self, registration_id: str, link_id: str) -> str:
        message = f"honnin-xid-email-link/1:{registration_id}:{link_id}".encode()
        mac = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
