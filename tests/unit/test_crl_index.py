"""CRLs verified once and looked up by (issuer, distribution point): what is evidence, and for whom."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from adapters.ca_revocation import jpki
from adapters.ca_revocation.crl_index import CrlRejectedError, RevocationIndex, VerifiedCrl, verify_crl
from adapters.ca_revocation.devca import Card, DevCA, Person, issuing_distribution_point, new_key
from adapters.ca_revocation.devca_bulk import bulk_crl
from adapters.ca_revocation.issuers import TrustAnchors, signature_allowed
from adapters.ca_revocation.query import query_of
from adapters.ca_revocation.status import RevocationQuery

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHIYODA = ("東京都", "千代田区")
OSAKA = ("大阪府", "大阪市")


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=30))


@pytest.fixture(scope="module")
def other() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=30))


@pytest.fixture(scope="module")
def key():  # one card key for all: key generation is the slow part
    return new_key()


def issuers(*cas: DevCA) -> TrustAnchors:
    return TrustAnchors([ca.der for ca in cas])


def card(ca: DevCA, key, where: tuple[str, str] = CHIYODA) -> Card:
    return ca.issue(Person(), now=NOW - timedelta(days=1), key=key, prefecture=where[0], city=where[1])


def query(ca: DevCA, leaf: Card) -> RevocationQuery:
    return query_of(leaf.certificate, issuers(ca).issuers[0].fingerprint)


def built(
    ca: DevCA,
    change: Callable[[x509.CertificateRevocationListBuilder], x509.CertificateRevocationListBuilder],
    *,
    key=None,
    algorithm=None,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(NOW - timedelta(hours=1))
        .next_update(NOW + timedelta(days=1))
    )
    crl = change(builder).sign(key or ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def index_of(ca: DevCA, *ders: bytes) -> RevocationIndex:
    return RevocationIndex(verify_crl(der, issuers(ca), source=f"crl{i}") for i, der in enumerate(ders))


def revoked_by(ca: DevCA, *cards: Card, reason=x509.ReasonFlags.affiliation_changed) -> DevCA:
    copy = DevCA(ca.certificate, ca.key)
    for each in cards:
        copy.revoke(each, at=NOW - timedelta(hours=2), reason=reason)
    return copy


# -- what a CRL must be -------------------------------------------------------------------------


def test_a_crl_is_verified_once_and_keeps_its_entries(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    crl = verify_crl(
        revoked_by(ca, leaf).crl(this_update=NOW), issuers(ca), source="jpki.crl", keep_der=False
    )
    assert isinstance(crl, VerifiedCrl)
    assert (len(crl), crl.der, crl.points, crl.next_update) == (1, None, None, NOW + timedelta(days=1))
    status = crl.lookup(leaf.certificate.serial_number, NOW)
    assert status is not None
    assert (status.state, status.reason, status.source) == ("revoked", 3, "jpki.crl")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"junk", b"\x30\x03\x02\x01\x01", bytes(range(200))],
    ids=["empty", "text", "short", "bytes"],
)
def test_bytes_that_are_not_a_crl_are_refused(ca: DevCA, garbage: bytes) -> None:
    with pytest.raises(CrlRejectedError, match="not a DER CRL"):
        verify_crl(garbage, issuers(ca), source="x")


def test_a_crl_of_no_configured_issuer_or_a_wrong_key_or_signature_is_refused(
    ca: DevCA, other: DevCA
) -> None:
    with pytest.raises(CrlRejectedError, match="no configured CA"):
        verify_crl(other.crl(this_update=NOW), issuers(ca), source="x")  # the same name, another key (AKI)
    without_aki = built(ca, lambda builder: builder, key=other.key)
    with pytest.raises(CrlRejectedError, match="signature does not verify"):
        verify_crl(without_aki, issuers(ca), source="x")
    good = ca.crl(this_update=NOW)
    with pytest.raises(CrlRejectedError):
        verify_crl(good[:-1] + bytes([good[-1] ^ 1]), issuers(ca), source="x")


def test_the_issuer_is_chosen_by_key_among_same_named_generations(ca: DevCA, other: DevCA) -> None:
    both = issuers(other, ca)
    assert verify_crl(ca.crl(this_update=NOW), both, source="x").issuer == both.issuers[1].fingerprint
    assert verify_crl(other.crl(this_update=NOW), both, source="x").issuer == both.issuers[0].fingerprint


def test_weak_algorithms_are_refused_as_the_reference_path_would() -> None:
    """pyhanko's default policy: no SHA-1 (cryptography no longer even signs with it), RSA >= 2048."""
    short = DevCA(DevCA.create(now=NOW).certificate, new_key(1024))
    assert not signature_allowed(hashes.SHA1(), short.key.public_key())
    assert not signature_allowed(hashes.SHA256(), short.key.public_key())
    assert signature_allowed(hashes.SHA256(), new_key().public_key())


@pytest.mark.parametrize(
    ("extension", "critical", "message"),
    [
        (
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x05\x00"),
            True,
            "unknown critical",
        ),
        (x509.DeltaCRLIndicator(7), True, "delta CRL"),
        (x509.IssuingDistributionPoint(None, None, False, False, None, True, False), True, "indirect"),
        (x509.IssuingDistributionPoint(None, None, False, False, None, False, True), True, "attribute"),
    ],
    ids=["unknown-critical", "delta", "indirect", "attribute-certificates"],
)
def test_what_the_index_cannot_honour_is_refused(ca: DevCA, extension, critical: bool, message: str) -> None:
    with pytest.raises(CrlRejectedError, match=message):
        verify_crl(
            built(ca, lambda builder: builder.add_extension(extension, critical=critical)),
            issuers(ca),
            source="x",
        )


def test_an_unknown_non_critical_extension_is_fine(ca: DevCA) -> None:
    extension = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x05\x00")
    verify_crl(
        built(ca, lambda builder: builder.add_extension(extension, critical=False)), issuers(ca), source="x"
    )


def entry(serial: int, *extensions: tuple[x509.ExtensionType, bool]) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - timedelta(hours=2))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.build()


def test_entries_naming_a_certificate_issuer_or_an_unknown_critical_extension_spoil_the_crl(
    ca: DevCA,
) -> None:
    issuer = x509.CertificateIssuer([x509.DirectoryName(ca.certificate.subject)])
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.3"), b"\x05\x00")
    for bad in (entry(5, (issuer, True)), entry(5, (unknown, True))):
        with pytest.raises(CrlRejectedError, match="entry"):
            verify_crl(
                built(ca, lambda builder, bad=bad: builder.add_revoked_certificate(bad)),
                issuers(ca),
                source="x",
            )
    fine = entry(5, (unknown, False), (x509.InvalidityDate(NOW - timedelta(days=1)), False))
    assert (
        len(
            verify_crl(
                built(ca, lambda builder: builder.add_revoked_certificate(fine)), issuers(ca), source="x"
            )
        )
        == 1
    )


def test_an_entry_without_a_reason_is_revoked_unspecified_and_remove_from_crl_unlists(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    serial = leaf.certificate.serial_number
    plain = built(ca, lambda builder: builder.add_revoked_certificate(entry(serial)))
    status = index_of(ca, plain).status(query(ca, leaf), NOW)
    assert (status.state, status.reason) == ("revoked", 0)
    removed = built(
        ca,
        lambda builder: builder.add_revoked_certificate(
            entry(serial, (x509.CRLReason(x509.ReasonFlags.remove_from_crl), False))
        ),
    )
    assert index_of(ca, removed).status(query(ca, leaf), NOW).state == "good"


# -- lookups ------------------------------------------------------------------------------------


def test_good_revoked_on_hold_stale_missing(ca: DevCA, key) -> None:
    good, revoked, held = card(ca, key), card(ca, key), card(ca, key)
    listing = revoked_by(ca, revoked)
    listing.revoke(held, at=NOW - timedelta(hours=2), reason=x509.ReasonFlags.certificate_hold)
    index = index_of(ca, listing.crl(this_update=NOW - timedelta(hours=1)))
    assert index.status(query(ca, good), NOW).state == "good"
    assert index.status(query(ca, revoked), NOW).state == "revoked"
    assert index.status(query(ca, held), NOW).on_hold
    assert index.status(query(ca, good), NOW + timedelta(days=2)).state == "stale"
    assert index.status(query(ca, revoked), NOW + timedelta(days=2)).state == "stale", (
        "a stale CRL is no evidence"
    )
    assert RevocationIndex().status(query(ca, good), NOW).state == "missing"


def test_a_revocation_dated_after_the_verification_time_does_not_count(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    index = index_of(ca, revoked_by(ca, leaf).crl(this_update=NOW - timedelta(hours=1)))
    assert index.status(query(ca, leaf), NOW - timedelta(hours=3)).state == "good"


def test_the_next_update_has_one_second_of_tolerance(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    index = index_of(ca, ca.crl(this_update=NOW, next_update=timedelta(hours=1)))
    assert index.status(query(ca, leaf), NOW + timedelta(hours=1, seconds=1)).state == "good"
    assert index.status(query(ca, leaf), NOW + timedelta(hours=1, seconds=2)).state == "stale"


def test_a_municipality_partition_covers_only_the_certificates_naming_it(ca: DevCA, key) -> None:
    chiyoda, osaka = card(ca, key, CHIYODA), card(ca, key, OSAKA)
    listing = revoked_by(ca, chiyoda, osaka)
    index = index_of(ca, listing.crl(this_update=NOW, partition=CHIYODA))
    assert index.status(query(ca, chiyoda), NOW).state == "revoked"
    assert index.status(query(ca, osaka), NOW).state == "missing"
    both = index_of(
        ca, listing.crl(this_update=NOW, partition=CHIYODA), listing.crl(this_update=NOW, partition=OSAKA)
    )
    assert both.status(query(ca, osaka), NOW).state == "revoked"
    assert [len(crl) for crl in both.crls] == [1, 1], "each partition lists only its own certificates"


def test_a_full_crl_covers_every_municipality_and_revoked_anywhere_wins(ca: DevCA, key) -> None:
    osaka = card(ca, key, OSAKA)
    clean_partition = ca.crl(this_update=NOW, partition=OSAKA)
    full = revoked_by(ca, osaka).crl(this_update=NOW)
    assert index_of(ca, clean_partition).status(query(ca, osaka), NOW).state == "good"
    assert index_of(ca, clean_partition, full).status(query(ca, osaka), NOW).state == "revoked"


def test_only_user_and_only_ca_certificates_scopes_are_honoured(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    for only_user, expected in ((True, "good"), (False, "missing")):
        idp = x509.IssuingDistributionPoint(None, None, only_user, not only_user, None, False, False)
        crl = built(ca, lambda builder, idp=idp: builder.add_extension(idp, critical=True))
        assert index_of(ca, crl).status(query(ca, leaf), NOW).state == expected


def test_only_some_reasons_counts_as_good_only_when_every_reason_is_covered(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    some = frozenset({x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise})
    rest = frozenset(
        set(x509.ReasonFlags) - some - {x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl}
    )

    def partial(reasons: frozenset[x509.ReasonFlags]) -> bytes:
        idp = x509.IssuingDistributionPoint(None, None, False, False, reasons, False, False)
        return built(ca, lambda builder: builder.add_extension(idp, critical=True))

    assert index_of(ca, partial(some)).status(query(ca, leaf), NOW).state == "missing"
    assert index_of(ca, partial(some), partial(rest)).status(query(ca, leaf), NOW).state == "good"


def test_a_certificate_without_distribution_points_is_covered_by_crls_naming_its_issuer(
    ca: DevCA, key
) -> None:
    leaf = card(ca, key)
    no_point = RevocationQuery(
        query(ca, leaf).issuer,
        leaf.certificate.serial_number,
        frozenset({ca.certificate.subject.public_bytes()}),
    )
    named_issuer = issuing_distribution_point(ca.certificate.subject)
    crl = built(ca, lambda builder: builder.add_extension(named_issuer, critical=True))
    assert index_of(ca, crl).status(no_point, NOW).state == "good"
    assert index_of(ca, ca.crl(this_update=NOW, partition=CHIYODA)).status(no_point, NOW).state == "missing"


def test_a_point_with_a_crl_issuer_needs_an_indirect_crl_which_is_never_used(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    wants_indirect = RevocationQuery(
        query(ca, leaf).issuer, leaf.certificate.serial_number, None, indirect=True
    )
    assert index_of(ca, ca.crl(this_update=NOW)).status(wants_indirect, NOW).state == "missing"


def test_a_million_entries_are_one_dict_lookup_away(ca: DevCA, key) -> None:
    leaf = card(ca, key)
    seconds = int((NOW - timedelta(days=1)).timestamp())
    entries = [(serial, seconds, 3) for serial in range(1, 100_001)] + [
        (leaf.certificate.serial_number, seconds, 1)
    ]
    index = index_of(ca, bulk_crl(ca, entries, this_update=NOW - timedelta(hours=1)))
    assert len(index.crls[0]) == 100_001
    status = index.status(query(ca, leaf), NOW)
    assert (status.state, status.reason) == ("revoked", 1)
    assert index.status(RevocationQuery(query(ca, leaf).issuer, 100_002, None), NOW).state == "good"


def test_bulk_crls_carry_the_partition_and_are_what_the_builder_would_write(ca: DevCA) -> None:
    der = bulk_crl(ca, [(7, int(NOW.timestamp()), 4)], this_update=NOW, partition=CHIYODA)
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(ca.key.public_key())
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    assert idp.full_name == [x509.DirectoryName(jpki.crl_distribution_point(*CHIYODA))]
    (only,) = list(crl)
    assert (only.serial_number, only.revocation_date_utc) == (7, NOW.replace(microsecond=0))
    assert only.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.superseded
