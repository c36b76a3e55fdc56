"""The xID profile as data (seed 003), and the pure rules its steps share with the app.

The path: the app starts the registration, sends its signing certificate (the four facts come
back to be shown), consents and signs the accepted terms bound to the server's challenge, the
verifier decides, ID有効化 registers the device key and finds the municipality, an e-mail address
is confirmed through a mailed link, and 利用を開始する ends it `activated`.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from orchestrator.model import ProfilePath, State

XID_PATH = ProfilePath(
    states=(
        State.NEW,
        State.INFO_ENTERED,
        State.CARD_READ,
        State.CONFIRMED,
        State.SIGNATURE_VERIFIED,
        State.ID_ENABLED,
        State.EMAIL_PENDING,
        State.EMAIL_CONFIRMED,
        State.ACTIVATED,
    ),
    accepts={
        State.NEW: frozenset({"registration.started"}),
        State.INFO_ENTERED: frozenset({"xid.certificate_read"}),
        State.CARD_READ: frozenset({"xid.certificate_read", "xid.consent_given"}),
        State.CONFIRMED: frozenset(
            {
                "xid.signature_submitted",
                "verification.completed",
                "registration.deadline_reached",
                "verification.replay_requested",
                "xid.activation_requested",
            }
        ),
        State.SIGNATURE_VERIFIED: frozenset({"xid.activation_requested"}),
        State.ID_ENABLED: frozenset({"xid.email_entered"}),
        State.EMAIL_PENDING: frozenset(
            {
                "xid.email_entered",
                "email.delivery_completed",
                "registration.deadline_reached",
                "xid.email_confirmed",
                "xid.use_started",
            }
        ),
        State.EMAIL_CONFIRMED: frozenset({"xid.use_started", "email.delivery_completed"}),
    },
)
XID_CHECKS = frozenset({"signature", "chain"})
"""No identity match: there is no card read to match the certificate against."""
XID_STEPS = frozenset({"certificate", "consent", "signature", "activation", "email", "use"})

CONSENT_DOMAIN = "honnin-xid-consent-v1"


def consent_message(registration_id: str, terms_version: str, terms_sha256: str, challenge: str) -> bytes:
    """The exact bytes the card signs: the accepted terms bound to this registration's challenge.

    Five lines, each ending in LF, ASCII: the domain string, then `registration_id=`,
    `terms_version=`, `terms_sha256=` (lowercase hex) and `challenge=` (the base64 text as
    issued). The card's RSASSA-PKCS1-v1_5 signature hashes them with SHA-256.
    """
    lines = (
        CONSENT_DOMAIN,
        f"registration_id={registration_id}",
        f"terms_version={terms_version}",
        f"terms_sha256={terms_sha256}",
        f"challenge={challenge}",
    )
    return "".join(line + "\n" for line in lines).encode("ascii")


@cache
def carrier_domains() -> frozenset[str]:
    """The carriers' mail domains (package data, mails/carrier_domains.txt)."""
    text = resources.files("orchestrator.mails").joinpath("carrier_domains.txt").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def is_carrier_address(address: str) -> bool:
    """A carrier's own domain or one of its subdomains (biz.ezweb.ne.jp)."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    labels = domain.split(".")
    return any(".".join(labels[i:]) in carrier_domains() for i in range(len(labels)))


def digest(secret: str) -> str:
    """What is kept of a link's secret: its SHA-256, lowercase hex."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
