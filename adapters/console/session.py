"""The console's login: an operator token, once, for a signed and expiring session cookie.

The cookie holds the operator's name, the expiry, a random nonce and a fingerprint of the token it
was opened with (an HMAC, never the token): a session ends when it expires or when its token is no
longer configured. Every POST carries a CSRF token derived from the session's nonce (or, on the
login form, from a nonce cookie of its own) and checked here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Session:
    operator: str
    nonce: str
    expires: int  # seconds since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signs and reads session cookies and CSRF tokens with a key of the console's own."""

    def __init__(self, key: bytes, operators: Mapping[str, str], lifetime_seconds: int) -> None:
        self._key = key
        self._lifetime = lifetime_seconds
        self._tokens = [(hashlib.sha256(t.encode()).digest(), name) for t, name in operators.items()]
        self._prints = {self._fingerprint(t): name for t, name in operators.items()}

    def _mac(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest())

    def _fingerprint(self, token: str) -> str:
        return self._mac("token", token)[:22]

    def operator_of(self, token: str) -> str | None:
        """The operator a token names; every configured token is compared (constant time)."""
        presented = hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).digest()
        found = None
        for digest, name in self._tokens:
            if hmac.compare_digest(digest, presented):
                found = name
        return found

    def open(self, token: str, now: datetime) -> tuple[Session, str] | None:
        """A new session and its cookie value for a valid operator token, else None."""
        operator = self.operator_of(token)
        if operator is None:
            return None
        session = Session(operator, secrets.token_urlsafe(16), int(now.timestamp()) + self._lifetime)
        body = {
            "o": operator,
            "n": session.nonce,
            "e": session.expires,
            "f": self._fingerprint(token.strip()),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return session, f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str | None, now: datetime) -> Session | None:
        """The session a cookie holds, if its signature, its expiry and its token still hold."""
        if not cookie or "." not in cookie:
            return None
        payload, _, mac = cookie.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac("session", payload).encode()):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["o"]), str(body["n"]), int(body["e"]))
            fingerprint = str(body["f"])
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= now.timestamp() or self._prints.get(fingerprint) != session.operator:
            return None
        return session

    @property
    def lifetime(self) -> int:
        return self._lifetime

    def csrf(self, nonce: str) -> str:
        return self._mac("csrf", nonce)

    def csrf_ok(self, nonce: str | None, presented: object) -> bool:
        if not nonce or not isinstance(presented, str):
            return False
        return hmac.compare_digest(presented.encode(), self.csrf(nonce).encode())
