"""Honnin's verification pipeline against the bare public-key operations it cannot skip, at JPKI scale.

"Bare" is what one verification must compute now: the card's signature over the challenge, and
the issuer's signature on the certificate (both RSA-2048 PKCS#1 v1.5 SHA-256, keys and signed
bytes prepared in advance). A CRL's signature is verified once, when it is loaded, so it is not
part of a verification.

The pipeline is the one `honnin run` wires for JPKI's one-tier hierarchy (no intermediates):
parse, signature, profile, issuer by key identifier and signature, validity, critical extensions,
key usage, revocation from the CRL index, the four facts matched — timed per verification through
`Pipeline.verify`, with CRL files of three shapes:

- one CRL of 10 entries;
- one CRL of 1,000,000 entries (also: the time to load it, and its memory per million entries);
- 1,700 CRLs of 1,000 entries each, one per municipality's distribution point (JPKI's shape).

Generated CRLs are cached in a temporary folder (`--cache`), as is the CA that signs them.

    .venv/bin/python bench/verification.py                      # the full sizes
    .venv/bin/python bench/verification.py --entries 100000 --partitions 170 --n 500   # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.ca_revocation.crl_index import verify_crl
from adapters.ca_revocation.devca import Card, DevCA, Person
from adapters.ca_revocation.devca_bulk import bulk_crl
from adapters.ca_revocation.issuers import TrustAnchors
from adapters.ca_revocation.pipeline import Subject
from adapters.ca_revocation.revocation_crl import CrlFileSource
from adapters.clock import SystemClock
from honnin import verification
from honnin.settings import Settings
from schemas.payloads import CardFacts

CHALLENGE = b"a 32-byte challenge for benching"
FACTS = CardFacts(name="公的 花子", address="東京都千代田区千代田1-1", birth_date=Person().birth_date, sex=2)
HOME = ("東京都", "千代田区")  # the card's municipality
VALID_FOR = timedelta(days=7)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def the_ca(cache: Path) -> DevCA:
    if (cache / "root.pem").exists():
        return DevCA.load(cache)
    ca = DevCA.create(now=datetime.now(UTC) - timedelta(days=1), years=1)
    ca.save(cache)
    return ca


def entries(count: int, seed: int) -> list[tuple[int, int, int]]:
    """Random 64-bit serials, revocation dates within the past year, affiliationChanged (3)."""
    chooser = random.Random(seed)
    now = int(time.time())
    return [
        (chooser.getrandbits(64) | 1 << 63, now - chooser.randrange(365 * 86400), 3) for _ in range(count)
    ]


def cached_crl(path: Path, make: Callable[[], bytes]) -> Path:
    """Generated once; made again when the cached one is within a day of its nextUpdate."""
    if path.exists():
        next_update = x509.load_der_x509_crl(path.read_bytes()).next_update_utc
        if next_update is not None and next_update - datetime.now(UTC) > timedelta(days=1):
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    path.write_bytes(make())
    print(f"  generated {path.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def crl_files(
    ca: DevCA, cache: Path, entries_big: int, partitions: int, per_partition: int
) -> dict[str, list[Path]]:
    this_update = datetime.now(UTC) - timedelta(hours=1)

    def one(count: int, seed: int, partition: tuple[str, str] | None = None) -> Callable[[], bytes]:
        return lambda: bulk_crl(
            ca, entries(count, seed), this_update=this_update, next_update=VALID_FOR, partition=partition
        )

    shards = []
    for number in range(partitions):
        where = HOME if number == partitions // 2 else (f"県{number:04d}", f"市{number:04d}")
        shards.append(
            cached_crl(
                cache / f"partitions-{partitions}x{per_partition}" / f"{number:04d}.der",
                one(per_partition, number, where),
            )
        )
    return {
        "10": [cached_crl(cache / "crl-10.der", one(10, 10))],
        "big": [cached_crl(cache / f"crl-{entries_big}.der", one(entries_big, entries_big))],
        "partitioned": shards,
    }


def bare(card: Card, ca: DevCA, signature: bytes, *, load_card_key: bool) -> Callable[[], None]:
    """The two public-key operations a verification cannot skip, nothing else: the card's signature
    over the challenge, the issuer's on the certificate. With `load_card_key`, the card's key is
    read from its SubjectPublicKeyInfo each time, as every verification must (every card has its
    own key, and OpenSSL prepares a new key on its first use)."""
    key, root_key = card.certificate.public_key(), ca.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert isinstance(root_key, rsa.RSAPublicKey)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    cert = card.certificate
    tbs, cert_signature = cert.tbs_certificate_bytes, cert.signature

    def operations() -> None:
        card_key = serialization.load_der_public_key(spki) if load_card_key else key
        assert isinstance(card_key, rsa.RSAPublicKey)
        card_key.verify(signature, CHALLENGE, padding.PKCS1v15(), hashes.SHA256())
        root_key.verify(cert_signature, tbs, padding.PKCS1v15(), hashes.SHA256())

    return operations


ROUNDS = 5  # the best of several rounds: other work on a shared machine only ever slows a round


def per_second(run: Callable[[], object], n: int) -> float:
    run()
    best = 0.0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(n // ROUNDS):
            run()
        best = max(best, (n // ROUNDS) / (time.perf_counter() - started))
    return best


async def pipeline_rate(settings: Settings, subject: Subject, n: int) -> tuple[float, float]:
    """Verifications per second through the product's wiring, and how long its CRLs took to load."""
    clock = SystemClock()
    source = verification.revocation_source(settings, clock)
    assert isinstance(source, CrlFileSource)
    started = time.perf_counter()
    await source.refresh()
    loaded = time.perf_counter() - started
    pipeline = verification.pipeline(settings, source, clock)
    verdict = await pipeline.verify(subject)
    assert verdict.outcome == "pass", verdict
    rate = 0.0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(n // ROUNDS):
            await pipeline.verify(subject)
        rate = max(rate, (n // ROUNDS) / (time.perf_counter() - started))
    await source.close()
    return rate, loaded


def memory_per_million(ca: DevCA, path: Path) -> tuple[float, float]:
    """MB kept per million entries: tracemalloc over loading a 100,000-entry CRL (what stays
    allocated once its DER is dropped), and the RSS growth of loading the big one in a fresh
    process (this one's allocator keeps what the pipeline cases freed)."""
    anchors = TrustAnchors([ca.der])
    sample = bulk_crl(ca, entries(100_000, 1), this_update=datetime.now(UTC), next_update=VALID_FOR)
    gc.collect()
    tracemalloc.start()
    small = verify_crl(sample, anchors, source="sample", keep_der=False)
    del sample
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] / len(small)
    tracemalloc.stop()
    del small
    fresh = subprocess.run(
        [sys.executable, __file__, "--rss-of", str(path), "--cache", str(path.parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    return traced, float(fresh.stdout.split()[-1])  # bytes per entry = MB per million


def rss_per_entry(path: Path, cache: Path) -> float:
    """Loads one CRL in this (fresh) process: RSS growth per entry, the DER read and dropped."""
    anchors = TrustAnchors([DevCA.load(cache).der])
    gc.collect()
    before = _rss()
    der = path.read_bytes()
    crl = verify_crl(der, anchors, source=path.name, keep_der=False)
    del der
    gc.collect()
    return (_rss() - before) / len(crl)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def profile(settings: Settings, subject: Subject, n: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(pipeline_rate(settings, subject, n))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def main(args: argparse.Namespace) -> None:
    cache = Path(args.cache)
    if args.rss_of:
        print(rss_per_entry(Path(args.rss_of), cache))
        return
    print(f"start: {load()}")
    ca = the_ca(cache)
    card = ca.issue(Person(), now=datetime.now(UTC))
    signature = card.sign(CHALLENGE)
    files = crl_files(ca, cache, args.entries, args.partitions, args.partition_entries)
    (root := cache / "root.der").write_bytes(ca.der)
    subject = Subject(card.der, signature, "rsa-pkcs1v15-sha256", CHALLENGE, FACTS, datetime.now(UTC))

    def settings(paths: list[Path]) -> Settings:
        return Settings(
            data_dir=cache / "data", trust_anchor_files=[root], crl_files=paths, accept_test_certificates=True
        )

    floor = per_second(bare(card, ca, signature, load_card_key=False), args.n * 4)
    loaded_floor = per_second(bare(card, ca, signature, load_card_key=True), args.n * 4)
    print(f"{'bare: 2 RSA-2048 verifications, keys ready':<48} {floor:9,.0f} /s  {1e6 / floor:7.1f} µs")
    print(
        f"{'bare, the card key read from its certificate':<48} {loaded_floor:9,.0f} /s  "
        f"{1e6 / loaded_floor:7.1f} µs"
    )
    for label, key in (
        ("pipeline, one CRL of 10 entries", "10"),
        (f"pipeline, one CRL of {args.entries:,} entries", "big"),
        (f"pipeline, {args.partitions:,} CRLs of {args.partition_entries:,} entries", "partitioned"),
    ):
        rate, loaded = asyncio.run(pipeline_rate(settings(files[key]), subject, args.n))
        print(
            f"{label:<48} {rate:9,.0f} /s  {1e6 / rate:7.1f} µs  {floor / rate:4.2f}× bare"
            f" ({loaded_floor / rate:4.2f}× with the card key read)   CRLs loaded in {loaded:.2f} s",
            flush=True,
        )
    traced, rss = memory_per_million(ca, files["big"][0])
    print(f"memory per million entries: {traced:.0f} MB (tracemalloc), {rss:.0f} MB (RSS growth, big CRL)")
    if args.profile:
        profile(settings(files["10"]), subject, args.n)
    print(f"end: {load()}")


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000, help="verifications per pipeline case")
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries of the big CRL")
    parser.add_argument("--partitions", type=int, default=1700)
    parser.add_argument("--partition-entries", type=int, default=1000)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "honnin-bench-crl"))
    parser.add_argument("--profile", action="store_true", help="profile the 10-entry case afterwards")
    parser.add_argument(
        "--rss-of", default=None, help=argparse.SUPPRESS
    )  # the fresh process of memory_per_million
    main(parser.parse_args())
