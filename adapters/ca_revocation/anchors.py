"""Trust anchors as DER: the real JPKI roots shipped as package data, roots an operator installed
with `honnin anchors add` (checked against J-LIS's published fingerprints), or configured files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from orchestrator.errors import ConfigurationError, exception_kind

PACKAGE = "adapters.ca_revocation"
FOLDER = "trust_anchors"
_PREFIXES = {"signing": "sign_ca_", "authentication": "auth_ca_"}
_PEM_MARKER = b"-----BEGIN"


def jpki_trust_anchors(kind: Literal["signing", "authentication"] = "signing") -> list[bytes]:
    """Every shipped root generation of one CA: they share a subject DN, so all must be offered."""
    files = [entry for entry in _shipped_files() if entry.name.startswith(_PREFIXES[kind])]
    anchors = [
        der
        for entry in files
        if entry.name.endswith(".pem")
        for der in _parse(entry.read_bytes(), entry.name)
    ]
    if not anchors:
        raise ConfigurationError(f"no shipped JPKI {kind} trust anchors: package data {FOLDER}/ is missing")
    return anchors


def load_anchor_files(paths: Sequence[Path]) -> list[bytes]:
    """Operator-supplied anchors (or intermediates), PEM or DER, checked once at start-up, not per call."""
    return [der for path in paths for der in _parse(_read(path), str(path))]


def _shipped_files() -> list[Traversable]:
    """Through importlib.resources, so the anchors are found in a wheel or a zip as in the tree."""
    try:
        folder = resources.files(PACKAGE).joinpath(FOLDER)
        return sorted(folder.iterdir(), key=lambda entry: entry.name)
    except (ModuleNotFoundError, OSError) as exc:
        raise ConfigurationError(
            f"cannot open the shipped trust anchors ({FOLDER}/): {exception_kind(exc)}"
        ) from exc


def _read(path: Path) -> bytes:
    """A missing or unreadable file is the operator's to fix, so it stops start-up with the path."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read trust anchor file {path}: {exception_kind(exc)}") from exc


def _parse(data: bytes, source: str) -> list[bytes]:
    """A PEM file may hold several certificates; anything else must be one DER certificate."""
    try:
        if _PEM_MARKER in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{source} holds no readable X.509 certificate (PEM or DER)") from exc
    return [cert.public_bytes(serialization.Encoding.DER) for cert in certificates]


# -- root generations (J-LIS's signing CA) -------------------------------------------------------


@dataclass(frozen=True)
class Generation:
    """One generation of J-LIS's signing root, as J-LIS publishes it (file, serial, validity, SHA-256)."""

    name: str
    serial: str
    not_before: date
    not_after: date
    fingerprint: str  # SHA-256 of the DER, upper-case hex without separators
    cards: str  # the cards it issued, as people would recognise them, in words: two dates in digits
    # ("2019-09 – 2023-07") are 12 digits, which the log screen masks as an individual number

    def valid_on(self, day: date) -> bool:
        return self.not_before <= day <= self.not_after


JLIS_SIGNING_GENERATIONS: tuple[Generation, ...] = (
    Generation(
        "signca01",
        "01",
        date(2015, 10, 20),
        date(2025, 10, 19),
        "19645405A1FE14377434BD55957628AC4038557C542403A2243F21C706FC9355",
        "cards issued from October 2015 to September 2019",
    ),
    Generation(
        "signca02",
        "0132C4AB",
        date(2019, 9, 14),
        date(2029, 9, 14),
        "79679C33E4CC9319440F1AD120A597FF1844E2EF217063ADB176966FD5E6FBEB",
        "cards issued from September 2019 to July 2023",
    ),
    Generation(
        "signca03",
        "067C6A21",
        date(2023, 7, 16),
        date(2033, 7, 15),
        "D227F6CDE11D35C5252178F106F843D24651944975413B539FA2FB68DBFA365F",
        "cards issued since July 2023",
    ),
)
INSTALLED_SUFFIX = ".pem"


@dataclass(frozen=True)
class GenerationState:
    generation: Generation
    where: Literal["shipped", "installed"] | None  # None: missing


def sha256_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest().upper()


def read_one_certificate(path: Path) -> bytes:
    """A J-LIS `.cer` (DER) or a PEM file holding exactly one certificate, as DER."""
    ders = _parse(_read(path), str(path))
    if len(ders) != 1:
        raise ConfigurationError(f"{path} holds {len(ders)} certificates, not one")
    return ders[0]


def install_anchor(
    path: Path, folder: Path, generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS
) -> tuple[Generation, Path]:
    """Installs a root only when its SHA-256 is one of the published generations'."""
    der = read_one_certificate(path)
    generation = _generation_of(der, generations)
    if generation is None:
        raise ConfigurationError(
            f"{path.name}: SHA-256 {sha256_hex(der)} is not a published JPKI signing root; not installed"
        )
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{generation.name}{INSTALLED_SUFFIX}"
    target.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    return generation, target


def installed_anchors(
    folder: Path, generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS
) -> list[bytes]:
    """The roots `honnin anchors add` installed; each checked against the fingerprints again, so a
    file put there by hand cannot widen the trust."""
    if not folder.is_dir():
        return []
    ders = []
    for path in sorted(folder.glob(f"*{INSTALLED_SUFFIX}")):
        der = read_one_certificate(path)
        if _generation_of(der, generations) is None:
            raise ConfigurationError(
                f"{path} is not a published JPKI signing root (SHA-256 {sha256_hex(der)}): remove it"
            )
        ders.append(der)
    return ders


def generation_states(
    shipped: Sequence[bytes],
    installed: Sequence[bytes],
    generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS,
) -> list[GenerationState]:
    """Each published generation and where its root is: shipped, installed, or missing."""
    shipped_prints = {sha256_hex(der) for der in shipped}
    installed_prints = {sha256_hex(der) for der in installed}
    states = []
    for generation in generations:
        where: Literal["shipped", "installed"] | None = None
        if generation.fingerprint in shipped_prints:
            where = "shipped"
        elif generation.fingerprint in installed_prints:
            where = "installed"
        states.append(GenerationState(generation, where))
    return states


def _generation_of(der: bytes, generations: Sequence[Generation]) -> Generation | None:
    fingerprint = sha256_hex(der)
    return next((generation for generation in generations if generation.fingerprint == fingerprint), None)
