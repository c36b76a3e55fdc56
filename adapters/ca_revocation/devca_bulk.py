"""CRLs of a million entries for tests and the benchmark: DER assembled directly, signed once.

cryptography's CRL builder takes minutes for that many entries, and JPKI's CRLs do hold that many.
The frame (issuer, times, extensions, signature algorithm) comes from a CRL the development CA
builds the ordinary way with no entries; only the revokedCertificates list is assembled here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from asn1crypto import crl as asn1_crl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from adapters.ca_revocation.devca import DevCA

_SEQUENCE = 0x30
_REASON_OID = bytes.fromhex("0603551d15")  # 2.5.29.21 cRLReason
Entry = tuple[int, int, int]  # serial, revocation time (seconds since the epoch, UTC), CRLReason code


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _time(seconds: int) -> bytes:
    """UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5)."""
    moment = time.gmtime(seconds)
    if moment.tm_year < 2050:
        return _tlv(0x17, time.strftime("%y%m%d%H%M%SZ", moment).encode())
    return _tlv(0x18, time.strftime("%Y%m%d%H%M%SZ", moment).encode())


def _reason_extensions(code: int) -> bytes:
    reason = _tlv(0x04, _tlv(0x0A, bytes((code,))))
    return _tlv(_SEQUENCE, _tlv(_SEQUENCE, _REASON_OID + reason))


def entries_der(entries: Iterable[Entry]) -> bytes:
    """The revokedCertificates SEQUENCE OF: serial, revocation date, and a reason extension."""
    reasons = {code: _reason_extensions(code) for code in range(11)}
    parts = []
    for serial, when, reason in entries:
        number = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
        parts.append(_tlv(_SEQUENCE, _tlv(0x02, number) + _time(when) + reasons[reason]))
    return _tlv(_SEQUENCE, b"".join(parts))


def bulk_crl(
    ca: DevCA,
    entries: Iterable[Entry],
    *,
    this_update: datetime,
    next_update: timedelta = timedelta(days=1),
    partition: tuple[str, str] | None = None,
) -> bytes:
    """A CRL (DER) of `entries`, signed by the CA with RSA PKCS#1 v1.5 SHA-256 as its own CRLs are."""
    frame = DevCA(ca.certificate, ca.key).crl(
        this_update=this_update, next_update=next_update, partition=partition
    )
    parsed = asn1_crl.CertificateList.load(frame)
    tbs = parsed["tbs_cert_list"]
    fields = [tbs[name].dump() for name in ("version", "signature", "issuer", "this_update", "next_update")]
    tbs_der = _tlv(
        _SEQUENCE, b"".join(fields) + entries_der(entries) + tbs["crl_extensions"].dump(force=False)
    )
    signature = ca.key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA256())
    algorithm = parsed["signature_algorithm"].dump()
    return _tlv(_SEQUENCE, tbs_der + algorithm + _tlv(0x03, b"\x00" + signature))
