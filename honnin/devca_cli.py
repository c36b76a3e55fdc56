"""`honnin dev-ca`: a development CA on disk, its cards, CRL and OCSP responder, for demos and tests."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.ca_revocation.devca import Card, DevCA, Person, save_card

CA_DIR = click.Path(file_okay=False, path_type=Path)


@click.group("dev-ca")
def dev_ca() -> None:
    """A development CA issuing JPKI-shaped signing certificates (never trust it in production)."""


@dev_ca.command()
@click.argument("directory", type=CA_DIR)
def init(directory: Path) -> None:
    """Create a root in DIRECTORY and an empty CRL; print the settings that trust it."""
    if (directory / "root.pem").exists():
        raise click.ClickException(f"{directory} already holds a CA")
    ca = DevCA.create()
    ca.save(directory)
    _write_crl(ca, directory)
    click.echo(f"HONNIN_TRUST_ANCHOR_FILES={(directory / 'root.pem').resolve()}")
    click.echo("HONNIN_REVOCATION=crl")
    click.echo(f"HONNIN_CRL_FILES={(directory / 'crl.der').resolve()}")
    click.echo("HONNIN_ACCEPT_TEST_CERTIFICATES=true")


@dev_ca.command()
@click.argument("directory", type=CA_DIR)
@click.argument("card_name")
@click.option(
    "--name", default=Person.name, show_default=True, help="氏名, family and given name split by U+3000"
)
@click.option("--address", default=Person.address, show_default=True)
@click.option("--birth-date", type=click.DateTime(["%Y-%m-%d"]), default=Person.birth_date.isoformat())
@click.option("--sex", type=click.Choice(["1", "2", "3"]), default=Person.sex, show_default=True)
@click.option("--expired", is_flag=True, help="valid until yesterday (Code 21)")
@click.option("--digital-signature-only", is_flag=True, help="key usage without nonRepudiation")
@click.option("--prefecture", default="東京都", show_default=True, help="of the CRL distribution point")
@click.option("--city", default="千代田区", show_default=True, help="of the CRL distribution point")
def issue(
    directory: Path,
    card_name: str,
    name: str,
    address: str,
    birth_date: datetime,
    sex: str,
    expired: bool,
    digital_signature_only: bool,
    prefecture: str,
    city: str,
) -> None:
    """Issue a signing certificate (and its card key) as DIRECTORY/cards/CARD_NAME.pem; its CRL
    distribution point is JPKI's per-municipality directoryName (OU=<prefecture>, CN=<city>)."""
    ca = DevCA.load(directory)
    person = Person(name=name, address=address, birth_date=date.fromordinal(birth_date.toordinal()), sex=sex)
    now = datetime.now(UTC)
    usage = ("digital_signature",) if digital_signature_only else ("digital_signature", "content_commitment")
    if expired:
        start, valid_for = now - timedelta(days=30), timedelta(days=29)
    else:
        start, valid_for = now - timedelta(minutes=5), timedelta(days=365 * 5)
    card = ca.issue(
        person, not_before=start, valid_for=valid_for, key_usage=usage, prefecture=prefecture, city=city
    )
    cert_path, _ = save_card(card, directory / "cards", card_name)
    click.echo(str(cert_path.resolve()))


@dev_ca.command()
@click.argument("directory", type=CA_DIR)
@click.argument("card_name")
@click.option("--hold", is_flag=True, help="suspend (certificateHold) instead of revoking")
def revoke(directory: Path, card_name: str, hold: bool) -> None:
    """Revoke a card (reason affiliationChanged: the facts changed) and rewrite the CRL."""
    ca = DevCA.load(directory)
    reason = x509.ReasonFlags.certificate_hold if hold else x509.ReasonFlags.affiliation_changed
    ca.revoke(_load_card(directory, card_name), reason=reason)
    ca.save(directory)
    click.echo(str(_write_crl(ca, directory).resolve()))


@dev_ca.command()
@click.argument("directory", type=CA_DIR)
@click.option("--next-update-hours", type=float, default=24.0, show_default=True)
@click.option(
    "--prefecture", default=None, help="with --city: one municipality's CRL (its IDP names its point)"
)
@click.option("--city", default=None)
def crl(directory: Path, next_update_hours: float, prefecture: str | None, city: str | None) -> None:
    """Write a fresh CRL to DIRECTORY/crl.der (or one municipality's, crl-<prefecture>-<city>.der)."""
    ca = DevCA.load(directory)
    next_update = timedelta(hours=next_update_hours)
    if prefecture is None and city is None:
        click.echo(str(_write_crl(ca, directory, next_update).resolve()))
        return
    if prefecture is None or city is None:
        raise click.UsageError("--prefecture and --city go together")
    path = directory / f"crl-{prefecture}-{city}.der"
    path.write_bytes(ca.crl(next_update=next_update, partition=(prefecture, city)))
    click.echo(str(path.resolve()))


@dev_ca.command()
@click.argument("directory", type=CA_DIR)
@click.argument("card_name")
@click.argument("challenge")
@click.option(
    "--json", "as_json", is_flag=True, help="print the card bridge's signature request body instead"
)
def sign(directory: Path, card_name: str, challenge: str, as_json: bool) -> None:
    """Sign a base64 challenge as the card would; print the signature and certificate, base64,
    one a line (or, with --json, the body `POST /app/v1/links/{token}/signature` takes)."""
    card = _load_card(directory, card_name)
    signature = base64.b64encode(card.sign(base64.b64decode(challenge))).decode()
    certificate = base64.b64encode(card.der).decode()
    if as_json:
        body = {"certificate": certificate, "signature": signature, "algorithm": "rsa-pkcs1v15-sha256"}
        click.echo(json.dumps(body))
        return
    click.echo(signature)
    click.echo(certificate)


@dev_ca.command("serve")
@click.argument("directory", type=CA_DIR)
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--token", default=None, help="require this bearer token on the platform API")
def serve(directory: Path, port: int, token: str | None) -> None:
    """Serve OCSP (POST /ocsp), the CRL (GET /crl) and the platform API on 127.0.0.1."""
    from adapters.ca_revocation.responder import serve as serve_responder

    ca = DevCA.load(directory)
    cards = [
        _load_card(directory, p.stem)
        for p in sorted((directory / "cards").glob("*.pem"))
        if "-key" not in p.stem
    ]

    async def run() -> None:
        async with serve_responder(ca, port=port, token=token) as server:
            for card in cards:
                server.state.register(card.certificate)
            click.echo(f"serving on {server.url} (Ctrl-C stops)")
            await asyncio.Event().wait()

    asyncio.run(run())


def _write_crl(ca: DevCA, directory: Path, next_update: timedelta = timedelta(days=1)) -> Path:
    path = directory / "crl.der"
    path.write_bytes(ca.crl(next_update=next_update))
    return path


def _load_card(directory: Path, card_name: str) -> Card:
    cert_path = directory / "cards" / f"{card_name}.pem"
    if not cert_path.exists():
        raise click.ClickException(f"no card {card_name} in {directory}")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(
        (directory / "cards" / f"{card_name}-key.pem").read_bytes(), None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    return Card(cert, key)
