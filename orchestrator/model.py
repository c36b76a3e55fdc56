"""The registration aggregate and the results of applying one event to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.events import Envelope
from schemas.payloads import ApplicantInfo, CardFacts


class State(StrEnum):
    NEW = "new"  # not persisted: the source state of registration.started
    INFO_ENTERED = "info_entered"
    CARD_READ = "card_read"
    CONFIRMED = "confirmed"
    SIGNATURE_VERIFIED = "signature_verified"
    ACTIVATED = "activated"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.ACTIVATED, State.EXPIRED, State.CANCELLED})


class Profile(BaseModel):
    """A flow as data: which steps it has and how long a person may take."""

    model_config = ConfigDict(frozen=True)

    name: str
    steps: frozenset[str]
    activation_timeout: timedelta
    verification_retry_limit: int = 5
    verification_retry_base: timedelta = timedelta(seconds=2)
    verification_retry_cap: timedelta = timedelta(minutes=5)
    retain_certificate: bool = False  # JPKI guidance: keep a fingerprint and the decision only
    verification_answer_timeout: timedelta = timedelta(minutes=2)  # a request nobody answered is asked again

    def retry_delay(self, retries: int, jitter: float) -> timedelta:
        """Exponential backoff with equal jitter: half fixed, half random (jitter in [0, 1))."""
        ceiling: timedelta = min(self.verification_retry_cap, self.verification_retry_base * (2**retries))
        return ceiling * (0.5 + 0.5 * jitter)


class Signature(BaseModel):
    """The submitted signature, kept only until it is verified."""

    model_config = ConfigDict(frozen=True)

    certificate: str
    signature: str
    algorithm: str
    challenge: str
    attempt: int
    submitted_at: AwareDatetime


class Verification(BaseModel):
    model_config = ConfigDict(frozen=True)

    attempt: int
    status: Literal["pending", "retrying", "passed", "failed", "parked"]
    retries: int = 0
    retry_at: AwareDatetime | None = None
    code: str | None = None
    message: str | None = None
    certificate_fingerprint: str | None = None
    certificate: str | None = None  # only when the profile retains certificates
    decided_at: AwareDatetime | None = None

    @property
    def in_progress(self) -> bool:
        return self.status in ("pending", "retrying")


class Registration(BaseModel):
    """One person's registration. Personal facts live here only; the store encrypts them."""

    model_config = ConfigDict(frozen=True)

    id: str
    profile: str
    facility_id: str
    state: State
    created_at: AwareDatetime
    updated_at: AwareDatetime
    expires_at: AwareDatetime
    applicant: ApplicantInfo
    card: CardFacts | None = None
    challenge: str | None = None
    challenge_attempt: int = 0
    signature: Signature | None = None
    verification: Verification | None = None
    activated_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def next_deadline(self) -> datetime | None:
        """When the sweeper must look at this registration again, if ever."""
        if self.terminal:
            return None
        retry_at = self.verification.retry_at if self.verification else None
        return min(self.expires_at, retry_at) if retry_at else self.expires_at


@dataclass(frozen=True)
class Context:
    """Everything impure a decision needs, computed by the loop beforehand."""

    now: datetime
    profiles: dict[str, Profile]
    new_challenge: str
    jitter: float = 0.5

    def profile(self, registration: Registration) -> Profile:
        return self.profiles[registration.profile]


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str
    retryable: bool = False


@dataclass(frozen=True)
class Applied:
    registration: Registration
    emitted: list[Envelope] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What applying one event decided: a new registration, or a recorded rejection."""

    event: Envelope
    before: Registration | None
    applied: Applied | None = None
    rejection: Rejection | None = None

    @property
    def from_state(self) -> State:
        return self.before.state if self.before else State.NEW

    @property
    def to_state(self) -> State:
        return self.applied.registration.state if self.applied else self.from_state
