"""What a store keeps inside a sealed blob, both ways: versioned documents written, and every read
checked — the blob opens, the JSON parses, the version is known (and upgraded), the model validates.

A read that fails any of these raises CorruptRowError with a reason in our words (a library's
exception by its type only: its text may quote the document); the store then moves the row to
its quarantine (orchestrator.errors.QuarantinedError from then on) instead of failing every
worker that meets it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adapters.store.codec import Sealer
from orchestrator.errors import ConfigurationError, CorruptRowError, exception_kind
from orchestrator.model import Registration
from orchestrator.versions import REGISTRATION_VERSION, upgrade_envelope, upgrade_registration

_VERSION_PREFIX = b'{"schema_version":%d,' % REGISTRATION_VERSION


def opened(sealer: Sealer, blob: bytes | None, aad: str) -> bytes:
    """The sealed blob's plaintext, or CorruptRowError (tampered, moved to another row, wrong key)."""
    if blob is None:
        raise CorruptRowError(f"{aad} has no sealed blob")
    try:
        return sealer.open(bytes(blob), aad)
    except ConfigurationError as exc:
        raise CorruptRowError(exc.message) from exc


def registration_plain(registration: Registration) -> bytes:
    """The registration document at the current version (pydantic's own JSON, the version first)."""
    dumped = registration.model_dump_json().encode()
    return _VERSION_PREFIX + dumped[1:]  # a model always dumps as a non-empty object: {"id":…}


class DecodedRegistrations:
    """The registrations this process sealed or opened lately, by their sealed bytes: a row whose
    blob is byte for byte the one kept here decodes to the registration kept beside it, so the
    decryption and validation are skipped, and only then (a tampered or rewritten row has other
    bytes and is opened and checked as ever; a write rolled back left bytes no row holds, as its
    nonce was fresh). Bounded, least recently used out; safe from the writer's thread."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._kept: OrderedDict[str, tuple[bytes, Registration]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, registration_id: str, blob: bytes) -> Registration | None:
        with self._lock:
            kept = self._kept.get(registration_id)
            if kept is None or kept[0] != blob:
                return None
            self._kept.move_to_end(registration_id)
            return kept[1]

    def put(self, registration_id: str, blob: bytes, registration: Registration) -> None:
        with self._lock:
            self._kept[registration_id] = (bytes(blob), registration)
            self._kept.move_to_end(registration_id)
            if len(self._kept) > self._size:
                self._kept.popitem(last=False)


def registration_from(plain: bytes) -> Registration:
    """A stored registration document of any known version, as the current model."""
    doc = _object(plain, "the registration document")
    try:
        return Registration.model_validate(upgrade_registration(doc))
    except ValidationError as exc:
        raise CorruptRowError(
            f"the registration document does not validate ({exception_kind(exc)}, {exc.error_count()} errors)"
        ) from exc
    except KeyError as exc:  # an upgrade step missed a field it needs
        raise CorruptRowError(
            f"the registration document cannot be upgraded ({exception_kind(exc)})"
        ) from exc


def envelope_checked(plain: bytes, what: str) -> bytes:
    """An envelope kept as a history event, an outbox or a feed body: JSON, at a known version."""
    doc = _object(plain, what)
    upgraded = upgrade_envelope(doc)
    if upgraded == doc:
        return plain
    return json.dumps(upgraded, ensure_ascii=False).encode()


def _object(plain: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(plain)
    except ValueError as exc:
        raise CorruptRowError(f"{what} is not JSON ({exception_kind(exc)})") from exc
    if not isinstance(doc, dict):
        raise CorruptRowError(f"{what} is not a JSON object")
    return doc


def raw_json(rows: Mapping[str, list[dict[str, Any]]]) -> str:
    """Rows moved aside, by table, as JSON; blobs (still sealed) as {"$base64": …}."""

    def plain(value: object) -> object:
        if isinstance(value, bytes | bytearray | memoryview):
            return {"$base64": base64.b64encode(bytes(value)).decode()}
        return value

    return json.dumps(
        {table: [{k: plain(v) for k, v in row.items()} for row in found] for table, found in rows.items()},
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )


def rows_of(raw: str) -> dict[str, list[dict[str, Any]]]:
    """`raw_json` read back: the rows to put back where they were."""

    def value(item: object) -> object:
        if isinstance(item, dict) and set(item) == {"$base64"}:
            return base64.b64decode(item["$base64"])
        return item

    loaded: dict[str, list[dict[str, Any]]] = json.loads(raw)
    return {
        table: [{k: value(v) for k, v in row.items()} for row in found] for table, found in loaded.items()
    }
