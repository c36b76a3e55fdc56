"""The outcome of path validation: its codes (documented in `chain`), and the verdict type."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchestrator import messages

CODE_OK = "ok"
CODE_EXPIRED = messages.CODE_EXPIRED  # "21"
CODE_NOT_YET_VALID = "22"
CODE_REVOKED = messages.CODE_REVOKED  # "23"
CODE_ON_HOLD = "25"
CODE_UNTRUSTED = "30"
CODE_PATH_INVALID = "31"
CODE_KEY_USAGE = "32"
CODE_MALFORMED = "33"
CODE_REVOCATION_MISSING = "40"
CODE_REVOCATION_STALE = "41"
CODE_REVOCATION_UNAVAILABLE = "42"
CODE_STEP_FAILED = "44"


@dataclass(frozen=True)
class ChainResult:
    """The verdict on one certificate; `reason` never carries the holder's facts."""

    ok: bool
    code: str
    reason: str


class Evidence(enum.Enum):
    GOOD = "good"
    STALE = "stale"
    MISSING = "missing"


def result(code: str, reason: str) -> ChainResult:
    """`ok` follows from the code, so the two can never disagree."""
    return ChainResult(ok=code == CODE_OK, code=code, reason=reason)
