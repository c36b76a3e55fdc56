"""Stored documents carry `schema_version`; one pure upgrade step per version brings an old one up
to date when it is read, so code only ever sees the current shape.

A document without `schema_version` was written before versions existed: it is version 1. A step
takes a document at version n and returns it at n + 1; it never reads a clock or a store, so the
same document always upgrades the same way (`honnin migrate` rewrites rows with these steps too).
A version above the current one was written by newer code: it is refused, never guessed at.

- registration document — 1: no `reference` (the facility's id was the registration's id);
  2: `reference`, the facility's own id, while `id` may be derived from (facility, reference).
- envelopes kept as history events, outbox and feed bodies — 1 (the envelope's own version).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.errors import CorruptRowError

Document = dict[str, Any]
Step = Callable[[Document], Document]

REGISTRATION_VERSION = 2
ENVELOPE_VERSION = 1


def _registration_1_to_2(doc: Document) -> Document:
    """Before per-facility ids, the id a facility chose (or was given) was the registration's id."""
    return {**doc, "reference": doc["id"]}


REGISTRATION_STEPS: Mapping[int, Step] = {1: _registration_1_to_2}
ENVELOPE_STEPS: Mapping[int, Step] = {}


def version_of(doc: Document) -> int:
    """The version a document was stored at (1 when it says none)."""
    version = doc.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CorruptRowError("schema_version is not a positive whole number", code="unknown_schema_version")
    return version


def upgrade(doc: Document, current: int, steps: Mapping[int, Step], kind: str) -> Document:
    """The document at `current`, through one step per version; without `schema_version` in it."""
    version = version_of(doc)
    if version > current:
        raise CorruptRowError(
            f"{kind} schema_version {version} is newer than this code knows ({current})",
            code="unknown_schema_version",
        )
    body = {k: v for k, v in doc.items() if k != "schema_version"}
    while version < current:
        body = steps[version](body)
        version += 1
    return body


def upgrade_registration(doc: Document) -> Document:
    return upgrade(doc, REGISTRATION_VERSION, REGISTRATION_STEPS, "registration")


def upgrade_envelope(doc: Document) -> Document:
    """Envelopes keep their `schema_version` (it is part of the wire format): only checked here."""
    upgraded = upgrade(doc, ENVELOPE_VERSION, ENVELOPE_STEPS, "envelope")
    return {**upgraded, "schema_version": ENVELOPE_VERSION} if "schema_version" in doc else upgraded
