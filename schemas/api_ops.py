"""Bodies of the operator API (`/ops/v1`); the OpenAPI document reuses them.

Answers carry ids, states, codes, reasons, counts and times — never a personal fact nor a message
body. The one request (a replay) names registrations and dead letters by id, a result code or a
time range, and says whether it is a dry run; unknown fields are refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.api_web import RegistrationState, VerificationState
from schemas.events import RegistrationId


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpsRegistration(_Answer):
    registration_id: str
    reference: str = Field(description="the facility's own id for it")
    state: RegistrationState
    profile: str
    facility_id: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    verification: VerificationState | None = None
    code: str | None = Field(default=None, description="the current failure, park or retry code")
    retries: int = 0
    version: int = 0


class OpsRegistrationPage(_Answer):
    items: list[OpsRegistration]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last")


class OpsCounts(_Answer):
    by_state: dict[str, int]
    by_verification: dict[str, int]
    by_code: dict[str, int]
    unindexed: int = Field(description="rows written before the listing columns: run `honnin migrate`")
    at: AwareDatetime


class OpsStep(_Answer):
    event_id: str
    event_type: str
    source: str
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    outcome: Literal["applied", "rejected"]
    from_state: str
    to_state: str
    code: str | None = None
    message: str | None = None


class OpsDecision(_Answer):
    event_id: str
    recorded_at: AwareDatetime
    attempt: int
    outcome: str = Field(description="pass, fail or retry_later")
    code: str | None = None
    reason: str | None = None
    applied: bool = Field(description="false: refused (a stale attempt), so it decided nothing")


class OpsVerification(_Answer):
    attempt: int
    status: VerificationState
    retries: int
    code: str | None = None
    message: str | None = None
    retry_at: AwareDatetime | None = None
    decided_at: AwareDatetime | None = None
    certificate_fingerprint: str | None = None


class OpsRegistrationDetail(_Answer):
    registration: OpsRegistration
    expires_at: AwareDatetime
    activated_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    card_read: bool
    challenge_attempt: int
    verification: OpsVerification | None = None
    history: list[OpsStep]
    decisions: list[OpsDecision]


class OpsDeadLetter(_Answer):
    id: int
    queue: str
    message_id: str
    routing_key: str
    reason: str
    attempts: int
    first_seen_at: AwareDatetime | None = None
    last_seen_at: AwareDatetime | None = None


class OpsDeadLetterPage(_Answer):
    items: list[OpsDeadLetter]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last")


class OpsReplayRequest(BaseModel):
    """What to replay; `dry_run` is required, so nothing is replayed by leaving it out."""

    model_config = ConfigDict(extra="forbid")

    registration_ids: list[RegistrationId] = Field(default=[], max_length=1000)
    dead_letter_ids: list[int] = Field(default=[], max_length=1000)
    code: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_]{1,32}$", description="every parked registration with this code"
    )
    since: AwareDatetime | None = Field(default=None, description="parked at or after")
    until: AwareDatetime | None = Field(default=None, description="parked before")
    dry_run: bool
    rate: float | None = Field(default=None, gt=0, le=1000, description="replays a second")
    reason: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @model_validator(mode="after")
    def _something(self) -> OpsReplayRequest:
        if not (self.registration_ids or self.dead_letter_ids or self.code or self.since or self.until):
            raise ValueError("name registration_ids, dead_letter_ids, a code or a time range")
        return self


class OpsReplayItem(_Answer):
    kind: Literal["registration", "dead_letter"]
    target: str
    outcome: str
    detail: str


class OpsReplayReport(_Answer):
    dry_run: bool
    affected: int = Field(description="what changed; in a dry run, what would have")
    audit_id: int
    remaining: int = Field(
        default=0, description="not reached within this request's time: post the same body again"
    )
    items: list[OpsReplayItem]


class OpsAuditRecord(_Answer):
    id: int
    at: AwareDatetime
    operator: str
    channel: str
    action: str
    parameters: dict[str, Any]
    affected: int
    dry_run: bool


class OpsAuditPage(_Answer):
    items: list[OpsAuditRecord]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")
