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


def test_a_relative_folder_is_printed_as_absolute_paths(tmp_path: Path) -> None:
    printed = dev_ca("init", "ca", cwd=tmp_path).stdout.splitlines()
    assert printed[0] == f"HONNIN_TRUST_ANCHOR_FILES={tmp_path.resolve() / 'ca' / 'root.pem'}"
    assert printed[2] == f"HONNIN_CRL_FILES={tmp_path.resolve() / 'ca' / 'crl.der'}"
    issued = Path(dev_ca("issue", "ca", "hanako", cwd=tmp_path).stdout.strip())
    assert issued == tmp_path.resolve() / "ca" / "cards" / "hanako.pem"
    assert Path(dev_ca("revoke", "ca", "hanako", cwd=tmp_path).stdout.strip()).is_absolute()
    assert Path(dev_ca("crl", "ca", cwd=tmp_path).stdout.strip()) == tmp_path.resolve() / "ca" / "crl.der"
