"""CRL files as a revocation source: each verified once when read, then answered from an index.

A signature verifier downloads JPKI's CRLs (one per municipality's distribution point, hundreds of
thousands of entries in all) and drops them in files. Each file is read and verified once
(`crl_index.verify_crl`); lookups go to a `RevocationIndex`. Every `refresh_seconds` (by the clock)
a lookup starts a refresh in a worker thread: files whose inode, size or mtime changed are read
again, a new index is built there and swapped in with one assignment, so verifications never wait
for a reload — only the very first lookup waits for the first read.

A lookup that finds no fresh covering CRL waits for the refresh under way, or runs one now (at
most once a second): a restored or replaced file may be the answer. Lookups that are answered
never wait.

A file whose new content fails to verify is no evidence: the error is logged and the CRL read
before from that file stays in use until its own nextUpdate (then it is stale: 41). A file that
cannot be read at all, with nothing read from it before, makes a certificate no CRL covers a
retry-later outage (42) rather than "no revocation data" (40).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.ca_revocation.crl_index import CrlRejectedError, RevocationIndex, VerifiedCrl, verify_crl
from adapters.ca_revocation.issuers import TrustAnchors
from adapters.ca_revocation.query import query_of
from adapters.ca_revocation.revocation import (
    RevocationEvidence,
    RevocationUnavailableError,
    logged_answer,
    logged_failure,
)
from adapters.ca_revocation.status import RevocationQuery, RevocationStatus
from orchestrator.ports import Clock
from orchestrator.tasks import cancel_and_wait

log = structlog.get_logger("honnin.revocation")

DEFAULT_REFRESH_SECONDS = 60.0
URGENT_REFRESH_SECONDS = 1.0  # at most this often, a lookup without an answer re-reads changed files
_Stamp = tuple[int, int, int]  # inode, size, mtime in ns: a replaced or rewritten file differs


@dataclass(frozen=True)
class _FileState:
    stamp: _Stamp | None  # None: the file could not be read
    crl: VerifiedCrl | None  # the last good CRL read from this file
    problem: str | None = None  # why the last read brought nothing new


def _read(path: Path) -> tuple[_Stamp, bytes]:
    """Stamps the file as opened, so a replace during the read is noticed next time."""
    with path.open("rb") as file:
        info = os.fstat(file.fileno())
        return (info.st_ino, info.st_size, info.st_mtime_ns), file.read()


def _der(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_crl(data).public_bytes(serialization.Encoding.DER)
        except ValueError as exc:
            raise CrlRejectedError("not a PEM CRL") from exc
    return data


class CrlFileSource:
    """CRL files kept verified in memory; `status` for the fast path, `evidence` for the reference."""

    name = "crl"

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        clock: Clock,
        issuers: TrustAnchors,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        keep_der: bool = True,
    ) -> None:
        """No paths is allowed: every certificate then has no revocation data (40)."""
        self._paths = tuple(paths)
        self._clock = clock
        self._issuers = issuers
        self._interval = timedelta(seconds=refresh_seconds)
        self._keep_der = keep_der
        self._files: dict[Path, _FileState] = {}
        self._index: RevocationIndex | None = None
        self._next_check: datetime | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._last_urgent = -URGENT_REFRESH_SECONDS

    # -- lookups ----------------------------------------------------------------------------

    async def status(self, query: RevocationQuery, at: datetime) -> RevocationStatus:
        """O(1): the index in force answers; raises RevocationUnavailableError as described above."""
        status = (await self._current()).status(query, at)
        if status.state in ("missing", "stale") and await self._caught_up():
            status = (await self._current()).status(query, at)
        if status.state == "missing":
            self._raise_if_unreadable(query.serial)
        return status

    async def evidence(self, leaf: x509.Certificate, issuer: x509.Certificate) -> RevocationEvidence:
        """The reference path's DER: the leaf issuer's CRLs whose scope covers it, and every CRL of
        another issuer (they may cover a CA of the path); pyhanko judges them all again."""
        index = await self._current()
        query = query_of(leaf, b"")
        own = [crl for crl in index.of_issuer_name(leaf.issuer) if crl.covers(query)]
        if not any(crl.fresh(self._clock.now()) for crl in own) and await self._caught_up():
            index = await self._current()
            own = [crl for crl in index.of_issuer_name(leaf.issuer) if crl.covers(query)]
        others = [crl for crl in index.crls if crl.issuer_name != leaf.issuer]
        if not own:
            self._raise_if_unreadable(leaf.serial_number)
        outcome = "found" if own else "no_crl_for_issuer"
        if own and not any(crl.fresh(self._clock.now()) for crl in own):
            outcome = "stale"  # the validator will say so too; the operator should fetch a new one
        logged_answer(self.name, leaf.serial_number, outcome)
        return RevocationEvidence(crls=tuple(crl.der for crl in own + others if crl.der is not None))

    def _raise_if_unreadable(self, serial: int) -> None:
        unreadable = [
            path.name for path, state in self._files.items() if state.crl is None and state.stamp is None
        ]
        if unreadable:
            exc = RevocationUnavailableError(f"the CRL file {unreadable[0]} cannot be read")
            logged_failure(self.name, serial, exc)
            raise exc

    def loaded(self) -> list[VerifiedCrl]:
        """The CRLs in force (for operators and tests)."""
        return list(self._index.crls) if self._index is not None else []

    # -- reloading ----------------------------------------------------------------------------

    async def _current(self) -> RevocationIndex:
        """The index in force; starts a background refresh when one is due, never waits for it."""
        if self._index is None:
            await self.refresh()
        elif (
            self._next_check is not None and self._clock.now() >= self._next_check and not self._refreshing()
        ):
            self._task = asyncio.create_task(self.refresh(), name="honnin-crl-refresh")
        assert self._index is not None
        return self._index

    async def _caught_up(self) -> bool:
        """No answer from the index in force: wait for the refresh under way, or (at most once a
        second) run one now, since a restored or replaced file may be the answer."""
        if self._refreshing():
            await self.wait_refreshed()
            return True
        if time.monotonic() - self._last_urgent < URGENT_REFRESH_SECONDS:
            return False
        self._last_urgent = time.monotonic()
        await self.refresh()
        return True

    def _refreshing(self) -> bool:
        return self._task is not None and not self._task.done()

    async def refresh(self) -> None:
        """Re-reads replaced files in a worker thread and swaps the new index in at once."""
        async with self._lock:
            self._next_check = self._clock.now() + self._interval
            try:
                files, index = await asyncio.to_thread(self._reload, dict(self._files))
            except Exception as exc:  # a bug here must not stop verifications with the index in force
                log.error("crl.refresh_failed", error=type(exc).__name__)
                if self._index is None:
                    self._index = RevocationIndex()
                return
            self._files, self._index = files, index

    async def wait_refreshed(self) -> None:
        """Returns once a refresh started in the background is done (tests, shutdown)."""
        if self._task is not None:
            await self._task

    def _reload(self, files: dict[Path, _FileState]) -> tuple[dict[Path, _FileState], RevocationIndex]:
        fresh = {path: self._reread(path, files.get(path)) for path in self._paths}
        return fresh, RevocationIndex(state.crl for state in fresh.values() if state.crl is not None)

    def _reread(self, path: Path, old: _FileState | None) -> _FileState:
        kept = old.crl if old is not None else None
        try:
            stamp = path.stat()
        except OSError as exc:
            log.warning("crl.unreadable", file=path.name, error=exc.strerror or type(exc).__name__)
            return _FileState(None, kept, "cannot be read")
        if old is not None and old.stamp == (stamp.st_ino, stamp.st_size, stamp.st_mtime_ns):
            return old
        started = time.perf_counter()
        try:
            read_stamp, data = _read(path)
        except OSError as exc:
            log.warning("crl.unreadable", file=path.name, error=exc.strerror or type(exc).__name__)
            return _FileState(None, kept, "cannot be read")
        try:
            crl = verify_crl(_der(data), self._issuers, source=path.name, keep_der=self._keep_der)
        except CrlRejectedError as exc:
            log.error("crl.rejected", file=path.name, reason=str(exc), kept=kept is not None)
            return _FileState(read_stamp, kept, str(exc))
        if kept is not None and _older(crl, kept):
            log.error("crl.rejected", file=path.name, reason="older than the CRL in use", kept=True)
            return _FileState(read_stamp, kept, "older than the CRL in use")
        log.info(
            "crl.loaded",
            file=path.name,
            entries=len(crl),
            next_update=crl.next_update.isoformat() if crl.next_update else None,
            seconds=round(time.perf_counter() - started, 3),
        )
        return _FileState(read_stamp, crl)

    async def close(self) -> None:
        task, self._task = self._task, None
        self._files.clear()
        self._index = None
        if task is not None and not task.done():
            await cancel_and_wait(task)


def _older(new: VerifiedCrl, kept: VerifiedCrl) -> bool:
    """A replaced file must not take revocation data back in time (same issuer and scope only)."""
    if new.issuer != kept.issuer or new.points != kept.points:
        return False
    if new.number is not None and kept.number is not None:
        return new.number < kept.number
    return new.this_update < kept.this_update
