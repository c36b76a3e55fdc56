"""JPKI constants: the certificate profile of the signing certificate (署名用電子証明書)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

OID_NAME = "1.2.392.200149.8.5.5.1"
OID_NAME_SUBSTITUTED = "1.2.392.200149.8.5.5.2"
OID_SEX = "1.2.392.200149.8.5.5.3"
OID_BIRTH_DATE = "1.2.392.200149.8.5.5.4"
OID_ADDRESS = "1.2.392.200149.8.5.5.5"
OID_ADDRESS_SUBSTITUTED = "1.2.392.200149.8.5.5.6"
IDENTITY_OIDS = (
    OID_NAME,
    OID_NAME_SUBSTITUTED,
    OID_SEX,
    OID_BIRTH_DATE,
    OID_ADDRESS,
    OID_ADDRESS_SUBSTITUTED,
)

POLICY_SIGNING = "1.2.392.200149.8.5.1.1.20"
POLICY_SIGNING_TEST = "1.2.392.200149.8.5.1.0.20"  # the JPKI test environment (and `honnin dev-ca`)
SIGNING_POLICIES = frozenset({POLICY_SIGNING})


def signing_policies(*, accept_test_certificates: bool) -> frozenset[str]:
    """Production accepts only the signing policy; test certificates only when a setting says so."""
    if accept_test_certificates:
        return SIGNING_POLICIES | {POLICY_SIGNING_TEST}
    return SIGNING_POLICIES


def crl_distribution_point(prefecture: str, city: str) -> x509.Name:
    """JPKI names its CRL distribution points as directory names, one per municipality."""
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for digital signature")]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CRL Distribution Points")]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, prefecture)]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, city)]),
        ]
    )
