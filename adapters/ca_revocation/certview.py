"""A certificate read once for the fast path: cryptography's object, plus its fields as raw DER.

cryptography checks the whole DER and gives the key, signature, serial and validity cheaply, but
it turns names and extensions into Python objects on first access: a directoryName CRL
distribution point alone costs about 20 µs, the issuer and subject names as much again, more than
the two RSA verifications of a verification together. So the fast path slices the signed bytes,
the issuer name and the extensions out of the DER here, and decodes only what it checks.

Every read is bounds-checked, definite-length and single-byte-tag (DER as certificates use it);
anything else raises `DerError`, which the fast path reports as malformed (33). The differential
and property tests hold it to what cryptography and pyhanko-certvalidator read from the same bytes.
"""

from __future__ import annotations

from cryptography import x509

SEQUENCE, SET, BOOLEAN, BIT_STRING, OID = 0x30, 0x31, 0x01, 0x03, 0x06
DIRECTORY_NAME, URI, OTHER_NAME = 0xA4, 0x86, 0xA0  # GeneralName [4] EXPLICIT, [6], [0] IMPLICIT
Span = tuple[int, int, int]  # tag, first content byte, one past the last


class DerError(ValueError):
    """The bytes are not the DER this reader expects."""


def header(data: bytes, pos: int, limit: int) -> Span:
    """The TLV at `pos`, which must end within `limit`."""
    if pos + 2 > limit:
        raise DerError("truncated element")
    tag = data[pos]
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > limit or data[start] == 0:
            raise DerError("indefinite, oversized or padded length")
        length = int.from_bytes(data[start : start + count], "big")
        if length < 0x80:
            raise DerError("length not in its shortest form")
        start += count
    end = start + length
    if end > limit or tag & 0x1F == 0x1F:
        raise DerError("an element runs past its container, or a multi-byte tag")
    return tag, start, end


def children(data: bytes, start: int, end: int) -> list[Span]:
    """The TLVs that fill [start, end) exactly (short lengths read inline: most are short)."""
    found = []
    while start < end:
        if start + 2 <= end and data[start + 1] < 0x80 and data[start] & 0x1F != 0x1F:
            stop = start + 2 + data[start + 1]
            if stop > end:
                raise DerError("an element runs past its container")
            found.append((data[start], start + 2, stop))
            start = stop
        else:
            span = header(data, start, end)
            found.append(span)
            start = span[2]
    return found


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def oid_content(dotted: str) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER, so lookups compare bytes."""
    arcs = [int(arc) for arc in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


OID_KEY_USAGE = oid_content("2.5.29.15")
OID_BASIC_CONSTRAINTS = oid_content("2.5.29.19")
OID_CERTIFICATE_POLICIES = oid_content("2.5.29.32")
OID_CRL_DISTRIBUTION_POINTS = oid_content("2.5.29.31")
OID_AUTHORITY_KEY_ID = oid_content("2.5.29.35")
OID_SUBJECT_ALT_NAME = oid_content("2.5.29.17")


class CardFields:
    """What the fast path judges of one certificate, read in one pass over its DER."""

    __slots__ = (
        "authority_key_id",
        "cert",
        "critical",
        "indirect",
        "is_ca",
        "issuer",
        "key_usage",
        "other_names",
        "points",
        "policies",
        "signature",
        "signature_algorithm",
        "tbs",
    )

    def __init__(self, cert: x509.Certificate, tbs: bytes, issuer: bytes) -> None:
        self.cert = cert
        self.tbs = tbs  # the signed bytes, sliced from the DER (cryptography would re-serialise them)
        self.signature_algorithm = b""  # the AlgorithmIdentifier DER, when the outer and signed ones agree
        self.signature = b""  # the signature BIT STRING's bits
        self.issuer = issuer  # DER of the issuer Name
        self.key_usage = 0  # bit mask, bit 0 = digitalSignature ... (none without the extension)
        self.is_ca = False
        self.policies: set[bytes] = set()  # OID contents
        self.authority_key_id: bytes | None = None
        self.points: frozenset[bytes] | None = frozenset({issuer})  # RFC 5280: no extension, the issuer
        self.indirect = False
        self.other_names: list[tuple[str, bytes]] | None = None  # None: no subjectAltName
        self.critical: set[bytes] = set()  # OID contents of the critical extensions


def read_fields(data: bytes, wanted_other_names: dict[bytes, str]) -> CardFields:
    """Raises ValueError (cryptography's) or DerError for bytes that are not a certificate.

    `wanted_other_names` maps the otherName types to keep (OID contents) to their dotted form."""
    cert = x509.load_der_x509_certificate(data)
    size = len(data)
    tag, start, end = header(data, 0, size)
    if tag != SEQUENCE or end != size:
        raise DerError("not one certificate")
    _, tbs_start, tbs_end = header(data, start, end)
    fields = children(data, tbs_start, tbs_end)
    if fields[0][0] == 0xA0:
        fields = fields[1:]  # the explicit version
    issuer = fields[2]
    read = CardFields(cert, data[start:tbs_end], tlv(SEQUENCE, data[issuer[1] : issuer[2]]))
    outer = children(data, tbs_end, end)
    if len(outer) != 2 or outer[1][0] != BIT_STRING or outer[1][2] - outer[1][1] < 2:
        raise DerError("not signatureAlgorithm and signatureValue")
    algorithm = data[outer[0][1] : outer[0][2]]
    if algorithm == data[fields[1][1] : fields[1][2]]:
        read.signature_algorithm = algorithm
    read.signature = data[outer[1][1] + 1 : outer[1][2]]
    seen: set[bytes] = set()
    for tag, field_start, field_end in fields[6:]:
        if tag != 0xA3:
            continue
        _, list_start, list_end = header(data, field_start, field_end)
        for _, ext_start, ext_end in children(data, list_start, list_end):
            oid, critical, value = _extension(data, ext_start, ext_end)
            if oid in seen:
                raise DerError("an extension appears twice")
            seen.add(oid)
            if critical:
                read.critical.add(oid)
            decode = _DECODERS.get(oid)
            if decode is not None:
                value_span = header(data, value[0], value[1])
                if value_span[2] != value[1]:
                    raise DerError("trailing bytes in an extension value")
                decode(read, data, value_span, wanted_other_names)
    return read


def _extension(data: bytes, start: int, end: int) -> tuple[bytes, bool, tuple[int, int]]:
    parts = children(data, start, end)
    critical = False
    if len(parts) == 3 and parts[1][0] == BOOLEAN:
        _, flag_start, flag_end = parts[1]
        if flag_end - flag_start != 1 or data[flag_start] not in (0x00, 0xFF):
            raise DerError("not a DER BOOLEAN")
        critical = data[flag_start] == 0xFF
    elif len(parts) != 2:
        raise DerError("not an Extension")
    (oid_tag, oid_start, oid_end), (tag, value_start, value_end) = parts[0], parts[-1]
    if oid_tag != OID or tag != 0x04:
        raise DerError("not an Extension")
    return data[oid_start:oid_end], critical, (value_start, value_end)


def _key_usage(read: CardFields, data: bytes, span: Span, _wanted: dict[bytes, str]) -> None:
    tag, start, end = span
    if tag != BIT_STRING or end == start or data[start] > 7:
        raise DerError("keyUsage is not a BIT STRING")
    mask = 0
    for index, byte in enumerate(data[start + 1 : end]):
        for bit in range(8):
            if byte & (0x80 >> bit):
                mask |= 1 << (index * 8 + bit)
    read.key_usage = mask


def _basic_constraints(read: CardFields, data: bytes, span: Span, _wanted: dict[bytes, str]) -> None:
    if span[0] != SEQUENCE:
        raise DerError("basicConstraints is not a SEQUENCE")
    inner = children(data, span[1], span[2])
    if inner and inner[0][0] == BOOLEAN:
        _, start, end = inner[0]
        if end - start != 1 or data[start] not in (0x00, 0xFF):
            raise DerError("not a DER BOOLEAN")
        read.is_ca = data[start] == 0xFF


def _policies(read: CardFields, data: bytes, span: Span, _wanted: dict[bytes, str]) -> None:
    for tag, start, end in children(data, span[1], span[2]):
        first = header(data, start, end)
        if tag != SEQUENCE or first[0] != OID:
            raise DerError("policyInformation without a policy OID")
        read.policies.add(data[first[1] : first[2]])


def _authority_key_id(read: CardFields, data: bytes, span: Span, _wanted: dict[bytes, str]) -> None:
    if span[0] != SEQUENCE:
        raise DerError("authorityKeyIdentifier is not a SEQUENCE")
    for tag, start, end in children(data, span[1], span[2]):
        if tag == 0x80:
            read.authority_key_id = data[start:end]


def _distribution_points(read: CardFields, data: bytes, span: Span, _wanted: dict[bytes, str]) -> None:
    """The names CRLs may be filed under; a point without a name matches any (as `query`)."""
    names: set[bytes] = set()
    named = False
    for _, point_start, point_end in children(data, span[1], span[2]):
        for tag, start, end in children(data, point_start, point_end):
            if tag == 0xA0:  # distributionPoint
                named = True
                names |= _point_names(read, data, header(data, start, end))
            elif tag == 0xA2:  # cRLIssuer
                read.indirect = True
    read.points = frozenset(names) if named else None


def _point_names(read: CardFields, data: bytes, name: Span) -> set[bytes]:
    tag, start, end = name
    if tag == 0xA0:  # fullName
        keys = set()
        for general, general_start, general_end in children(data, start, end):
            if general == DIRECTORY_NAME:
                inner = header(data, general_start, general_end)
                keys.add(tlv(SEQUENCE, data[inner[1] : inner[2]]))
            elif general == URI:
                keys.add(b"uri:" + data[general_start:general_end])
        return keys
    if tag == 0xA1:  # nameRelativeToCRLIssuer
        _, issuer_start, issuer_end = header(read.issuer, 0, len(read.issuer))
        return {tlv(SEQUENCE, read.issuer[issuer_start:issuer_end] + tlv(SET, data[start:end]))}
    raise DerError("distributionPointName is neither fullName nor a relative name")


def _other_names(read: CardFields, data: bytes, span: Span, wanted: dict[bytes, str]) -> None:
    """(dotted OID, the value inside [0] EXPLICIT) of the wanted otherNames: what cryptography's
    OtherName gives."""
    pairs = []
    for tag, start, end in children(data, span[1], span[2]):
        if tag != OTHER_NAME:
            continue
        parts = children(data, start, end)
        if len(parts) != 2 or parts[0][0] != OID or parts[1][0] != 0xA0:
            raise DerError("otherName is not (OID, [0] value)")
        (_, oid_start, oid_end), (_, wrap_start, wrap_end) = parts
        dotted = wanted.get(data[oid_start:oid_end])
        if dotted is not None:  # the identity checks hold the value to one DER UTF8String
            pairs.append((dotted, data[wrap_start:wrap_end]))
    read.other_names = pairs


_DECODERS = {
    OID_KEY_USAGE: _key_usage,
    OID_BASIC_CONSTRAINTS: _basic_constraints,
    OID_CERTIFICATE_POLICIES: _policies,
    OID_AUTHORITY_KEY_ID: _authority_key_id,
    OID_CRL_DISTRIBUTION_POINTS: _distribution_points,
    OID_SUBJECT_ALT_NAME: _other_names,
}


def subject_of(data: bytes) -> bytes:
    """The raw subject Name DER of a certificate (an anchor's: compared byte for byte with issuers)."""
    size = len(data)
    _, start, end = header(data, 0, size)
    _, tbs_start, tbs_end = header(data, start, end)
    fields = children(data, tbs_start, tbs_end)
    if fields[0][0] == 0xA0:
        fields = fields[1:]
    subject = fields[4]
    return tlv(SEQUENCE, data[subject[1] : subject[2]])
