"""The registration aggregate and the results of applying one event to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator

from orchestrator.model_xid import XidRecord
from schemas.events import Envelope
from schemas.payloads import AcceptedTerms, ApplicantInfo, CardFacts


class State(StrEnum):
    NEW = "new"  # not persisted: the source state of registration.started
    INFO_ENTERED = "info_entered"
    CARD_READ = "card_read"
    CONFIRMED = "confirmed"
    SIGNATURE_VERIFIED = "signature_verified"
    ID_ENABLED = "id_enabled"  # xID: ID有効化 done (device key, municipality); an e-mail address next
    EMAIL_PENDING = "email_pending"  # xID: a confirmation link is out (メールアドレス確認)
    EMAIL_CONFIRMED = "email_confirmed"  # xID: the link was opened; 利用を開始する next
    ACTIVATED = "activated"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.ACTIVATED, State.EXPIRED, State.CANCELLED})
SHARED_TRIGGERS = frozenset({"registration.cancel_requested", "registration.deadline_reached"})
"""Every open state of every path accepts these (cancellation, persisted deadlines)."""


class ProfilePath(BaseModel):
    """A profile's path as data: its states in order and the events each accepts of its own.

    Open states (neither NEW nor terminal) also accept SHARED_TRIGGERS. An event a later state
    accepts waits while the registration is still earlier on the path; one only an earlier
    state accepts is refused."""

    model_config = ConfigDict(frozen=True)

    states: tuple[State, ...]
    accepts: dict[State, frozenset[str]]

    def accepted(self, state: State) -> frozenset[str]:
        own = self.accepts.get(state, frozenset())
        if state is State.NEW or state in TERMINAL or state not in self.states:
            return own
        return own | SHARED_TRIGGERS

    def earliest(self, event_type: str) -> int | None:
        """Where on the path the event is first accepted (the shared events aside)."""
        places = [i for i, state in enumerate(self.states) if event_type in self.accepts.get(state, ())]
        return min(places, default=None)

    def waits(self, state: State, event_type: str) -> bool:
        """Whether the event belongs to a state still ahead of `state` on this path."""
        if state in TERMINAL or state not in self.states:
            return False
        earliest = self.earliest(event_type)
        return earliest is not None and self.states.index(state) < earliest


FACILITY_PATH = ProfilePath(
    states=(
        State.NEW,
        State.INFO_ENTERED,
        State.CARD_READ,
        State.CONFIRMED,
        State.SIGNATURE_VERIFIED,
        State.ACTIVATED,
    ),
    accepts={
        State.NEW: frozenset({"registration.started"}),
        State.INFO_ENTERED: frozenset({"card.info_read"}),
        State.CARD_READ: frozenset({"card.info_read", "registration.confirmed"}),
        State.CONFIRMED: frozenset(
            {
                "card.signature_submitted",
                "verification.completed",
                "registration.deadline_reached",
                "verification.replay_requested",
                "registration.complete_requested",
            }
        ),
        State.SIGNATURE_VERIFIED: frozenset({"registration.complete_requested"}),
    },
)
"""Seed 000: the facility's page and the phone app's card read, signature, 【完了する】."""

FACILITY_CHECKS = frozenset({"signature", "chain", "identity"})


def backoff(base: timedelta, cap: timedelta, retries: int, jitter: float) -> timedelta:
    """Exponential backoff with equal jitter: half fixed, half random (jitter in [0, 1))."""
    ceiling: timedelta = min(cap, base * (2**retries))
    return ceiling * (0.5 + 0.5 * jitter)


class Profile(BaseModel):
    """A flow as data: its path, its checks, its deadlines and how long a person may take."""

    model_config = ConfigDict(frozen=True)

    name: str
    steps: frozenset[str]
    activation_timeout: timedelta
    path: ProfilePath = FACILITY_PATH
    checks: frozenset[str] = FACILITY_CHECKS  # verifier steps: signature, chain (+ revocation), identity
    verification_retry_limit: int = 5
    verification_retry_base: timedelta = timedelta(seconds=2)
    verification_retry_cap: timedelta = timedelta(minutes=5)
    retain_certificate: bool = False  # JPKI guidance: keep a fingerprint and the decision only
    verification_answer_timeout: timedelta = timedelta(minutes=2)  # a request nobody answered is asked again
    terms: tuple[AcceptedTerms, ...] = ()  # xID: the terms a start may name (none: no start)
    email_link_ttl: timedelta = timedelta(hours=24)
    mail_retry_limit: int = 6
    mail_retry_base: timedelta = timedelta(seconds=30)
    mail_retry_cap: timedelta = timedelta(minutes=30)
    mail_answer_timeout: timedelta = timedelta(minutes=2)  # a mail request nobody answered is asked again

    @model_validator(mode="after")
    def _signature_and_chain_always(self) -> Profile:
        if not {"signature", "chain"} <= self.checks:
            raise ValueError("every profile checks the signature and the chain")
        return self

    def retry_delay(self, retries: int, jitter: float) -> timedelta:
        """The verification's retry-later schedule."""
        return backoff(self.verification_retry_base, self.verification_retry_cap, retries, jitter)

    def mail_retry_delay(self, retries: int, jitter: float) -> timedelta:
        """The confirmation mail's schedule after a temporary failure (4xx, unreachable, timeout)."""
        return backoff(self.mail_retry_base, self.mail_retry_cap, retries, jitter)


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
    """One person's registration. Personal facts live here only; the store encrypts them.

    `id` keys it everywhere inside Honnin; `reference` is what its facility calls it (the same as
    `id` unless the facility API derived `id` from it, see schemas.references)."""

    model_config = ConfigDict(frozen=True)

    id: str
    reference: str
    profile: str
    facility_id: str
    state: State
    created_at: AwareDatetime
    updated_at: AwareDatetime
    expires_at: AwareDatetime
    applicant: ApplicantInfo | None = None  # facility profile: the form; xID has none
    card: CardFacts | None = None
    challenge: str | None = None
    challenge_attempt: int = 0
    signature: Signature | None = None
    verification: Verification | None = None
    activated_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    xid: XidRecord | None = None  # the xID profile's own facts and steps

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def next_deadline(self) -> datetime | None:
        """When the sweeper must look at this registration again, if ever."""
        if self.terminal:
            return None
        retry_at = self.verification.retry_at if self.verification else None
        email = self.xid.email if self.xid else None
        due = [d for d in (self.expires_at, retry_at, email.retry_at if email else None) if d is not None]
        return min(due)


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
