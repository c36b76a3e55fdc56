"""One-time, short-lived links that bind the phone app to one registration and one step.

A link is stateless: `base64url(claims).base64url(HMAC-SHA256(key, claims))`. The claims name the
registration, the step (`card_read` or `sign`), the challenge attempt for `sign`, an expiry and a
random nonce. It cannot be used for another registration (the HMAC covers the id), it expires,
and it is single-use per step because the event it submits takes an id derived from the nonce:
a second use is the same event, which the orchestrator deduplicates, and the bridge answers 409.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters.http.common import HttpError
from orchestrator.ports import Clock

Step = Literal["card_read", "sign"]
STEPS: tuple[Step, ...] = ("card_read", "sign")
LINK_PATH = "/app/v1/links/"
Os = Literal["ios", "android"]
OSES: tuple[Os, ...] = ("ios", "android")


def link_key(data_key: bytes) -> bytes:
    """A key of its own for links, derived from the data key (one secret to manage, two uses)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"honnin card-bridge links").derive(
        data_key
    )


@dataclass(frozen=True)
class Claims:
    registration_id: str
    step: Step
    attempt: int
    expires_at: datetime
    nonce: str

    def event_id(self) -> uuid.UUID:
        """The id of the event this link submits: the same for every use of the link."""
        return uuid.uuid5(uuid.NAMESPACE_URL, f"honnin:link:{self.nonce}:{self.step}")


@dataclass(frozen=True)
class OsLink:
    """One OS's way in (the PC page shows one QR code per OS): `url` is the link with `?os=`, what
    the code encodes; a phone opens the app there (a universal/app link), or the landing page,
    whose button follows `deep_link`."""

    url: str
    deep_link: str
    qr_svg_url: str
    qr_png_url: str


@dataclass(frozen=True)
class IssuedLink:
    token: str
    url: str
    deep_link: str
    qr_svg_url: str
    qr_png_url: str
    expires_at: datetime
    ios: OsLink
    android: OsLink


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_CANONICAL = re.compile(r"^[A-Za-z0-9_-]+$")


def _unb64(text: str) -> bytes:
    """Only the one encoding `_b64` writes: the URL-safe alphabet, no padding, no stray bits.

    A decoder forgives much (padding, `+/`, characters it skips, unused trailing bits), so the
    bytes are encoded again and must give back the very text: one link, one spelling."""
    if not _CANONICAL.match(text):
        raise ValueError("not canonical base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


class Links:
    def __init__(
        self,
        key: bytes,
        public_url: str,
        clock: Clock,
        *,
        ttl: timedelta = timedelta(minutes=10),
        app_scheme: str = "honnin-jpki",
    ) -> None:
        self._key = key
        self._base = public_url.rstrip("/")
        self._clock = clock
        self._ttl = ttl
        self._scheme = app_scheme

    def rebase(self, public_url: str) -> None:
        """Where phones reach the bridge, once known (a server on port 0 learns it at start)."""
        self._base = public_url.rstrip("/")

    def url_of(self, token: str) -> str:
        return f"{self._base}{LINK_PATH}{token}"

    def issue(self, registration_id: str, step: Step, attempt: int = 0) -> IssuedLink:
        expires = int((self._clock.now() + self._ttl).timestamp())
        claims = {
            "rid": registration_id,
            "step": step,
            "attempt": attempt,
            "exp": expires,
            "nonce": _b64(secrets.token_bytes(16)),
        }
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{body}.{_b64(self._sign(body))}"
        url = self.url_of(token)
        return IssuedLink(
            token=token,
            url=url,
            deep_link=self.deep_link(url, "ios"),
            qr_svg_url=f"{url}/qr.svg",
            qr_png_url=f"{url}/qr.png",
            expires_at=datetime.fromtimestamp(expires, UTC),
            ios=self.os_link(token, "ios"),
            android=self.os_link(token, "android"),
        )

    def os_link(self, token: str, os: Os) -> OsLink:
        """The link as one OS's QR code and landing page carry it."""
        url = self.url_of(token)
        return OsLink(
            url=f"{url}?os={os}",
            deep_link=self.deep_link(url, os),
            qr_svg_url=f"{url}/qr.svg?os={os}",
            qr_png_url=f"{url}/qr.png?os={os}",
        )

    def deep_link(self, url: str, os: Os) -> str:
        """Opens the app with the link: the app's URL scheme on iOS, an intent URI on Android
        (Chrome there opens apps by intent; a bare custom scheme may be ignored)."""
        query = f"open?link={quote(url, safe='')}"
        if os == "android":
            return f"intent://{query}#Intent;scheme={self._scheme};end"
        return f"{self._scheme}://{query}"

    def open(self, token: str, step: Step | None = None) -> Claims:
        """The claims of a genuine, unexpired link (for `step`, when given); else an HttpError."""
        claims = self._verified(token)
        if claims.expires_at <= self._clock.now():
            raise HttpError(
                410, "link_expired", "this link has expired: start again from the facility's page"
            )
        if step is not None and claims.step != step:
            raise HttpError(403, "wrong_step", f"this link is for the {claims.step} step, not {step}")
        return claims

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()

    def _verified(self, token: str) -> Claims:
        unknown = HttpError(404, "unknown_link", "no such link")
        body, dot, signature = token.partition(".")
        if not dot:
            raise unknown
        try:
            genuine = hmac.compare_digest(_unb64(signature), self._sign(body))
            data = json.loads(_unb64(body)) if genuine else None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise unknown from None
        if not isinstance(data, dict) or data.get("step") not in STEPS:
            raise unknown
        return Claims(
            registration_id=str(data["rid"]),
            step=data["step"],
            attempt=int(data["attempt"]),
            expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
            nonce=str(data["nonce"]),
        )
