"""Honnin's error tree; adapters re-raise library errors as one of these, `from exc`.

HonninError
├── RetryableError            the same call may succeed later
│   ├── VersionConflictError  someone saved the registration first: reload and apply again
│   ├── RetryLaterError       the event may become applicable (its registration is not there yet)
│   ├── StoreUnavailableError
│   ├── BusUnavailableError
│   │   └── UnroutableError   no queue took the message (mandatory publish returned)
│   └── MailTemporaryError    4xx, a refused or dropped connection, a timeout: send the mail later
└── PermanentError            retrying cannot help
    ├── DuplicateEventError   the event id was processed already
    ├── PoisonMessageError    unparseable, unknown type or failing schema
    ├── CorruptRowError       a stored row does not decode (tampered, wrong key, unknown version)
    │   └── QuarantinedError  …and was moved aside: reads of it fail until an operator releases it
    ├── NotFoundError
    ├── InvalidRequestError   an operator's request that cannot mean anything (a foreign cursor)
    ├── CardInfoNotReadError  「情報を反映する」 before the app read the card
    ├── ConfigurationError
    └── MailPermanentError    5xx, the recipient refused: this mail to this address will not go
"""

from __future__ import annotations

import errno
import re

from schemas.privacy import mask_individual_numbers


class HonninError(Exception):
    """Root of every error Honnin raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class RetryableError(HonninError):
    code = "retryable"


class PermanentError(HonninError):
    code = "permanent"


class VersionConflictError(RetryableError):
    code = "version_conflict"


class RetryLaterError(RetryableError):
    code = "retry_later"


class EventDeferredError(RetryLaterError):
    """The event overtook an earlier step of its registration (competing consumers deliver a
    registration's steps in any order): it is tried again later, not refused."""


class StoreUnavailableError(RetryableError):
    code = "store_unavailable"


class BusUnavailableError(RetryableError):
    code = "bus_unavailable"


class UnroutableError(BusUnavailableError):
    code = "unroutable"


class DuplicateEventError(PermanentError):
    code = "duplicate_event"


class PoisonMessageError(PermanentError):
    code = "poison_message"


class CorruptRowError(PermanentError):
    """A stored row that cannot be decoded: its sealed blob does not open, its JSON or model does not
    validate, or it was written at a schema version this code does not know."""

    code = "corrupt_row"


class QuarantinedError(CorruptRowError):
    """The row was moved to the quarantine; `honnin quarantine release` puts it back after a fix."""

    code = "quarantined"


class NotFoundError(PermanentError):
    code = "not_found"


class InvalidRequestError(PermanentError):
    code = "invalid_request"


class CardInfoNotReadError(PermanentError):
    code = "card_info_not_read"


class ConfigurationError(PermanentError):
    code = "configuration"


class MailTemporaryError(RetryableError):
    """The same message may be handed over again later; `smtp_code` is the server's reply, if any."""

    code = "mail_temporary"

    def __init__(self, message: str, *, code: str | None = None, smtp_code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.smtp_code = smtp_code


class MailPermanentError(PermanentError):
    """Sending this message to this address again cannot help: record it, do not retry."""

    code = "mail_permanent"

    def __init__(self, message: str, *, code: str | None = None, smtp_code: int | None = None) -> None:
        super().__init__(message, code=code)
        self.smtp_code = smtp_code


_MAX_REASON = 500
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")


def failure_reason(exc: BaseException) -> str:
    """The one thing a dead letter, a bus header or a log may say about a failure.

    Our own errors speak for themselves, in our words (single-line, any 12-digit run masked,
    bounded); anything else is named by its type only, as its text may quote input (a KeyError
    holding an address, a ValueError holding a name)."""
    if isinstance(exc, HonninError):
        text = _UNPRINTABLE.sub(" ", f"{exc.code}: {exc.message}")
        return mask_individual_numbers(text)[:_MAX_REASON]
    return type(exc).__name__


def exception_kind(exc: BaseException) -> str:
    """A library exception as a HonninError's message may name it: its type and a code it carries
    (SQLITE_BUSY, ENOENT, a server's numeric code), never its text, which may quote data."""
    name = type(exc).__name__
    code: object = getattr(exc, "sqlite_errorname", None)
    if code is None and isinstance(exc, OSError) and exc.errno is not None:
        code = errno.errorcode.get(exc.errno)
    if code is None:
        code = getattr(exc, "code", None)
    if (isinstance(code, int) and not isinstance(code, bool)) or (
        isinstance(code, str) and _CODE.match(code)
    ):
        return f"{name} ({code})"
    return name
