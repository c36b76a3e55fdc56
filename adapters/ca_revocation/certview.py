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


class CertificateView:
    """One certificate: `cert` for key, signature, serial and validity; raw DER for the rest."""

    __slots__ = ("cert", "der", "extensions", "issuer", "tbs")

    def __init__(self, data: bytes) -> None:
        """Raises ValueError (cryptography's) or DerError for bytes that are not a certificate."""
        self.der = data
        self.cert = x509.load_der_x509_certificate(data)
        size = len(data)
        tag, start, end = header(data, 0, size)
        if tag != SEQUENCE or end != size:
            raise DerError("not one certificate")
        _, tbs_start, tbs_end = header(data, start, end)
        self.tbs = data[start:tbs_end]
        fields = children(data, tbs_start, tbs_end)
        if fields[0][0] == 0xA0:
            fields = fields[1:]  # the explicit version
        issuer = fields[2]
        self.issuer = tlv(SEQUENCE, data[issuer[1] : issuer[2]])
        self.extensions: dict[bytes, tuple[bool, int, int]] = {}
        for tag, field_start, field_end in fields[6:]:
            if tag == 0xA3:
                self._read_extensions(data, header(data, field_start, field_end))

    def _read_extensions(self, data: bytes, extensions: Span) -> None:
        for _, start, end in children(data, extensions[1], extensions[2]):
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
            oid = data[oid_start:oid_end]
            if oid_tag != OID or tag != 0x04 or oid in self.extensions:
                raise DerError("not an Extension, or one that appears twice")
            self.extensions[oid] = (critical, value_start, value_end)

    def _value(self, oid: bytes) -> Span | None:
        found = self.extensions.get(oid)
        if found is None:
            return None
        span = header(self.der, found[1], found[2])
        if span[2] != found[2]:
            raise DerError("trailing bytes in an extension value")
        return span

    def key_usage(self) -> frozenset[int]:
        """The bits set (0 digitalSignature, 1 nonRepudiation, 5 keyCertSign, 6 cRLSign); none without it."""
        span = self._value(OID_KEY_USAGE)
        if span is None:
            return frozenset()
        data, (tag, start, end) = self.der, span
        if tag != BIT_STRING or end == start or data[start] > 7:
            raise DerError("keyUsage is not a BIT STRING")
        return frozenset(
            index * 8 + bit
            for index, byte in enumerate(data[start + 1 : end])
            for bit in range(8)
            if byte & (0x80 >> bit)
        )

    def is_ca(self) -> bool:
        span = self._value(OID_BASIC_CONSTRAINTS)
        if span is None:
            return False
        if span[0] != SEQUENCE:
            raise DerError("basicConstraints is not a SEQUENCE")
        inner = children(self.der, span[1], span[2])
        if not inner or inner[0][0] != BOOLEAN:
            return False
        _, start, end = inner[0]
        if end - start != 1 or self.der[start] not in (0x00, 0xFF):
            raise DerError("not a DER BOOLEAN")
        return self.der[start] == 0xFF

    def policies(self) -> set[bytes]:
        span = self._value(OID_CERTIFICATE_POLICIES)
        found: set[bytes] = set()
        if span is None:
            return found
        for tag, start, end in children(self.der, span[1], span[2]):
            first = header(self.der, start, end)
            if tag != SEQUENCE or first[0] != OID:
                raise DerError("policyInformation without a policy OID")
            found.add(self.der[first[1] : first[2]])
        return found

    def authority_key_id(self) -> bytes | None:
        span = self._value(OID_AUTHORITY_KEY_ID)
        if span is None:
            return None
        if span[0] != SEQUENCE:
            raise DerError("authorityKeyIdentifier is not a SEQUENCE")
        for tag, start, end in children(self.der, span[1], span[2]):
            if tag == 0x80:
                return self.der[start:end]
        return None

    def distribution_points(self) -> tuple[frozenset[bytes] | None, bool]:
        """(the names CRLs may be filed under, whether a point wants an indirect CRL), as `query`."""
        span = self._value(OID_CRL_DISTRIBUTION_POINTS)
        if span is None:
            return frozenset({self.issuer}), False
        data = self.der
        names: set[bytes] = set()
        named = indirect = False
        for _, point_start, point_end in children(data, span[1], span[2]):
            for tag, start, end in children(data, point_start, point_end):
                if tag == 0xA0:  # distributionPoint
                    named = True
                    names |= self._point_names(header(data, start, end))
                elif tag == 0xA2:  # cRLIssuer
                    indirect = True
        return (frozenset(names) if named else None), indirect

    def _point_names(self, name: Span) -> set[bytes]:
        data, (tag, start, end) = self.der, name
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
            _, issuer_start, issuer_end = header(self.issuer, 0, len(self.issuer))
            return {tlv(SEQUENCE, self.issuer[issuer_start:issuer_end] + tlv(SET, data[start:end]))}
        raise DerError("distributionPointName is neither fullName nor a relative name")

    def other_names(self, wanted: dict[bytes, str]) -> list[tuple[str, bytes]] | None:
        """subjectAltName otherNames whose type is `wanted` (OID contents → dotted), as (dotted, the
        value inside [0] EXPLICIT) — what cryptography's OtherName gives; None without the extension."""
        span = self._value(OID_SUBJECT_ALT_NAME)
        if span is None:
            return None
        data = self.der
        pairs = []
        for tag, start, end in children(data, span[1], span[2]):
            if tag != OTHER_NAME:
                continue
            parts = children(data, start, end)
            if len(parts) != 2 or parts[0][0] != OID or parts[1][0] != 0xA0:
                raise DerError("otherName is not (OID, [0] value)")
            (_, oid_start, oid_end), (_, wrap_start, wrap_end) = parts
            dotted = wanted.get(data[oid_start:oid_end])
            if dotted is not None:
                if len(children(data, wrap_start, wrap_end)) != 1:
                    raise DerError("an otherName value is not one element")
                pairs.append((dotted, data[wrap_start:wrap_end]))
        return pairs

    def critical_oids(self) -> set[bytes]:
        return {oid for oid, (critical, _, _) in self.extensions.items() if critical}


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
