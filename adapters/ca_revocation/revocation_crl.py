"""CRL files as a revocation source: each kept until its nextUpdate, re-read when replaced."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.ca_revocation.revocation import (
    RevocationEvidence,
    RevocationUnavailableError,
    logged_answer,
    logged_failure,
)
from orchestrator.ports import Clock

_Stamp = tuple[int, int, int]  # inode, size, mtime in ns: a replaced or rewritten file differs


@dataclass(frozen=True)
class _LoadedCrl:
    der: bytes
    issuer: x509.Name
    next_update: datetime | None
    stamp: _Stamp


def _stamp(path: Path) -> _Stamp:
    """Raises RevocationUnavailableError: a CRL file that is not there is a retry-later outage."""
    try:
        info = path.stat()
    except OSError as exc:
        raise RevocationUnavailableError(f"the CRL file {path.name} cannot be read") from exc
    return info.st_ino, info.st_size, info.st_mtime_ns


def _load_crl(path: Path) -> _LoadedCrl:
    """Reads DER or PEM, stamping the file as opened so a concurrent replace is noticed next time."""
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            data = file.read()
    except OSError as exc:
        raise RevocationUnavailableError(f"the CRL file {path.name} cannot be read") from exc
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
        return _LoadedCrl(
            der=crl.public_bytes(serialization.Encoding.DER),
            issuer=crl.issuer,
            next_update=crl.next_update_utc,
            stamp=(info.st_ino, info.st_size, info.st_mtime_ns),
        )
    except ValueError as exc:
        raise RevocationUnavailableError(f"the CRL file {path.name} is not a DER or PEM CRL") from exc


class CrlFileSource:
    """Reads CRLs a signature verifier downloads daily; each is kept until its nextUpdate."""

    name = "crl"

    def __init__(self, paths: Sequence[Path], *, clock: Clock) -> None:
        """No paths is allowed: the evidence is then empty and the validator answers "missing" (40)."""
        self._paths = tuple(paths)
        self._clock = clock
        self._loaded: dict[Path, _LoadedCrl] = {}

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        try:
            crls = [await self._current(path) for path in self._paths]
        except RevocationUnavailableError as exc:
            logged_failure(self.name, leaf.serial_number, exc)
            raise
        matching = tuple(crl.der for crl in crls if crl.issuer == leaf.issuer)
        outcome = "found" if matching else "no_crl_for_issuer"
        if any(self._expired(crl) for crl in crls if crl.issuer == leaf.issuer):
            outcome = "stale"  # the validator will say so too; the operator should fetch a new one
        logged_answer(self.name, leaf.serial_number, outcome)
        return RevocationEvidence(crls=matching)

    async def _current(self, path: Path) -> _LoadedCrl:
        """The kept CRL while it is fresh and its file unchanged; otherwise the file read again."""
        stamp = await asyncio.to_thread(_stamp, path)
        loaded = self._loaded.get(path)
        if loaded is not None and loaded.stamp == stamp and not self._expired(loaded):
            return loaded
        loaded = await asyncio.to_thread(_load_crl, path)
        self._loaded[path] = loaded
        return loaded

    def _expired(self, crl: _LoadedCrl) -> bool:
        return crl.next_update is None or self._clock.now() >= crl.next_update

    async def close(self) -> None:
        self._loaded.clear()
