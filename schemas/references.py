"""Registration ids per facility: a facility names a registration by its own `reference`; Honnin
keys it by an id derived from (facility, reference), so two facilities may choose the same
reference and neither can reach, or learn of, the other's.

The derived id is what the bus, the store, links and logs carry; answers, the feed and webhooks
show the facility its reference. A registration started on the bus without a reference keeps its
id as both (the bus is trusted), and so does one stored before references existed.
"""

from __future__ import annotations

import hashlib

_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_NAMESPACE = b"honnin registration id v1\x00"


def namespaced_id(facility_id: str, reference: str) -> str:
    """`reg-` and 32 letters of SHA-256 over the facility and its reference (letters: no digits to
    line up as an individual number; 128 bits: no two pairs share one by chance)."""
    digest = hashlib.sha256(_NAMESPACE + facility_id.encode() + b"\x00" + reference.encode())
    return "reg-" + digest.hexdigest()[:32].translate(_LETTERS)
