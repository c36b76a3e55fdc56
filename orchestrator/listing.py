"""What operators' lists are made of: a registration's indexed columns (never its sealed facts),
the filters and keyset cursor of a listing, counts for the console, and audit records.

A listing reads only what the store keeps beside the sealed document — state, verification status
and code, retries, facility, profile, times — so it never opens a blob and cannot show a personal
fact. Rows are ordered by (created_at, id), which never change: a cursor walks every row once even
while registrations move on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.model import Registration

Cursor = tuple[datetime, str]
"""(created_at, id) of the last row of a page: the next page starts after it."""


@dataclass(frozen=True)
class RegistrationQuery:
    """Every given field must match; times bound created_at / updated_at (after: >=, before: <)."""

    state: str | None = None
    verification: str | None = None  # pending, retrying, passed, failed, parked
    code: str | None = None
    facility_id: str | None = None
    profile: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def parameters(self) -> dict[str, str]:
        """The filters given, as text (for the audit and the API's echo)."""
        found: dict[str, str] = {}
        for name, value in vars(self).items():
            if value is not None:
                found[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return found


@dataclass(frozen=True)
class RegistrationSummary:
    """A registration as a listing shows it: ids, state, verification outcome, times."""

    id: str
    reference: str
    state: str
    profile: str
    facility_id: str
    created_at: datetime
    updated_at: datetime
    verification: str | None = None
    code: str | None = None
    retries: int = 0
    version: int = 0

    @property
    def cursor(self) -> Cursor:
        return (self.created_at, self.id)


def summary_of(registration: Registration, version: int = 0) -> RegistrationSummary:
    """The indexed columns a store writes beside the sealed document. `code` is the current
    verification's failure, park or retry code: a pass after a retry has none."""
    verification = registration.verification
    code = verification.code if verification and verification.status != "passed" else None
    return RegistrationSummary(
        id=registration.id,
        reference=registration.reference,
        state=registration.state.value,
        profile=registration.profile,
        facility_id=registration.facility_id,
        created_at=registration.created_at,
        updated_at=registration.updated_at,
        verification=verification.status if verification else None,
        code=code,
        retries=verification.retries if verification else 0,
        version=version,
    )


@dataclass(frozen=True)
class RegistrationCounts:
    """Counts for the console and the metrics: by state, by verification status, by result code.

    `unindexed` counts rows written before the listing columns existed (`honnin migrate` fills
    them); until then they are in `by_state` only."""

    by_state: dict[str, int] = field(default_factory=dict)
    by_verification: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    unindexed: int = 0


@dataclass(frozen=True)
class AuditRecord:
    """One operator action: who (the operator's name), when, what (action and its parameters:
    ids, codes, times — never a personal fact), how many it affected, and whether it was a dry run."""

    operator: str
    action: str
    at: datetime
    parameters: dict[str, Any] = field(default_factory=dict)
    affected: int = 0
    dry_run: bool = False
    channel: str = "cli"  # cli or http
    id: int = 0  # the store's, 0 until kept
