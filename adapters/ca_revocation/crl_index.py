"""CRLs verified once, when they arrive, then answered from an index: O(1) per certificate.

`verify_crl` checks a CRL once (RFC 5280 §6.3.3, as pyhanko-certvalidator reads it): signed by a
configured issuer chosen by name, authorityKeyIdentifier and signature, with the cRLSign usage;
no MD5/SHA-1 or short RSA key; no unknown critical extension, on the CRL or on an entry; and an
IssuingDistributionPoint scope it honours — its distribution point names, onlyContainsUserCerts,
onlyContainsCACerts and onlySomeReasons — or refuses: indirect CRLs, attribute-certificate CRLs
and delta CRLs are not used. It keeps serial → (reason, revocation date) in one dict of ints.

`RevocationIndex` files each CRL under (issuer, distribution point name), or under its issuer alone
when it has no IDP name, so a certificate's covering CRLs are a few dict lookups however many
municipalities' CRLs are loaded. It is immutable: a reload builds a new one and swaps it whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from adapters.ca_revocation.issuers import Issuer, TrustAnchors, signature_allowed
from adapters.ca_revocation.status import (
    ALL_REASONS,
    GOOD,
    MISSING,
    REASON_CODES,
    REMOVE_FROM_CRL,
    STALE,
    RevocationQuery,
    RevocationStatus,
    fresh_at,
)

_KNOWN_CRL_EXTENSIONS = frozenset(
    {
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.DELTA_CRL_INDICATOR,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.FRESHEST_CRL,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)
_KNOWN_ENTRY_EXTENSIONS = frozenset(
    {
        CRLEntryExtensionOID.CRL_REASON,
        CRLEntryExtensionOID.INVALIDITY_DATE,
        x509.ObjectIdentifier("2.5.29.23"),
    }
)
_REASON_BITS = 4  # entries pack (revocation time in seconds << 4) | CRLReason code


class CrlRejectedError(ValueError):
    """The CRL is no evidence; the message says why, for the operator's log."""


@dataclass(frozen=True, eq=False)
class VerifiedCrl:
    source: str  # the file it came from, for logs
    issuer: bytes  # fingerprint of the configured issuer whose key signed it
    issuer_name: x509.Name
    this_update: datetime
    next_update: datetime | None
    number: int | None
    points: frozenset[bytes] | None  # IDP distribution point names (DER); None: no IDP name
    only_user: bool
    only_ca: bool
    reasons: frozenset[int]
    entries: dict[int, int]
    der: bytes | None  # kept only when the reference path needs it

    def fresh(self, at: datetime) -> bool:
        return fresh_at(self.this_update, self.next_update, at)

    def covers(self, query: RevocationQuery) -> bool:
        """RFC 5280 §6.3.3 (b): the scope this CRL claims includes the certificate."""
        if query.indirect:
            return False  # the certificate wants an indirect CRL, which is never accepted
        if self.points is not None and query.points is not None and not self.points & query.points:
            return False
        return not (self.only_user and query.is_ca) and not (self.only_ca and not query.is_ca)

    def lookup(self, serial: int, at: datetime) -> RevocationStatus | None:
        """Revoked when listed with a revocation date before `at` (removeFromCRL un-lists)."""
        packed = self.entries.get(serial)
        if packed is None:
            return None
        reason, when = packed & ((1 << _REASON_BITS) - 1), packed >> _REASON_BITS
        if reason == REMOVE_FROM_CRL or when >= at.timestamp():
            return None
        return RevocationStatus("revoked", reason, self.source)

    def __len__(self) -> int:
        return len(self.entries)


def point_name(name: x509.GeneralName) -> bytes | None:
    """How distribution point names compare: a directoryName by its DER, a URI by its text."""
    if isinstance(name, x509.DirectoryName):
        return name.value.public_bytes()
    if isinstance(name, x509.UniformResourceIdentifier):
        return b"uri:" + name.value.encode()
    return None


def relative_point(rdn: x509.RelativeDistinguishedName, issuer: x509.Name) -> bytes:
    """nameRelativeToCRLIssuer: the issuer's name with one more RDN (RFC 5280 §4.2.1.13)."""
    return x509.Name([*issuer.rdns, rdn]).public_bytes()


def verify_crl(data: bytes, issuers: TrustAnchors, *, source: str, keep_der: bool = True) -> VerifiedCrl:
    """Raises CrlRejectedError for anything but a CRL a configured issuer vouches for."""
    try:
        return _verified(data, issuers, source=source, keep_der=keep_der)
    except CrlRejectedError:
        raise
    except Exception as exc:  # cryptography parses lazily: a broken part surfaces when first read
        raise CrlRejectedError("not a DER CRL") from exc


def _verified(data: bytes, issuers: TrustAnchors, *, source: str, keep_der: bool) -> VerifiedCrl:
    crl = x509.load_der_x509_crl(data)
    extensions = crl.extensions
    issuer = _signer(crl, extensions, issuers)
    scope = _scope(extensions, crl.issuer)
    return VerifiedCrl(
        source=source,
        issuer=issuer.fingerprint,
        issuer_name=crl.issuer,
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        number=_number(extensions),
        points=scope[0],
        only_user=scope[1],
        only_ca=scope[2],
        reasons=scope[3],
        entries=_entries(crl),
        der=data if keep_der else None,
    )


def _signer(
    crl: x509.CertificateRevocationList, extensions: x509.Extensions, issuers: TrustAnchors
) -> Issuer:
    """By name, then authorityKeyIdentifier, then the signature; it must be allowed to sign CRLs."""
    try:
        key_id = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        key_id = None
    candidates = issuers.named(crl.issuer, key_id)
    if not candidates:
        raise CrlRejectedError("issued by no configured CA (name and key identifier)")
    for issuer in candidates:
        if issuer.signs_crls and signature_allowed(crl.signature_hash_algorithm, issuer.key):
            try:
                if crl.is_signature_valid(issuer.key):  # type: ignore[arg-type]
                    return issuer
            except Exception:  # noqa: S112 - a key type that cannot verify this: try the next one
                continue
    raise CrlRejectedError("the signature does not verify with a configured CA's key allowed to sign CRLs")


def _scope(
    extensions: x509.Extensions, issuer: x509.Name
) -> tuple[frozenset[bytes] | None, bool, bool, frozenset[int]]:
    """The IssuingDistributionPoint scope, or a refusal for what is not supported."""
    unknown = [
        ext.oid.dotted_string for ext in extensions if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS
    ]
    if unknown:
        raise CrlRejectedError(f"unknown critical CRL extension {', '.join(unknown)}")
    if any(ext.oid == ExtensionOID.DELTA_CRL_INDICATOR for ext in extensions):
        raise CrlRejectedError("a delta CRL: configure complete CRLs")
    try:
        idp = extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None, False, False, ALL_REASONS
    if idp.indirect_crl:
        raise CrlRejectedError("an indirect CRL (not supported)")
    if idp.only_contains_attribute_certs:
        raise CrlRejectedError("a CRL of attribute certificates covers no signing certificate")
    points: frozenset[bytes] | None = None
    if idp.full_name is not None:
        points = frozenset(key for name in idp.full_name if (key := point_name(name)) is not None)
    elif idp.relative_name is not None:
        points = frozenset({relative_point(idp.relative_name, issuer)})
    reasons = ALL_REASONS
    if idp.only_some_reasons is not None:
        reasons = frozenset(REASON_CODES[flag] for flag in idp.only_some_reasons) & ALL_REASONS
    return points, idp.only_contains_user_certs, idp.only_contains_ca_certs, reasons


def _number(extensions: x509.Extensions) -> int | None:
    try:
        return extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _entries(crl: x509.CertificateRevocationList) -> dict[int, int]:
    """serial → (seconds << 4 | reason): one int per entry, about 100 bytes each with the dict."""
    entries: dict[int, int] = {}
    reason_oid = CRLEntryExtensionOID.CRL_REASON
    try:
        for revoked in crl:
            reason = 0  # an entry without a reason is "unspecified": revoked
            for extension in revoked.extensions:
                if extension.oid == reason_oid:
                    reason = REASON_CODES[extension.value.reason]
                elif extension.oid == CRLEntryExtensionOID.CERTIFICATE_ISSUER:
                    raise CrlRejectedError("an entry names a certificateIssuer (an indirect CRL)")
                elif extension.critical and extension.oid not in _KNOWN_ENTRY_EXTENSIONS:
                    raise CrlRejectedError(f"unknown critical entry extension {extension.oid.dotted_string}")
            when = int(revoked.revocation_date_utc.timestamp())
            entries.setdefault(revoked.serial_number, (when << _REASON_BITS) | reason)
    except KeyError as exc:  # a reason code outside RFC 5280's
        raise CrlRejectedError("an entry is malformed") from exc
    return entries


class RevocationIndex:
    """The CRLs in force, arranged so that a certificate's covering ones are a few lookups."""

    def __init__(self, crls: Iterable[VerifiedCrl] = ()) -> None:
        self.crls = list(crls)
        self._named: dict[tuple[bytes, bytes], list[VerifiedCrl]] = {}
        self._unnamed: dict[bytes, list[VerifiedCrl]] = {}
        self._named_by_issuer: dict[bytes, list[VerifiedCrl]] = {}
        for crl in self.crls:
            if crl.points is None:
                self._unnamed.setdefault(crl.issuer, []).append(crl)
                continue
            self._named_by_issuer.setdefault(crl.issuer, []).append(crl)
            for point in crl.points:
                self._named.setdefault((crl.issuer, point), []).append(crl)

    def candidates(self, query: RevocationQuery) -> list[VerifiedCrl]:
        found = list(self._unnamed.get(query.issuer, ()))
        if query.points is None:
            found += self._named_by_issuer.get(query.issuer, ())
        else:
            for point in query.points:
                found += self._named.get((query.issuer, point), ())
        unique = list({id(crl): crl for crl in found}.values()) if len(found) > 1 else found
        return [crl for crl in unique if crl.covers(query)]

    def status(self, query: RevocationQuery, at: datetime) -> RevocationStatus:
        """As pyhanko's verify_crl: stale CRLs are skipped, a listing before `at` is revoked, and
        "not listed" is good only once fresh CRLs cover every reason."""
        at = at if at.utcoffset() is not None else at.replace(tzinfo=UTC)
        covered: set[int] = set()
        stale = False
        for crl in self.candidates(query):
            if not crl.fresh(at):
                stale = True
                continue
            listed = crl.lookup(query.serial, at)
            if listed is not None:
                return listed
            covered |= crl.reasons
        if covered >= ALL_REASONS:
            return GOOD
        return STALE if stale else MISSING

    def of_issuer_name(self, name: x509.Name) -> list[VerifiedCrl]:
        """For the reference path, which re-checks the CRLs itself: every CRL under this name."""
        return [crl for crl in self.crls if crl.issuer_name == name]
