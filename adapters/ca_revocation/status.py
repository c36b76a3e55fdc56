"""What revocation data says about one certificate: the question, the answer, and how answers combine.

Both are small picklable dataclasses: the CPU-bound checks (possibly in a worker process) produce
the question, the process that holds the revocation index answers it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509

# RFC 5280 CRLReason values (7 is unused).
REASON_CODES = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}
REASON_NAMES = {code: flag.value for flag, code in REASON_CODES.items()}
CERTIFICATE_HOLD = 6
REMOVE_FROM_CRL = 8
# The reasons a set of CRLs must cover together before "not listed" means "good" (RFC 5280 §6.3.3).
ALL_REASONS = frozenset({1, 2, 3, 4, 5, 6, 9, 10})

# As pyhanko-certvalidator: one second of clock tolerance, and revocation data without a
# nextUpdate counts as fresh for 30 minutes after its thisUpdate.
TOLERANCE = timedelta(seconds=1)
NO_NEXT_UPDATE_VALIDITY = timedelta(minutes=30)


@dataclass(frozen=True)
class RevocationQuery:
    """Which certificate, by which issuer, and which CRLs may speak for it."""

    issuer: bytes  # SHA-256 of the issuing anchor's DER
    serial: int
    points: frozenset[bytes] | None  # DER of each CRL distribution point name; None: any CRL of the issuer
    indirect: bool = False  # a distribution point names a cRLIssuer: only an indirect CRL serves it
    is_ca: bool = False


@dataclass(frozen=True)
class RevocationStatus:
    state: Literal["good", "revoked", "stale", "missing"]
    reason: int | None = None  # RFC 5280 CRLReason code, when revoked
    source: str = ""  # which CRL or response said so, for logs

    @property
    def on_hold(self) -> bool:
        return self.state == "revoked" and self.reason == CERTIFICATE_HOLD


GOOD = RevocationStatus("good")
MISSING = RevocationStatus("missing")
STALE = RevocationStatus("stale")


def fresh_at(this_update: datetime, next_update: datetime | None, at: datetime) -> bool:
    """Usable at `at`: not past its nextUpdate (data issued after `at` is fine: the module docstring
    of `chain` explains why)."""
    until = next_update if next_update is not None else this_update + NO_NEXT_UPDATE_VALIDITY
    return at - TOLERANCE <= until


def combined(statuses: Iterable[RevocationStatus]) -> RevocationStatus:
    """Any source saying revoked wins; else any good passes; else stale if one was; else missing."""
    found = list(statuses)
    for state in ("revoked", "good", "stale"):
        for status in found:
            if status.state == state:
                return status
    return MISSING
