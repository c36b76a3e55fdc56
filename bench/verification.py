"""Verifications per second through Honnin's pipeline against the bare cryptography it calls.

The pipeline does, per verification: parse the certificate, verify the card's signature over the
challenge, validate the path to the anchor with pyhanko-certvalidator (certificate signature,
validity, key usage, policy) with a CRL as revocation evidence, and parse and match the four facts.
The floor does only the public-key operations that cannot be skipped: the card's signature over
the challenge, the root's signature on the certificate, and the root's signature on the CRL.

    .venv/bin/python bench/verification.py [--n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.ca_revocation.devca import DevCA, Person
from adapters.ca_revocation.pipeline import ChainStep, IdentityStep, Pipeline, SignatureStep, Subject
from adapters.ca_revocation.revocation_crl import CrlFileSource
from adapters.clock import SystemClock
from schemas.payloads import CardFacts


def bare(
    cert: x509.Certificate,
    root: x509.Certificate,
    crl: x509.CertificateRevocationList,
    signature: bytes,
    challenge: bytes,
) -> None:
    key = cert.public_key()
    root_key = root.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert isinstance(root_key, rsa.RSAPublicKey)
    key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    cert.verify_directly_issued_by(root)
    assert crl.is_signature_valid(root_key)


async def main(n: int, tmp: Path) -> None:
    now = datetime.now(UTC)
    ca = DevCA.create(now=now - timedelta(days=1))
    card = ca.issue(Person(), now=now)
    crl_path = tmp / "bench-crl.der"
    crl_path.write_bytes(ca.crl(this_update=now - timedelta(minutes=1)))
    challenge = b"a 32-byte challenge for benching"
    signature = card.sign(challenge)
    facts = CardFacts(
        name="公的 花子", address="東京都千代田区千代田1-1", birth_date=Person().birth_date, sex=2
    )
    subject = Subject(card.der, signature, "rsa-pkcs1v15-sha256", challenge, facts, now)
    revocation = CrlFileSource([crl_path], clock=SystemClock())
    pipeline = Pipeline([SignatureStep(), ChainStep([ca.der], revocation=revocation), IdentityStep()])

    verdict = await pipeline.verify(subject)
    assert verdict.outcome == "pass", verdict
    crl = x509.load_der_x509_crl(crl_path.read_bytes())
    bare(card.certificate, ca.certificate, crl, signature, challenge)

    started = time.perf_counter()
    for _ in range(n):
        bare(card.certificate, ca.certificate, crl, signature, challenge)
    floor = n / (time.perf_counter() - started)

    started = time.perf_counter()
    for _ in range(n):
        await pipeline.verify(subject)
    full = n / (time.perf_counter() - started)
    await revocation.close()
    print(f"bare cryptography: {floor:8.0f} verifications/s")
    print(f"honnin pipeline:   {full:8.0f} verifications/s")
    print(f"ratio floor/pipeline: {floor / full:.1f}x")


if __name__ == "__main__":
    import logging
    import tempfile

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(args.n, Path(directory)))
