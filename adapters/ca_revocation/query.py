"""The revocation question a certificate asks: its serial, its issuer, and which CRLs may answer."""

from __future__ import annotations

from cryptography import x509

from adapters.ca_revocation.crl_index import point_name, relative_point
from adapters.ca_revocation.status import RevocationQuery


def query_of(cert: x509.Certificate, issuer: bytes) -> RevocationQuery:
    """From the CRLDistributionPoints extension (RFC 5280 §6.3.3 b, as pyhanko reads it): without
    the extension the issuer's own name is the point; a point without a name matches any CRL."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return RevocationQuery(
            issuer, cert.serial_number, frozenset({cert.issuer.public_bytes()}), is_ca=_is_ca(cert)
        )
    names: set[bytes] = set()
    named = indirect = False
    for point in points:
        if point.full_name is not None:
            named = True
            names |= {key for name in point.full_name if (key := point_name(name)) is not None}
        elif point.relative_name is not None:
            named = True
            names.add(relative_point(point.relative_name, cert.issuer))
        if point.crl_issuer is not None:
            indirect = True
    return RevocationQuery(
        issuer, cert.serial_number, frozenset(names) if named else None, indirect, _is_ca(cert)
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
