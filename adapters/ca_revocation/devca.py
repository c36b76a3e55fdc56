"""A development CA that issues JPKI-profile signing certificates, CRLs and OCSP responses.

Used by the tests, the demo and `honnin dev-ca`; never a trust anchor in production (its root
says "Honnin development CA"). Cards it issues carry the basic four facts as JPKI does and keep
their private key, so a test can sign a challenge as the card would.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from adapters.ca_revocation import jpki
from orchestrator.identity import era_of

ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for digital signature"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Honnin development CA"),
    ]
)


@dataclass(frozen=True)
class Person:
    """The basic four facts as the certificate writes them."""

    name: str = "公的　花子"
    address: str = "東京都千代田区千代田１－１"
    birth_date: date = date(1990, 4, 1)
    sex: str = "2"  # certificate encoding: 1 male, 2 female, 3 unknown
    name_substituted: str = ""  # default: no character substituted
    address_substituted: str = ""


@dataclass(frozen=True)
class Card:
    """An issued signing certificate and the key that stays on the card."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sign(self, data: bytes) -> bytes:
        """What the card does with the 6-16 character signing password: RSA PKCS#1 v1.5 SHA-256."""
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _other_name(oid: str, text: str) -> x509.OtherName:
    return x509.OtherName(x509.ObjectIdentifier(oid), asn1.UTF8String(text).dump())


def identity_names(person: Person) -> list[x509.GeneralName]:
    flags_name = person.name_substituted or "0" * len(person.name)
    flags_address = person.address_substituted or "0" * len(person.address)
    birth = era_of(person.birth_date) + person.birth_date.strftime("%Y%m%d")
    return [
        _other_name(jpki.OID_NAME, person.name),
        _other_name(jpki.OID_NAME_SUBSTITUTED, flags_name),
        _other_name(jpki.OID_SEX, person.sex),
        _other_name(jpki.OID_BIRTH_DATE, birth),
        _other_name(jpki.OID_ADDRESS, person.address),
        _other_name(jpki.OID_ADDRESS_SUBSTITUTED, flags_address),
    ]


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class DevCA:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    revoked: dict[int, tuple[datetime, x509.ReasonFlags]] = field(default_factory=dict)
    points: dict[int, bytes] = field(default_factory=dict)  # serial → its CRL distribution point (DER)

    @classmethod
    def create(cls, *, now: datetime | None = None, years: int = 10) -> DevCA:
        now = now or datetime.now(UTC)
        key = new_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(ROOT_NAME)
            .issuer_name(ROOT_NAME)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def issue(
        self,
        person: Person | None = None,
        *,
        now: datetime | None = None,
        valid_for: timedelta = timedelta(days=365 * 5),
        not_before: datetime | None = None,
        key_usage: tuple[str, ...] = ("digital_signature", "content_commitment"),
        policy: str = jpki.POLICY_SIGNING_TEST,
        prefecture: str = "東京都",
        city: str = "千代田区",
        key: rsa.RSAPrivateKey | None = None,
        extra_extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> Card:
        """A JPKI-profile signing certificate; `key_usage`, validity, policy, extra (critical)
        extensions and the key that signs it (the AKI still names the CA's) are there to be got wrong."""
        person = person or Person()
        key = key or new_key()
        start = not_before or (now or datetime.now(UTC)) - timedelta(minutes=5)
        usage = {name: name in key_usage for name in _KEY_USAGE_FIELDS}
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, prefecture),
                x509.NameAttribute(NameOID.LOCALITY_NAME, city),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{x509.random_serial_number():040X}"[:32]),
            ]
        )
        dp = x509.DistributionPoint(
            full_name=[x509.DirectoryName(jpki.crl_distribution_point(prefecture, city))],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
            .add_extension(x509.KeyUsage(**usage, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectAlternativeName(identity_names(person)), critical=False)
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy), None)]),
                critical=False,
            )
            .add_extension(x509.CRLDistributionPoints([dp]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        for extension, critical in extra_extensions:
            builder = builder.add_extension(extension, critical=critical)
        return Card(builder.sign(signing_key or self.key, hashes.SHA256()), key)

    def revoke(
        self,
        card: Card,
        *,
        at: datetime | None = None,
        reason: x509.ReasonFlags = x509.ReasonFlags.affiliation_changed,
    ) -> None:
        serial = card.certificate.serial_number
        self.revoked[serial] = (at or datetime.now(UTC), reason)
        point = distribution_point_of(card.certificate)
        if point is not None:
            self.points[serial] = point.public_bytes()

    def crl(
        self,
        *,
        this_update: datetime | None = None,
        next_update: timedelta = timedelta(days=1),
        partition: tuple[str, str] | None = None,
    ) -> bytes:
        """A CRL (DER) of every certificate revoked so far; with `partition` (prefecture, city),
        JPKI's per-municipality CRL: an IssuingDistributionPoint naming that distribution point,
        listing only the certificates that name it."""
        start = this_update or datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(start)
            .next_update(start + next_update)
            .add_extension(x509.CRLNumber(len(self.revoked) + int(start.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        listed = self.revoked
        if partition is not None:
            point = jpki.crl_distribution_point(*partition)
            builder = builder.add_extension(issuing_distribution_point(point), critical=True)
            listed = {
                s: entry for s, entry in self.revoked.items() if self.points.get(s) == point.public_bytes()
            }
        for serial, (when, reason) in listed.items():
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when)
                .add_extension(x509.CRLReason(reason), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp_response(
        self,
        certificate: x509.Certificate,
        *,
        this_update: datetime | None = None,
        next_update: timedelta = timedelta(hours=1),
        nonce: bytes | None = None,
    ) -> bytes:
        """A signed OCSP response (DER) for one certificate, as a JPKI platform's responder."""
        start = this_update or datetime.now(UTC)
        revoked = self.revoked.get(certificate.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=certificate,
            issuer=self.certificate,
            algorithm=hashes.SHA1(),  # noqa: S303 - the CertID hash JPKI responders use
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=start,
            next_update=start + next_update,
            revocation_time=revoked[0] if revoked else None,
            revocation_reason=revoked[1] if revoked else None,
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.certificate).sign(
            self.key, hashes.SHA256()
        )
        return response.public_bytes(serialization.Encoding.DER)

    # -- files, for `honnin dev-ca` ------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "root.pem").write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key_path = directory / "root-key.pem"
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        revoked = {
            str(s): [when.isoformat(), reason.value, *([self.points[s].hex()] if s in self.points else [])]
            for s, (when, reason) in self.revoked.items()
        }
        (directory / "revoked.json").write_text(json.dumps(revoked, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> DevCA:
        cert = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "root-key.pem").read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        revoked_file = directory / "revoked.json"
        raw = json.loads(revoked_file.read_text()) if revoked_file.exists() else {}
        revoked = {
            int(s): (datetime.fromisoformat(entry[0]), x509.ReasonFlags(entry[1])) for s, entry in raw.items()
        }
        points = {int(s): bytes.fromhex(entry[2]) for s, entry in raw.items() if len(entry) > 2}
        return cls(cert, key, revoked, points)


def distribution_point_of(cert: x509.Certificate) -> x509.Name | None:
    """The directoryName of a certificate's first CRL distribution point, as JPKI writes it."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.DirectoryName):
                return name.value
    return None


def issuing_distribution_point(point: x509.Name) -> x509.IssuingDistributionPoint:
    """The IDP of a CRL that covers exactly the certificates naming `point`."""
    return x509.IssuingDistributionPoint(
        full_name=[x509.DirectoryName(point)],
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )


_KEY_USAGE_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def save_card(card: Card, directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}-key.pem"
    cert_path.write_bytes(card.certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        card.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path
