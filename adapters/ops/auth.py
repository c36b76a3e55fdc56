"""Who is calling the operator API: an operator's own bearer token (HONNIN_OPERATOR_TOKENS).

The tokens are looked up as the facility API's are (`adapters.http.bearer`: SHA-256 digests
compared in constant time), in a table of their own: a facility token never opens `/ops/v1`, and
an operator token never opens `/v1` (settings refuse a token configured for both).
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.http.bearer import BearerTable, Realm

OPERATOR_UNAUTHORIZED = "an operator bearer token is required (Authorization: Bearer <token>)"
OPERATOR_REALM = Realm("honnin-ops", "operator_unauthorized", OPERATOR_UNAUTHORIZED)


def operator_tokens(operators: Mapping[str, str]) -> BearerTable:
    """Bearer token → operator name (the audit's who)."""
    return BearerTable(operators, OPERATOR_REALM)
