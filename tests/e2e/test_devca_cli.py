"""`honnin dev-ca` as a person uses it: a CA on disk, a card, a revocation, a signature."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from adapters.ca_revocation import parse_identity, verify_signature
from adapters.ca_revocation.signatures import public_key_der_of
from schemas.api_card_bridge import SignatureRequest

ROOT = Path(__file__).resolve().parents[2]


def dev_ca(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONNIN_")}
    result = subprocess.run(
        [sys.executable, "-m", "honnin.cli", "dev-ca", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_init_issue_revoke_and_sign(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    settings = dev_ca("init", str(ca)).stdout.splitlines()
    assert settings == [
        f"HONNIN_TRUST_ANCHOR_FILES={ca / 'root.pem'}",
        "HONNIN_REVOCATION=crl",
        f"HONNIN_CRL_FILES={ca / 'crl.der'}",
        "HONNIN_ACCEPT_TEST_CERTIFICATES=true",
    ]
    assert (ca / "root-key.pem").stat().st_mode & 0o777 == 0o600
    assert x509.load_der_x509_crl((ca / "crl.der").read_bytes()).next_update_utc is not None

    cert_path = Path(dev_ca("issue", str(ca), "taro", "--name", "公的　太郎", "--sex", "1").stdout.strip())
    issued = x509.load_pem_x509_certificate(cert_path.read_bytes())
    identity = parse_identity(issued.public_bytes(Encoding.DER))
    assert (identity.name, identity.sex) == ("公的　太郎", "1")

    challenge = base64.b64encode(b"the server's challenge").decode()
    signature_b64, certificate_b64 = dev_ca("sign", str(ca), "taro", challenge).stdout.split()
    cert = x509.load_der_x509_certificate(base64.b64decode(certificate_b64))
    assert verify_signature(
        public_key_der_of(cert),
        b"the server's challenge",
        base64.b64decode(signature_b64),
        "rsa-pkcs1v15-sha256",
    )

    body = json.loads(dev_ca("sign", str(ca), "taro", challenge, "--json").stdout)
    assert set(body) == {"certificate", "signature", "algorithm"}
    assert body["certificate"] == certificate_b64
    assert SignatureRequest.model_validate(body).algorithm == "rsa-pkcs1v15-sha256"
    assert verify_signature(
        public_key_der_of(cert),
        b"the server's challenge",
        base64.b64decode(body["signature"]),
        body["algorithm"],
    )

    dev_ca("revoke", str(ca), "taro")
    crl = x509.load_der_x509_crl((ca / "crl.der").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.affiliation_changed
    )


def test_a_municipality_card_and_its_partitioned_crl_verify_through_the_index(tmp_path: Path) -> None:
    """JPKI's shape: the card's CRL distribution point names its city; that city's CRL names the same
    point in its IssuingDistributionPoint, and only that CRL covers the card."""
    from datetime import UTC, datetime

    from adapters.ca_revocation.crl_index import RevocationIndex, verify_crl
    from adapters.ca_revocation.issuers import TrustAnchors
    from adapters.ca_revocation.jpki import crl_distribution_point
    from adapters.ca_revocation.query import query_of

    ca = tmp_path / "ca"
    dev_ca("init", str(ca))
    cert_path = Path(
        dev_ca("issue", str(ca), "osaka", "--prefecture", "大阪府", "--city", "大阪市").stdout.strip()
    )
    card = x509.load_pem_x509_certificate(cert_path.read_bytes())
    point = card.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name
    assert point == [x509.DirectoryName(crl_distribution_point("大阪府", "大阪市"))]
    dev_ca("revoke", str(ca), "osaka")
    osaka = Path(dev_ca("crl", str(ca), "--prefecture", "大阪府", "--city", "大阪市").stdout.strip())
    tokyo = Path(dev_ca("crl", str(ca), "--prefecture", "東京都", "--city", "千代田区").stdout.strip())
    assert osaka.name == "crl-大阪府-大阪市.der"

    root = x509.load_pem_x509_certificate((ca / "root.pem").read_bytes()).public_bytes(Encoding.DER)
    anchors = TrustAnchors([root])
    index = RevocationIndex(
        verify_crl(path.read_bytes(), anchors, source=path.name) for path in (osaka, tokyo)
    )
    query = query_of(card, anchors.issuers[0].fingerprint)
    status = index.status(query, datetime.now(UTC))
    assert (status.state, status.source) == ("revoked", osaka.name)
    assert (
        RevocationIndex([verify_crl(tokyo.read_bytes(), anchors, source="t")])
        .status(query, datetime.now(UTC))
        .state
        == "missing"
    )


def test_a_relative_folder_is_printed_as_absolute_paths(tmp_path: Path) -> None:
    printed = dev_ca("init", "ca", cwd=tmp_path).stdout.splitlines()
    assert printed[0] == f"HONNIN_TRUST_ANCHOR_FILES={tmp_path.resolve() / 'ca' / 'root.pem'}"
    assert printed[2] == f"HONNIN_CRL_FILES={tmp_path.resolve() / 'ca' / 'crl.der'}"
    issued = Path(dev_ca("issue", "ca", "hanako", cwd=tmp_path).stdout.strip())
    assert issued == tmp_path.resolve() / "ca" / "cards" / "hanako.pem"
    assert Path(dev_ca("revoke", "ca", "hanako", cwd=tmp_path).stdout.strip()).is_absolute()
    assert Path(dev_ca("crl", "ca", cwd=tmp_path).stdout.strip()) == tmp_path.resolve() / "ca" / "crl.der"
