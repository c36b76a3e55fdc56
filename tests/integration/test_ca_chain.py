"""Path validation with real keys and signatures (no network): the dev CA's cards, CRLs and OCSP
responses, two roots of one subject name as JPKI has, and the real JPKI roots shipped as package data."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from adapters.ca_revocation import chain
from adapters.ca_revocation.anchors import jpki_trust_anchors, load_anchor_files
from adapters.ca_revocation.chain import ChainResult, validate_chain, validate_chain_async
from adapters.ca_revocation.devca import ROOT_NAME, Card, DevCA, Person, new_key
from orchestrator.errors import ConfigurationError

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
AT = NOW + timedelta(days=1)  # every validation happens here
REVOKED_AT = NOW + timedelta(hours=1)
FRESH = AT - timedelta(hours=1)  # thisUpdate of revocation data that still holds at AT
SHIPPED_FINGERPRINT_PREFIXES = {
    "sign_ca_2015.pem": "19:64:54:05",
    "sign_ca_2023.pem": "D2:27:F6:CD",
    "auth_ca_2015.pem": "4D:CF:C4:CA",
    "auth_ca_2023.pem": "64:11:4F:29",
}
SHIPPED = Path(chain.__file__).parent / "trust_anchors"
Kind = Literal["signing", "authentication"]


@dataclass(frozen=True)
class World:
    """One CA and its cards, made once per module: RSA key generation is the slow part."""

    ca: DevCA
    other: DevCA  # same subject DN as `ca` (devca's fixed ROOT_NAME), different key
    good: Card
    expired: Card
    not_yet_valid: Card
    revoked: Card
    on_hold: Card
    signature_only: Card
    crl: bytes


@pytest.fixture(scope="module")
def world() -> World:
    ca = DevCA.create(now=NOW)
    revoked, on_hold = ca.issue(now=NOW), ca.issue(now=NOW)
    ca.revoke(revoked, at=REVOKED_AT, reason=x509.ReasonFlags.affiliation_changed)
    ca.revoke(on_hold, at=REVOKED_AT, reason=x509.ReasonFlags.certificate_hold)
    return World(
        ca=ca,
        other=DevCA.create(now=NOW),
        good=ca.issue(Person(), now=NOW),
        expired=ca.issue(not_before=NOW - timedelta(days=60), valid_for=timedelta(days=30)),
        not_yet_valid=ca.issue(not_before=AT + timedelta(days=1)),
        revoked=revoked,
        on_hold=on_hold,
        signature_only=ca.issue(now=NOW, key_usage=("digital_signature",)),
        crl=ca.crl(this_update=FRESH),
    )


def check(
    world: World,
    leaf: bytes,
    *,
    intermediates: Sequence[bytes] = (),
    trust_anchors: list[bytes] | None = None,
    at: datetime = AT,
    crls: list[bytes] | None = None,
    ocsp_responses: Sequence[bytes] = (),
    check_revocation: bool = True,
) -> ChainResult:
    """Valid defaults (the dev root, its fresh CRL, revocation on): each test changes one thing."""
    return validate_chain(
        leaf,
        intermediates=intermediates,
        trust_anchors=[world.ca.der] if trust_anchors is None else trust_anchors,
        at=at,
        crls=[world.crl] if crls is None else crls,
        ocsp_responses=ocsp_responses,
        check_revocation=check_revocation,
    )


def tampered(der: bytes) -> bytes:
    """The signature BIT STRING ends the DER: flipping the last byte keeps the structure."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


def assert_code(result: ChainResult, code: str) -> None:
    assert (result.code, result.ok) == (code, code == chain.CODE_OK), result.reason


# -- outcomes ---------------------------------------------------------------------------------


def test_a_valid_certificate_with_a_fresh_crl_is_ok(world: World) -> None:
    assert_code(check(world, world.good.der), chain.CODE_OK)


def test_a_devca_crl_without_issuing_distribution_point_covers_a_directory_name_dp(world: World) -> None:
    crl = x509.load_der_x509_crl(world.crl)
    dps = world.good.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    with pytest.raises(x509.ExtensionNotFound):
        crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert dps[0].full_name is not None
    assert isinstance(dps[0].full_name[0], x509.DirectoryName)
    assert_code(check(world, world.good.der), chain.CODE_OK)


def test_a_good_ocsp_response_alone_is_enough(world: World) -> None:
    response = world.ca.ocsp_response(world.good.certificate, this_update=AT - timedelta(minutes=5))
    assert_code(check(world, world.good.der, crls=[], ocsp_responses=[response]), chain.CODE_OK)


def test_an_expired_certificate_is_21(world: World) -> None:
    assert_code(check(world, world.expired.der), chain.CODE_EXPIRED)


def test_a_not_yet_valid_certificate_is_22(world: World) -> None:
    assert_code(check(world, world.not_yet_valid.der), chain.CODE_NOT_YET_VALID)


def test_revoked_on_the_crl_is_23(world: World) -> None:
    assert_code(check(world, world.revoked.der), chain.CODE_REVOKED)


def test_revoked_by_an_ocsp_response_is_23(world: World) -> None:
    response = world.ca.ocsp_response(world.revoked.certificate, this_update=AT - timedelta(minutes=5))
    assert_code(check(world, world.revoked.der, crls=[], ocsp_responses=[response]), chain.CODE_REVOKED)


def before_any_revocation(ca: DevCA) -> DevCA:
    """The same CA key and root, as it was before it revoked anything: its CRL lists nobody."""
    return DevCA(ca.certificate, ca.key)


def test_revoked_anywhere_wins_over_good_elsewhere(world: World) -> None:
    clean_crl = before_any_revocation(world.ca).crl(this_update=FRESH)
    assert_code(check(world, world.revoked.der, crls=[clean_crl]), chain.CODE_OK)  # this CRL alone: good
    response = world.ca.ocsp_response(world.revoked.certificate, this_update=AT - timedelta(minutes=5))
    result = check(world, world.revoked.der, crls=[clean_crl], ocsp_responses=[response])
    assert_code(result, chain.CODE_REVOKED)


def test_a_revocation_dated_after_the_validation_time_does_not_count(world: World) -> None:
    result = check(world, world.revoked.der, at=REVOKED_AT - timedelta(minutes=10))
    assert_code(result, chain.CODE_OK)


def test_revocation_data_issued_just_after_the_validation_time_is_used(world: World) -> None:
    """A responder's clock a little ahead of ours must not make every answer unusable."""
    ahead = AT + timedelta(seconds=30)
    good = world.ca.ocsp_response(world.good.certificate, this_update=ahead)
    assert_code(check(world, world.good.der, crls=[], ocsp_responses=[good]), chain.CODE_OK)
    revoked = world.ca.ocsp_response(world.revoked.certificate, this_update=ahead)
    assert_code(check(world, world.revoked.der, crls=[], ocsp_responses=[revoked]), chain.CODE_REVOKED)


def test_certificate_hold_is_25(world: World) -> None:
    assert_code(check(world, world.on_hold.der), chain.CODE_ON_HOLD)


def test_an_untrusted_root_is_30(world: World) -> None:
    assert_code(check(world, world.good.der, trust_anchors=[world.other.der]), chain.CODE_UNTRUSTED)


def test_no_trust_anchor_at_all_is_30(world: World) -> None:
    assert_code(check(world, world.good.der, trust_anchors=[]), chain.CODE_UNTRUSTED)


def test_a_tampered_signature_is_31(world: World) -> None:
    """Decision: the DER is still well-formed, it is the path that fails, so 31 and not 33."""
    assert_code(check(world, tampered(world.good.der)), chain.CODE_PATH_INVALID)


def test_digital_signature_without_non_repudiation_is_32(world: World) -> None:
    assert_code(check(world, world.signature_only.der), chain.CODE_KEY_USAGE)


@pytest.mark.parametrize("garbage", [b"", b"not a certificate", b"\x30\x03\x02\x01\x01", bytes(range(256))])
def test_garbage_is_33(world: World, garbage: bytes) -> None:
    assert_code(check(world, garbage), chain.CODE_MALFORMED)


def test_a_pem_leaf_is_not_der_so_33(world: World) -> None:
    pem = world.good.certificate.public_bytes(serialization.Encoding.PEM)
    assert_code(check(world, pem), chain.CODE_MALFORMED)


def test_a_malformed_trust_anchor_is_33_and_says_so(world: World) -> None:
    result = check(world, world.good.der, trust_anchors=[b"junk", world.ca.der])
    assert_code(result, chain.CODE_MALFORMED)
    assert "trust anchor" in result.reason


def test_no_revocation_data_when_required_is_40(world: World) -> None:
    assert_code(check(world, world.good.der, crls=[]), chain.CODE_REVOCATION_MISSING)


def test_unparseable_revocation_data_is_no_evidence_so_40(world: World) -> None:
    result = check(world, world.good.der, crls=[b"junk"], ocsp_responses=[b"junk"])
    assert_code(result, chain.CODE_REVOCATION_MISSING)


def test_a_crl_of_the_other_same_named_root_does_not_cover_the_leaf(world: World) -> None:
    result = check(
        world, world.good.der, trust_anchors=[world.ca.der, world.other.der], crls=[world.other.crl()]
    )
    assert_code(result, chain.CODE_REVOCATION_MISSING)


def test_a_crl_past_its_next_update_is_41(world: World) -> None:
    stale = world.ca.crl(this_update=AT - timedelta(days=3), next_update=timedelta(days=1))
    assert_code(check(world, world.good.der, crls=[stale]), chain.CODE_REVOCATION_STALE)


def test_an_ocsp_response_past_its_next_update_is_41(world: World) -> None:
    stale = world.ca.ocsp_response(world.good.certificate, this_update=AT - timedelta(hours=3))
    assert_code(check(world, world.good.der, crls=[], ocsp_responses=[stale]), chain.CODE_REVOCATION_STALE)


def test_without_revocation_checking_nothing_is_needed(world: World) -> None:
    assert_code(check(world, world.good.der, crls=[], check_revocation=False), chain.CODE_OK)


def test_without_revocation_checking_a_revoked_certificate_passes(world: World) -> None:
    assert_code(check(world, world.revoked.der, check_revocation=False), chain.CODE_OK)


# -- same subject name, different keys (every JPKI root generation) ---------------------------


def test_two_roots_share_one_subject_name(world: World) -> None:
    assert world.ca.certificate.subject == world.other.certificate.subject == ROOT_NAME
    assert world.ca.der != world.other.der


@pytest.mark.parametrize("order", ["signer_first", "signer_last"])
def test_the_issuer_is_chosen_by_key_not_by_name(world: World, order: str) -> None:
    anchors = [world.ca.der, world.other.der]
    if order == "signer_last":
        anchors.reverse()
    assert_code(check(world, world.good.der, trust_anchors=anchors), chain.CODE_OK)


def test_only_the_other_same_named_root_trusted_is_30(world: World) -> None:
    result = check(world, world.good.der, trust_anchors=[world.other.der], crls=[world.other.crl()])
    assert_code(result, chain.CODE_UNTRUSTED)


def test_a_tampered_leaf_with_two_same_named_roots_is_still_31(world: World) -> None:
    result = check(world, tampered(world.good.der), trust_anchors=[world.other.der, world.ca.der])
    assert_code(result, chain.CODE_PATH_INVALID)


# -- intermediates and RFC 5280 constraints -------------------------------------------------


@dataclass(frozen=True)
class Hierarchy:
    """A root, a CA below it that allows no further CA (pathLenConstraint 0), and one such CA anyway."""

    root: DevCA
    intermediate: DevCA
    under_zero: DevCA  # issued by `intermediate` despite its pathLenConstraint 0


def ca_certificate(name: str, key: rsa.RSAPrivateKey, issuer: DevCA | None, path_length: int | None) -> DevCA:
    """A CA certificate by hand: devca makes roots only, with pathLenConstraint 0."""
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, name)]
    )
    signer_key = issuer.key if issuer else key
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
        .sign(signer_key, hashes.SHA256())
    )
    return DevCA(cert, key)


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    root = ca_certificate("Honnin test root", new_key(), None, path_length=None)
    intermediate = ca_certificate("Honnin test intermediate", new_key(), root, path_length=0)
    under_zero = ca_certificate("Honnin forbidden intermediate", new_key(), intermediate, path_length=0)
    return Hierarchy(root=root, intermediate=intermediate, under_zero=under_zero)


def test_an_intermediate_completes_the_path(hierarchy: Hierarchy) -> None:
    leaf = hierarchy.intermediate.issue(now=NOW)
    result = validate_chain(
        leaf.der,
        intermediates=[hierarchy.intermediate.der],
        trust_anchors=[hierarchy.root.der],
        at=AT,
        crls=[hierarchy.intermediate.crl(this_update=FRESH)],
    )
    assert_code(result, chain.CODE_OK)


def test_without_its_intermediate_there_is_no_path(hierarchy: Hierarchy) -> None:
    leaf = hierarchy.intermediate.issue(now=NOW)
    result = validate_chain(leaf.der, intermediates=[], trust_anchors=[hierarchy.root.der], at=AT)
    assert_code(result, chain.CODE_UNTRUSTED)


def test_a_ca_below_a_path_length_zero_ca_is_31(hierarchy: Hierarchy) -> None:
    leaf = hierarchy.under_zero.issue(now=NOW)
    result = validate_chain(
        leaf.der,
        intermediates=[hierarchy.intermediate.der, hierarchy.under_zero.der],
        trust_anchors=[hierarchy.root.der],
        at=AT,
        crls=[hierarchy.under_zero.crl(this_update=FRESH)],
    )
    assert_code(result, chain.CODE_PATH_INVALID)


def test_an_unknown_critical_extension_is_31(world: World) -> None:
    key = new_key()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")]))
        .issuer_name(world.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(world.ca.key.public_key()), critical=False
        )
        .sign(world.ca.key, hashes.SHA256())
    )
    assert_code(check(world, leaf.public_bytes(serialization.Encoding.DER)), chain.CODE_PATH_INVALID)


def test_a_self_signed_leaf_that_is_not_an_anchor_is_30(world: World, hierarchy: Hierarchy) -> None:
    assert_code(check(world, hierarchy.root.der), chain.CODE_UNTRUSTED)


def test_a_leaf_without_key_identifier_naming_a_trusted_issuer_it_was_not_signed_by_is_31(
    world: World,
) -> None:
    """Without an AKI pyhanko matches by name only, and the signature fails (JPKI leaves have an AKI)."""
    assert_code(check(world, world.other.der), chain.CODE_PATH_INVALID)


# -- the real JPKI roots ----------------------------------------------------------------------


def test_a_devca_leaf_against_the_real_jpki_roots_is_30(world: World) -> None:
    assert_code(
        check(world, world.good.der, trust_anchors=jpki_trust_anchors("signing")), chain.CODE_UNTRUSTED
    )


def test_four_real_roots_are_shipped_two_per_kind() -> None:
    files = sorted(path.name for path in SHIPPED.glob("*.pem"))
    assert files == sorted(SHIPPED_FINGERPRINT_PREFIXES)
    assert len(jpki_trust_anchors("signing")) == 2
    assert len(jpki_trust_anchors("authentication")) == 2
    assert jpki_trust_anchors() == jpki_trust_anchors("signing")


@pytest.mark.parametrize("name", sorted(SHIPPED_FINGERPRINT_PREFIXES))
def test_each_shipped_root_has_the_fingerprint_of_the_readme(name: str) -> None:
    kind: Kind = "signing" if name.startswith("sign_") else "authentication"
    der = load_anchor_files([SHIPPED / name])[0]
    assert der in jpki_trust_anchors(kind)
    assert colon_hex(hashlib.sha256(der).digest()).startswith(SHIPPED_FINGERPRINT_PREFIXES[name])
    assert SHIPPED_FINGERPRINT_PREFIXES[name] in (SHIPPED / "README.md").read_text()


def test_each_kind_has_its_own_subject() -> None:
    units: list[tuple[Kind, str]] = [
        ("signing", "JPKI for digital signature"),
        ("authentication", "JPKI for user authentication"),
    ]
    for kind, unit in units:
        subjects = {
            x509.load_der_x509_certificate(der).subject.rfc4514_string() for der in jpki_trust_anchors(kind)
        }
        assert len(subjects) == 1  # one DN across generations
        assert f"OU={unit}" in subjects.pop()


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


# -- anchor files -----------------------------------------------------------------------------


def test_anchor_files_may_be_pem_bundles_or_der(world: World, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        world.ca.certificate.public_bytes(serialization.Encoding.PEM)
        + world.other.certificate.public_bytes(serialization.Encoding.PEM)
    )
    single = tmp_path / "root.der"
    single.write_bytes(world.ca.der)
    assert load_anchor_files([bundle, single]) == [world.ca.der, world.other.der, world.ca.der]


@pytest.mark.parametrize(
    "content", [None, b"", b"junk", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"]
)
def test_unreadable_anchor_files_are_a_configuration_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "anchor.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError):
        load_anchor_files([path])


# -- how it is called -------------------------------------------------------------------------


async def test_the_sync_function_works_inside_a_running_loop(world: World) -> None:
    asyncio.get_running_loop()
    assert_code(check(world, world.good.der), chain.CODE_OK)


async def test_the_async_function_gives_the_same_answers(world: World) -> None:
    result = await validate_chain_async(
        world.revoked.der, intermediates=[], trust_anchors=[world.ca.der], at=AT, crls=[world.crl]
    )
    assert_code(result, chain.CODE_REVOKED)


def test_a_naive_validation_time_is_taken_as_utc(world: World) -> None:
    assert_code(check(world, world.good.der, at=AT.replace(tzinfo=None)), chain.CODE_OK)


def test_reasons_carry_no_personal_facts(world: World) -> None:
    person = Person()
    for leaf in (world.good, world.expired, world.revoked, world.on_hold, world.signature_only):
        facts = [str(attribute.value) for attribute in leaf.certificate.subject]
        facts += [str(leaf.certificate.serial_number), f"{leaf.certificate.serial_number:X}"]
        facts += [person.name, person.address, person.birth_date.strftime("%Y%m%d")]
        for trusted in ([world.ca.der], [world.other.der]):
            result = check(world, leaf.der, trust_anchors=trusted)
            assert result.reason.isascii()
            assert not [fact for fact in facts if fact in result.reason]


# -- RFC 5280 §6.3: every certificate of the path, and the CRL's own signer ---------------------


def revoking(ca: DevCA, revoked: DevCA, **crl: object) -> bytes:
    """`ca`'s CRL listing the CA certificate `revoked` (affiliationChanged is as good as any reason)."""
    issuer = DevCA(ca.certificate, ca.key)
    issuer.revoke(Card(revoked.certificate, revoked.key), at=NOW)
    return issuer.crl(this_update=FRESH, **crl)  # type: ignore[arg-type]


def under_intermediate(hierarchy: Hierarchy, root_crl: bytes | None) -> ChainResult:
    leaf = hierarchy.intermediate.issue(now=NOW)
    crls = [hierarchy.intermediate.crl(this_update=FRESH)] + ([root_crl] if root_crl else [])
    return validate_chain(
        leaf.der,
        intermediates=[hierarchy.intermediate.der],
        trust_anchors=[hierarchy.root.der],
        at=AT,
        crls=crls,
    )


def test_a_revoked_intermediate_without_a_distribution_point_is_refused(hierarchy: Hierarchy) -> None:
    """The intermediate declares no CRL distribution point, but its issuer's CRL was supplied."""
    with pytest.raises(x509.ExtensionNotFound):
        hierarchy.intermediate.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert_code(
        under_intermediate(hierarchy, revoking(hierarchy.root, hierarchy.intermediate)), chain.CODE_REVOKED
    )


def test_an_intermediate_whose_issuer_supplied_no_crl_is_not_checked(hierarchy: Hierarchy) -> None:
    assert_code(under_intermediate(hierarchy, None), chain.CODE_OK)
    clean = DevCA(hierarchy.root.certificate, hierarchy.root.key).crl(this_update=FRESH)
    assert_code(under_intermediate(hierarchy, clean), chain.CODE_OK)


def test_an_intermediate_on_hold_is_25_and_a_stale_issuer_crl_is_41(hierarchy: Hierarchy) -> None:
    held = DevCA(hierarchy.root.certificate, hierarchy.root.key)
    held.revoke(
        Card(hierarchy.intermediate.certificate, hierarchy.intermediate.key),
        at=NOW,
        reason=x509.ReasonFlags.certificate_hold,
    )
    assert_code(under_intermediate(hierarchy, held.crl(this_update=FRESH)), chain.CODE_ON_HOLD)
    stale = DevCA(hierarchy.root.certificate, hierarchy.root.key).crl(this_update=AT - timedelta(days=3))
    assert_code(under_intermediate(hierarchy, stale), chain.CODE_REVOCATION_STALE)


async def test_the_product_refuses_a_card_under_a_revoked_intermediate(
    hierarchy: Hierarchy, tmp_path: Path
) -> None:
    """Through the reference pipeline as `honnin.verification` wires it with intermediates."""
    from adapters.ca_revocation.issuers import TrustAnchors
    from adapters.ca_revocation.jpki import signing_policies
    from adapters.ca_revocation.pipeline import ChainStep, Pipeline, SignatureStep, Subject
    from adapters.ca_revocation.revocation_crl import CrlFileSource
    from adapters.clock import FakeClock

    leaf = hierarchy.intermediate.issue(now=NOW)
    files = []
    for name, der in (
        ("root.crl", revoking(hierarchy.root, hierarchy.intermediate)),
        ("ca.crl", hierarchy.intermediate.crl(this_update=FRESH)),
    ):
        (path := tmp_path / name).write_bytes(der)
        files.append(path)
    issuers = TrustAnchors([hierarchy.root.der, hierarchy.intermediate.der])
    source = CrlFileSource(files, clock=FakeClock(AT), issuers=issuers)
    step = ChainStep(
        [hierarchy.root.der],
        revocation=source,
        intermediates=[hierarchy.intermediate.der],
        policies=signing_policies(accept_test_certificates=True),
    )
    subject = Subject(leaf.der, leaf.sign(b"challenge"), "rsa-pkcs1v15-sha256", b"challenge", None, AT)
    verdict = await Pipeline([SignatureStep(), step]).verify(subject)
    assert (verdict.outcome, verdict.code) == ("fail", chain.CODE_REVOKED)


def crl_signer(root: DevCA) -> DevCA:
    """A separate CRL-signing key of the root: its certificate allows cRLSign only, names no CRL DP."""
    key = new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Honnin test CRL signer"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, False, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()), critical=False
        )
        .sign(root.key, hashes.SHA256())
    )
    return DevCA(cert, key)


def test_a_crl_signed_by_a_revoked_crl_signing_key_is_no_evidence(hierarchy: Hierarchy) -> None:
    root = hierarchy.root
    signer = crl_signer(root)
    leaf = root.issue(now=NOW)  # its distribution point is a municipality's, not the root's name
    by_signer = signer.crl(this_update=FRESH)  # lists nothing: "good", if the signer may be believed
    root_dn = x509.DirectoryName(root.certificate.subject)
    idp = x509.IssuingDistributionPoint([root_dn], None, False, False, None, False, False)

    def root_crl(revoke_signer: bool) -> bytes:
        issuer = DevCA(root.certificate, root.key)
        if revoke_signer:
            issuer.revoke(
                Card(signer.certificate, signer.key), at=NOW, reason=x509.ReasonFlags.key_compromise
            )
        builder = x509.CertificateRevocationListBuilder().issuer_name(root.certificate.subject)
        builder = (
            builder.last_update(FRESH)
            .next_update(FRESH + timedelta(days=1))
            .add_extension(idp, critical=True)
        )
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()), critical=False
        )
        for serial, (when, reason) in issuer.revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            builder = builder.add_revoked_certificate(
                entry.add_extension(x509.CRLReason(reason), critical=False).build()
            )
        return builder.sign(root.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def result(revoke_signer: bool) -> ChainResult:
        return validate_chain(
            leaf.der,
            intermediates=[signer.der],
            trust_anchors=[root.der],
            at=AT,
            crls=[root_crl(revoke_signer), by_signer],
        )

    assert_code(result(revoke_signer=False), chain.CODE_OK)  # the signer's CRL is the leaf's evidence
    assert_code(result(revoke_signer=True), chain.CODE_REVOCATION_MISSING)


def test_an_exception_inside_validation_is_44_and_logged_as_an_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def async_validate_path(self) -> None:
            raise KeyError("a bug in a library")

    monkeypatch.setattr(chain, "CertificateValidator", Broken)
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        result = check(world, world.good.der)
    assert_code(result, chain.CODE_STEP_FAILED)
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("chain.unexpected_error", "error")]
