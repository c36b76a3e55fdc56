"""The fast path's raw-DER reader against cryptography's reading of the same generated certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.ca_revocation import jpki
from adapters.ca_revocation.certificates import identity_from, identity_of
from adapters.ca_revocation.certview import DerError, header, oid_content, read_fields, subject_of
from adapters.ca_revocation.devca import DevCA, Person, identity_names, new_key
from adapters.ca_revocation.fastpath import _IDENTITY_OIDS
from adapters.ca_revocation.query import query_of

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)
POLICIES = st.sampled_from([jpki.POLICY_SIGNING, jpki.POLICY_SIGNING_TEST, "1.2.3.4.5", "2.5.29.32.0"])
NAMES = st.sampled_from([("東京都", "千代田区"), ("大阪府", "大阪市"), ("北海道", "札幌市")])


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return DevCA.create(now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def key():
    return new_key()


def point(kind: str, where: tuple[str, str]) -> x509.DistributionPoint:
    if kind == "directory":
        return x509.DistributionPoint(
            [x509.DirectoryName(jpki.crl_distribution_point(*where))], None, None, None
        )
    if kind == "uri":
        return x509.DistributionPoint(
            [x509.UniformResourceIdentifier(f"http://crl.example/{where[1].encode().hex()}")],
            None,
            None,
            None,
        )
    if kind == "relative":
        rdn = x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, where[1])])
        return x509.DistributionPoint(None, rdn, None, None)
    issuer = [x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CRL issuer")]))]
    return x509.DistributionPoint(None, None, None, issuer)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    usage=st.sets(st.sampled_from(USAGES)),
    usage_critical=st.booleans(),
    basic=st.none() | st.booleans(),
    policies=st.sets(POLICIES, max_size=3),
    points=st.lists(
        st.tuples(st.sampled_from(["directory", "uri", "relative", "issuer"]), NAMES), max_size=3
    ),
    with_aki=st.booleans(),
    with_san=st.booleans(),
    unknown_critical=st.booleans(),
)
def test_the_raw_reader_reads_what_cryptography_reads(
    ca: DevCA, key, usage, usage_critical, basic, policies, points, with_aki, with_san, unknown_critical
) -> None:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "card")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=30))
    )
    if usage:
        flags = {name: name in usage for name in USAGES}
        builder = builder.add_extension(
            x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), usage_critical
        )
    if basic is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=basic, path_length=None), critical=True)
    if policies:
        infos = [x509.PolicyInformation(x509.ObjectIdentifier(policy), None) for policy in sorted(policies)]
        builder = builder.add_extension(x509.CertificatePolicies(infos), critical=False)
    if points:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([point(*each) for each in points]), critical=False
        )
    if with_aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    if with_san:
        builder = builder.add_extension(x509.SubjectAlternativeName(identity_names(Person())), critical=False)
    if unknown_critical:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.9"), b"\x05\x00"),
            critical=True,
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    read = read_fields(der, _IDENTITY_OIDS)

    assert read.tbs == cert.tbs_certificate_bytes
    assert read.issuer == cert.issuer.public_bytes()
    assert read.signature == cert.signature
    expected_bits = {USAGES.index(name) for name in usage}
    assert {bit for bit in range(9) if read.key_usage >> bit & 1} == expected_bits
    assert read.is_ca is bool(basic)
    assert read.policies == {oid_content(policy) for policy in policies}
    aki = (
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        if with_aki
        else None
    )
    assert read.authority_key_id == aki
    query = query_of(cert, b"")
    assert (read.points, read.indirect) == (query.points, query.indirect)
    critical = {oid_content(ext.oid.dotted_string) for ext in cert.extensions if ext.critical}
    assert read.critical == critical
    if with_san:
        assert identity_from(read.other_names) == identity_of(cert)
    else:
        assert read.other_names is None


def test_an_anchors_subject_is_its_raw_name(ca: DevCA) -> None:
    assert subject_of(ca.der) == ca.certificate.subject.public_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x81\x05abc",
        b"\x30\x80\x00\x00",
        b"\x30\x82\x00\x05abcde",
        b"\x1f\x01\x00",
        b"\x30\x05ab",
    ],
    ids=["empty", "no-length", "long-form-short", "indefinite", "padded-length", "multi-byte-tag", "overrun"],
)
def test_what_is_not_der_is_refused(data: bytes) -> None:
    with pytest.raises(DerError):
        header(data, 0, len(data))
