"""JSON text as Honnin reads it from any wire: UTF-8 only, each key once, numbers finite.

`json.loads` would guess UTF-16 or UTF-32 from a body's first bytes and keep the last of two
equal keys, so two readers of one document could see different things; every body and every
envelope goes through `loads` instead.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
NOT_UTF8 = "the body must be UTF-8 JSON, without a byte-order mark"
DUPLICATE_KEY = "a JSON object holds the same key twice"
MALFORMED = "the body is not valid JSON"


class JsonTextError(ValueError):
    """Why a text is not JSON Honnin accepts; `code` is the machine code, nothing echoes input."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _DuplicateKey(Exception):
    """Not a ValueError, so `json.loads` cannot mistake it for a syntax error."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKey
    return document


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), whatever Python's parser allows."""
    raise ValueError(name)


def _text(raw: bytes | bytearray | memoryview | str) -> str:
    if isinstance(raw, str):
        text = raw
    else:
        data = bytes(raw)
        if data.startswith(_BOMS):
            raise JsonTextError("invalid_encoding", NOT_UTF8)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonTextError("invalid_encoding", NOT_UTF8) from None
    if text.startswith("\ufeff") or "\x00" in text:  # a BOM, or UTF-16/32 without one
        raise JsonTextError("invalid_encoding", NOT_UTF8)
    return text


def loads(raw: bytes | bytearray | memoryview | str) -> Any:
    """The document, or JsonTextError `invalid_encoding`, `duplicate_key` or `malformed_json`."""
    text = _text(raw)
    try:
        return json.loads(text, object_pairs_hook=_unique, parse_constant=_refuse_constant)
    except _DuplicateKey:
        raise JsonTextError("duplicate_key", DUPLICATE_KEY) from None
    except (ValueError, RecursionError):
        raise JsonTextError("malformed_json", MALFORMED) from None
