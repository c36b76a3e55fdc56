"""Reading a JPKI signing certificate: DER only, and the basic four facts from its subjectAltName.

Every failure is a CertificateError: "33" when the bytes are not a certificate, "34" when they
are one but not a JPKI signing certificate. Messages name the field, never its value: the
facts are personal.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import date

from cryptography import x509

from adapters.ca_revocation import jpki
from orchestrator.errors import PermanentError
from orchestrator.identity import CardIdentity

CODE_MALFORMED = "33"
CODE_NOT_JPKI_SIGNING = "34"

_UTF8_STRING = 0x0C
_CONTEXT_0_CONSTRUCTED = 0xA0
_BIRTH_DATE = re.compile(r"([0-5])([0-9]{4})([0-9]{2})([0-9]{2})")
_SEX = re.compile(r"[123]")
_FLAGS = re.compile(r"[01]+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # exactly Unicode's Cc (control) category
_LABELS = {
    jpki.OID_NAME: "name",
    jpki.OID_NAME_SUBSTITUTED: "name substitute flags",
    jpki.OID_SEX: "sex",
    jpki.OID_BIRTH_DATE: "birth date",
    jpki.OID_ADDRESS: "address",
    jpki.OID_ADDRESS_SUBSTITUTED: "address substitute flags",
}


class CertificateError(PermanentError):
    """The certificate cannot be used: retrying with the same bytes cannot help."""

    code = CODE_MALFORMED


def _not_jpki(message: str) -> CertificateError:
    return CertificateError(message, code=CODE_NOT_JPKI_SIGNING)


def fingerprint(der: bytes) -> str:
    """What we keep instead of the certificate (JPKI guidance): SHA-256 of the DER, lowercase hex."""
    return hashlib.sha256(der).hexdigest()


def load_certificate(der: bytes) -> x509.Certificate:
    """DER only, names, validity and extensions parsed up front so later steps never meet a lazy
    parse error."""
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = (cert.issuer, cert.subject, cert.not_valid_before_utc, cert.not_valid_after_utc, cert.extensions)
    except Exception as exc:  # any library complaint about the bytes means the same thing here
        raise CertificateError("not a DER X.509 certificate", code=CODE_MALFORMED) from exc
    return cert


def parse_identity(cert_der: bytes) -> CardIdentity:
    """The basic four facts (SAN otherNames 1.2.392.200149.8.5.5.1-6), checked for their format."""
    return identity_of(load_certificate(cert_der))


def identity_of(cert: x509.Certificate) -> CardIdentity:
    """`parse_identity` for a certificate already loaded: the pipeline parses each one once."""
    return identity_from(_other_names(cert))


def identity_from(other_names: Iterable[tuple[str, bytes]] | None) -> CardIdentity:
    """The same checks whoever read the subjectAltName's (OID, value) pairs: cryptography or the
    fast path's reader; None means there is no subjectAltName."""
    values = _identity_values(other_names)
    for oid in (jpki.OID_NAME, jpki.OID_SEX, jpki.OID_BIRTH_DATE, jpki.OID_ADDRESS):
        if oid not in values:
            raise _not_jpki(f"{_LABELS[oid]} ({oid}): missing from subjectAltName")
    name, address = values[jpki.OID_NAME], values[jpki.OID_ADDRESS]
    era, birth_date = _birth_date(values[jpki.OID_BIRTH_DATE])
    if not _SEX.fullmatch(values[jpki.OID_SEX]):
        raise _not_jpki("sex: not 1, 2 or 3")
    return CardIdentity(
        name=_text(jpki.OID_NAME, name),
        name_substituted=_flags(jpki.OID_NAME_SUBSTITUTED, values.get(jpki.OID_NAME_SUBSTITUTED), name),
        sex=values[jpki.OID_SEX],
        birth_date=birth_date,
        birth_era=era,
        address=_text(jpki.OID_ADDRESS, address),
        address_substituted=_flags(
            jpki.OID_ADDRESS_SUBSTITUTED, values.get(jpki.OID_ADDRESS_SUBSTITUTED), address
        ),
    )


def _other_names(cert: x509.Certificate) -> list[tuple[str, bytes]] | None:
    """(OID, value) of each otherName; None when there is no subjectAltName at all."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return [(other.type_id.dotted_string, other.value) for other in san.get_values_for_type(x509.OtherName)]


def _identity_values(other_names: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Each JPKI otherName once, decoded; other subjectAltName entries are not ours to judge."""
    if other_names is None:
        raise _not_jpki("no subjectAltName: not a JPKI signing certificate")
    values: dict[str, str] = {}
    for oid, value in other_names:
        if oid not in jpki.IDENTITY_OIDS:
            continue
        if oid in values:
            raise _not_jpki(f"{_LABELS[oid]} ({oid}): appears more than once")
        values[oid] = _utf8_string(oid, value)
    if not values:
        raise _not_jpki("subjectAltName holds no basic four facts: not a JPKI signing certificate")
    return values


def _utf8_string(oid: str, value: bytes) -> str:
    """The standard inner UTF8String; also one extra [0] EXPLICIT, as some encoders double-wrap."""
    element = _der_element(value)
    if element is not None and element[0] == _CONTEXT_0_CONSTRUCTED:
        element = _der_element(element[1])
    if element is None or element[0] != _UTF8_STRING:
        raise _not_jpki(f"{_LABELS[oid]} ({oid}): not a DER UTF8String")
    try:
        return element[1].decode("utf-8")
    except UnicodeDecodeError:
        raise _not_jpki(f"{_LABELS[oid]} ({oid}): not valid UTF-8") from None


def _der_element(data: bytes) -> tuple[int, bytes] | None:
    """One definite-length DER element that fills `data` exactly (tag, contents); else None."""
    if len(data) < 2 or data[0] & 0x1F == 0x1F:
        return None  # too short, or a multi-byte tag no JPKI value uses
    length, start = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count or data[2] == 0:
            return None  # indefinite (BER), oversized or padded length
        length, start = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
        if length < 0x80:
            return None  # not the shortest length form: BER, not DER
    if len(data) - start != length:
        return None
    return data[0], data[start:]


def _birth_date(text: str) -> tuple[str, date | None]:
    """`EYYYYMMDD`: era digit, then the Gregorian date; era 0 means the date is unknown."""
    found = _BIRTH_DATE.fullmatch(text)
    if found is None:
        raise _not_jpki("birth date: not an era digit 0-5 then YYYYMMDD")
    era, year, month, day = found.groups()
    if era == "0":
        return era, None
    try:
        return era, date(int(year), int(month), int(day))
    except ValueError:
        raise _not_jpki("birth date: not a valid calendar date") from None


def _text(oid: str, text: str) -> str:
    """Name and address: present and free of control characters (they end up in records)."""
    if not text.strip():
        raise _not_jpki(f"{_LABELS[oid]} ({oid}): empty")
    if _CONTROL.search(text):
        raise _not_jpki(f"{_LABELS[oid]} ({oid}): contains control characters")
    return text


def _flags(oid: str, flags: str | None, text: str) -> str:
    """One 0/1 digit per character of the text it describes; absent means no flags ("")."""
    if flags is None:
        return ""
    if not _FLAGS.fullmatch(flags):
        raise _not_jpki(f"{_LABELS[oid]} ({oid}): not only digits 0 and 1")
    if len(flags) != len(text):
        raise _not_jpki(f"{_LABELS[oid]} ({oid}): not one digit per character of the text")
    return flags
