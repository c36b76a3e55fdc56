"""The demo's development CA, its four cards and the demo facility's token, in one folder.

`honnin demo --serve` makes them once (a second start reuses them) and rewrites the CRL at every
start. The files are those of `honnin dev-ca`: `ca/root.pem`, `ca/root-key.pem`, `ca/crl.der`,
`ca/cards/<card>.pem` and `<card>-key.pem`; the token is `facility-token` (mode 0600).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from adapters.ca_revocation.devca import Card, DevCA, Person, save_card
from honnin.settings import Settings

FACILITY = "demo-facility"
HANAKO = Person()  # 公的　花子, the person the demo's form is filled in for
TARO = Person(name="公的　太郎", sex="1", birth_date=date(1985, 7, 7))
CRL_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class DemoCard:
    name: str  # the file name under ca/cards
    label: str  # what the simulator shows


CARDS = (
    DemoCard("valid", "有効なカード（公的 花子）"),
    DemoCard("other-person", "別人のカード（公的 太郎）"),
    DemoCard("expired", "有効期限切れのカード（公的 花子・Code 21）"),
    DemoCard("revoked", "失効したカード（公的 花子・Code 23）"),
)


def prepare(folder: Path, now: datetime | None = None) -> None:
    """Make the CA, the cards and the token unless the folder holds them; write a fresh CRL."""
    now = now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    ca_dir = folder / "ca"
    ca = DevCA.load(ca_dir) if (ca_dir / "root.pem").exists() else _new_ca(ca_dir, now)
    (ca_dir / "crl.der").write_bytes(ca.crl(this_update=now - timedelta(minutes=1), next_update=CRL_LIFETIME))
    token = folder / "facility-token"
    if not token.exists():
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"demo-{secrets.token_urlsafe(24)}\n")


def _new_ca(ca_dir: Path, now: datetime) -> DevCA:
    ca = DevCA.create(now=now - timedelta(days=100))
    cards = {
        "valid": ca.issue(HANAKO, now=now),
        "other-person": ca.issue(TARO, now=now),
        "expired": ca.issue(HANAKO, not_before=now - timedelta(days=40), valid_for=timedelta(days=30)),
        "revoked": ca.issue(HANAKO, now=now),
    }
    ca.revoke(cards["revoked"], at=now - timedelta(minutes=5))
    for name, card in cards.items():
        save_card(card, ca_dir / "cards", name)
    ca.save(ca_dir)
    return ca


def facility_token(folder: Path) -> str:
    return (folder / "facility-token").read_text().strip()


def load_card(folder: Path, name: str) -> Card:
    """A demo card and its key, as `honnin dev-ca` saved them."""
    if name not in {card.name for card in CARDS}:
        raise KeyError(name)
    cards = folder / "ca" / "cards"
    cert = x509.load_pem_x509_certificate((cards / f"{name}.pem").read_bytes())
    key = serialization.load_pem_private_key((cards / f"{name}-key.pem").read_bytes(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("a demo card's key is RSA")
    return Card(cert, key)


def demo_settings(base: Settings, folder: Path) -> Settings:
    """`base` (the environment's settings) in demo mode on `folder`: trust the dev CA only (and the
    JPKI test-environment policy its cards carry), its CRL, the demo facility's token beside any
    configured ones, the store in `folder/data` unless one is configured."""
    tokens = f"{FACILITY}:{facility_token(folder)}"
    if base.facility_tokens is not None:
        tokens = f"{base.facility_tokens.get_secret_value()},{tokens}"
    changes: dict[str, object] = {
        "demo": True,
        "demo_dir": folder,
        "trust_anchor_files": [folder / "ca" / "root.pem"],
        "revocation": "crl",
        "crl_files": [folder / "ca" / "crl.der"],
        "accept_test_certificates": True,  # the development CA issues test-environment certificates
        "facility_tokens": SecretStr(tokens),
    }
    if "data_dir" not in base.model_fields_set:
        changes["data_dir"] = folder / "data"
    return base.model_copy(update=changes)
