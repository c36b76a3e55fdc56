"""Trust anchors as DER: the real JPKI roots shipped as package data, or files an operator configures."""

from __future__ import annotations

from collections.abc import Sequence
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
