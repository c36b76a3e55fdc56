"""structlog JSON logs an operator can follow, with personal facts masked before rendering."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from schemas.privacy import mask_individual_numbers

PERSONAL_KEYS = frozenset(
    {
        "name",
        "name_kana",
        "address",
        "birth_date",
        "sex",
        "phone",
        "email",
        "postal_code",
        "login_id",
        "applicant",
        "card",
        "certificate",
        "signature",
        "challenge",
    }
)


# Event and message ids are UUIDs in canonical form: a fixed hex form, not screened (README "Privacy").
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return value if _UUID.match(value) else mask_individual_numbers(value)
    if isinstance(value, int) and not isinstance(value, bool):
        masked = mask_individual_numbers(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {k: ("***" if k in PERSONAL_KEYS else _masked(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def mask_personal(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: code should not log personal facts, and this hides them if it does."""
    for key, value in list(event_dict.items()):
        event_dict[key] = "***" if key in PERSONAL_KEYS else _masked(value)
    return event_dict


def configure(level: str = "INFO", fmt: str = "json") -> None:
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False)
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            mask_personal,
            structlog.processors.TimeStamper(fmt="iso", utc=True),  # after: its digits are no number
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
