"""Revocation sources against the development responder on loopback: real HTTP, real DER, real caches."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from structlog.testing import capture_logs

from adapters.ca_revocation.devca import Card, DevCA
from adapters.ca_revocation.issuers import TrustAnchors
from adapters.ca_revocation.responder import ROUTE_OCSP, ROUTE_PLATFORM, RunningResponder, serve
from adapters.ca_revocation.revocation import (
    OcspSource,
    RevocationEvidence,
    RevocationSourceRejectedError,
    RevocationUnavailableError,
)
from adapters.ca_revocation.revocation_crl import CrlFileSource
from adapters.ca_revocation.revocation_platform import PlatformApiSource
from adapters.clock import FakeClock
from orchestrator.errors import PermanentError, RetryableError

TOKEN = "platform-token-for-tests"
TIMEOUT = 1.0
OCSP_VALIDITY = timedelta(hours=1)  # DevCA.ocsp_response's default nextUpdate


@dataclass(frozen=True)
class Pki:
    ca: DevCA
    good: Card
    revoked: Card
    unregistered: Card  # issued by the CA but never registered with the responder


@pytest.fixture(scope="module")
def pki() -> Pki:
    """One CA and its cards per module: RSA key generation is slow."""
    ca = DevCA.create()
    good = ca.issue()
    revoked = ca.issue()
    unregistered = ca.issue(key=good.key)  # a new serial; reusing the key saves a key generation
    ca.revoke(revoked, reason=x509.ReasonFlags.affiliation_changed)
    return Pki(ca, good, revoked, unregistered)


@pytest.fixture
async def responder(pki: Pki, clock: FakeClock) -> AsyncIterator[RunningResponder]:
    async with serve(pki.ca, token=TOKEN, clock=clock) as server:
        server.state.register(pki.good.certificate)
        server.state.register(pki.revoked.certificate)
        yield server


@pytest.fixture
async def ocsp_source(responder: RunningResponder, clock: FakeClock) -> AsyncIterator[OcspSource]:
    source = OcspSource(f"{responder.url}/ocsp", timeout=TIMEOUT, clock=clock)
    yield source
    await source.close()


@pytest.fixture
async def platform(responder: RunningResponder, clock: FakeClock) -> AsyncIterator[PlatformApiSource]:
    source = PlatformApiSource(responder.url, TOKEN, timeout=TIMEOUT, clock=clock)
    yield source
    await source.close()


def only_ocsp(evidence: RevocationEvidence) -> ocsp.OCSPResponse:
    assert evidence.crls == ()
    assert len(evidence.ocsp_responses) == 1
    return ocsp.load_der_ocsp_response(evidence.ocsp_responses[0])


def nonce_of(response: ocsp.OCSPResponse) -> bytes:
    return response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def fixed_answer(body: bytes, content_type: str) -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server that answers every POST with the same bytes, to feed answers the CA would not."""
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/ocsp", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/ocsp", received
    finally:
        await runner.cleanup()


# -- OCSP ---------------------------------------------------------------------------------------


async def test_ocsp_good_answer_is_the_cas_signed_response(pki: Pki, ocsp_source: OcspSource) -> None:
    response = only_ocsp(await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate))
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == pki.good.certificate.serial_number
    assert isinstance(response.hash_algorithm, hashes.SHA1)
    assert response.signature_hash_algorithm is not None
    pki.ca.key.public_key().verify(
        response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
    )


async def test_ocsp_revoked_answer_carries_time_and_reason(pki: Pki, ocsp_source: OcspSource) -> None:
    response = only_ocsp(await ocsp_source.evidence(pki.revoked.certificate, pki.ca.certificate))
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.affiliation_changed
    assert response.revocation_time_utc is not None


async def test_ocsp_response_echoes_the_requests_nonce(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder
) -> None:
    first = only_ocsp(await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate))
    second = only_ocsp(await ocsp_source.evidence(pki.revoked.certificate, pki.ca.certificate))
    assert responder.state.nonces == [nonce_of(first), nonce_of(second)]
    assert len(nonce_of(first)) == 16
    assert nonce_of(first) != nonce_of(second)


async def test_ocsp_answer_is_cached_until_its_next_update(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder, clock: FakeClock
) -> None:
    first = await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)
    clock.advance(OCSP_VALIDITY - timedelta(seconds=1))
    second = await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)
    assert second == first
    assert responder.state.requests[ROUTE_OCSP] == 1
    clock.advance(timedelta(seconds=2))
    third = await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)
    assert responder.state.requests[ROUTE_OCSP] == 2
    assert only_ocsp(third).this_update_utc == clock.now()


async def test_ocsp_cache_is_per_certificate(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder
) -> None:
    good = only_ocsp(await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate))
    revoked = only_ocsp(await ocsp_source.evidence(pki.revoked.certificate, pki.ca.certificate))
    assert (good.certificate_status, revoked.certificate_status) == (
        ocsp.OCSPCertStatus.GOOD,
        ocsp.OCSPCertStatus.REVOKED,
    )
    assert responder.state.requests[ROUTE_OCSP] == 2


async def test_ocsp_cache_evicts_the_oldest_entry_when_full(
    pki: Pki, responder: RunningResponder, clock: FakeClock
) -> None:
    source = OcspSource(f"{responder.url}/ocsp", timeout=TIMEOUT, clock=clock, max_entries=1)
    try:
        await source.evidence(pki.good.certificate, pki.ca.certificate)
        await source.evidence(pki.revoked.certificate, pki.ca.certificate)
        await source.evidence(pki.revoked.certificate, pki.ca.certificate)  # kept
        await source.evidence(pki.good.certificate, pki.ca.certificate)  # evicted: asked again
    finally:
        await source.close()
    assert responder.state.requests[ROUTE_OCSP] == 3


async def test_ocsp_answer_without_a_nonce_is_accepted(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder
) -> None:
    responder.state.nonce_mode = "omit"
    response = only_ocsp(await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate))
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    with pytest.raises(x509.ExtensionNotFound):
        nonce_of(response)


async def test_ocsp_answer_with_another_nonce_is_refused_and_not_cached(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder
) -> None:
    responder.state.nonce_mode = "wrong"
    with pytest.raises(RevocationUnavailableError, match="nonce"):
        await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)
    responder.state.nonce_mode = "echo"
    await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)
    assert responder.state.requests[ROUTE_OCSP] == 2


async def test_ocsp_responder_down_is_retry_later(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder
) -> None:
    responder.state.down = True
    with pytest.raises(RevocationUnavailableError, match="503") as raised:
        await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)
    assert raised.value.code == "42"
    assert isinstance(raised.value, RetryableError)
    assert responder.state.requests[ROUTE_OCSP] == 1


async def test_slow_ocsp_responder_times_out_after_about_the_timeout(
    pki: Pki, responder: RunningResponder, clock: FakeClock
) -> None:
    responder.state.delay = 5.0
    source = OcspSource(f"{responder.url}/ocsp", timeout=0.3, clock=clock)
    started = time.monotonic()
    try:
        with pytest.raises(RevocationUnavailableError, match="unreachable"):
            await source.evidence(pki.good.certificate, pki.ca.certificate)
    finally:
        await source.close()
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5


async def test_nothing_listening_is_retry_later(pki: Pki, clock: FakeClock) -> None:
    source = OcspSource(f"http://127.0.0.1:{free_port()}/ocsp", timeout=TIMEOUT, clock=clock)
    try:
        with pytest.raises(RevocationUnavailableError, match="unreachable"):
            await source.evidence(pki.good.certificate, pki.ca.certificate)
    finally:
        await source.close()


async def test_malformed_ocsp_answer_is_retry_later(
    pki: Pki, ocsp_source: OcspSource, responder: RunningResponder
) -> None:
    responder.state.malformed = True
    with pytest.raises(RevocationUnavailableError, match="not a DER OCSPResponse"):
        await ocsp_source.evidence(pki.good.certificate, pki.ca.certificate)


async def test_responder_that_does_not_know_the_certificate_is_a_misconfiguration(
    pki: Pki, ocsp_source: OcspSource
) -> None:
    with pytest.raises(RevocationSourceRejectedError, match="UNAUTHORIZED") as raised:
        await ocsp_source.evidence(pki.unregistered.certificate, pki.ca.certificate)
    assert raised.value.code == "43"
    assert isinstance(raised.value, PermanentError)


async def test_wrong_ocsp_url_is_a_misconfiguration(
    pki: Pki, responder: RunningResponder, clock: FakeClock
) -> None:
    source = OcspSource(f"{responder.url}/no-such-path", timeout=TIMEOUT, clock=clock)
    try:
        with pytest.raises(RevocationSourceRejectedError, match="404"):
            await source.evidence(pki.good.certificate, pki.ca.certificate)
    finally:
        await source.close()


async def test_ocsp_answer_with_another_content_type_is_retry_later(pki: Pki, clock: FakeClock) -> None:
    async with fixed_answer(b"<html>captive portal</html>", "text/html") as (url, received):
        source = OcspSource(url, timeout=TIMEOUT, clock=clock)
        try:
            with pytest.raises(RevocationUnavailableError, match="text/html"):
                await source.evidence(pki.good.certificate, pki.ca.certificate)
        finally:
            await source.close()
    request = ocsp.load_der_ocsp_request(received[0])
    assert request.serial_number == pki.good.certificate.serial_number


async def test_ocsp_answer_without_next_update_is_not_cached(pki: Pki, clock: FakeClock) -> None:
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=pki.good.certificate,
            issuer=pki.ca.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=clock.now(),
            next_update=None,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.ca.certificate)
        .sign(pki.ca.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    async with fixed_answer(response, "application/ocsp-response") as (url, received):
        source = OcspSource(url, timeout=TIMEOUT, clock=clock)
        try:
            first = await source.evidence(pki.good.certificate, pki.ca.certificate)
            await source.evidence(pki.good.certificate, pki.ca.certificate)
        finally:
            await source.close()
    assert first.ocsp_responses == (response,)
    assert len(received) == 2


async def test_ocsp_answer_about_another_certificate_is_retry_later(pki: Pki, clock: FakeClock) -> None:
    other = pki.ca.ocsp_response(pki.revoked.certificate, this_update=clock.now())
    async with fixed_answer(other, "application/ocsp-response") as (url, _):
        source = OcspSource(url, timeout=TIMEOUT, clock=clock)
        try:
            with pytest.raises(RevocationUnavailableError, match="not about the certificate"):
                await source.evidence(pki.good.certificate, pki.ca.certificate)
        finally:
            await source.close()


async def test_logs_name_source_outcome_and_serial_only(pki: Pki, ocsp_source: OcspSource) -> None:
    with capture_logs() as logs:
        await ocsp_source.evidence(pki.revoked.certificate, pki.ca.certificate)
    assert logs == [
        {
            "event": "revocation.evidence",
            "log_level": "info",
            "source": "ocsp",
            "outcome": "fetched",
            "status": "revoked",
            "serial": f"{pki.revoked.certificate.serial_number:x}",
        }
    ]


# -- CRL files ----------------------------------------------------------------------------------


def write_crl(path: Path, der: bytes, *, pem: bool = False) -> Path:
    body = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM) if pem else der
    path.write_bytes(body)
    return path


def crl_at(pki: Pki, when: datetime) -> bytes:
    return pki.ca.crl(this_update=when, next_update=timedelta(days=1))


def revoked_serials(der: bytes) -> set[int]:
    return {entry.serial_number for entry in x509.load_der_x509_crl(der)}


def crl_source(pki: Pki, paths: list[Path], clock: FakeClock, **options: object) -> CrlFileSource:
    return CrlFileSource(paths, clock=clock, issuers=TrustAnchors([pki.ca.der]), **options)  # type: ignore[arg-type]


async def test_crl_files_in_der_and_pem_are_both_read(pki: Pki, tmp_path: Path, clock: FakeClock) -> None:
    der = crl_at(pki, clock.now())
    paths = [write_crl(tmp_path / "a.crl", der), write_crl(tmp_path / "b.pem", der, pem=True)]
    evidence = await crl_source(pki, paths, clock).evidence(pki.good.certificate, pki.ca.certificate)
    assert evidence.ocsp_responses == ()
    assert evidence.crls == (der, der)
    assert revoked_serials(evidence.crls[1]) == {pki.revoked.certificate.serial_number}


async def test_a_crl_signed_by_no_configured_issuer_is_no_evidence_and_logged(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    now = clock.now()
    other_issuer = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "another CA")])
    foreign = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(other_issuer)
        .last_update(now)
        .next_update(now + timedelta(days=1))
        .sign(pki.ca.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    own = crl_at(pki, now)
    paths = [write_crl(tmp_path / "foreign.crl", foreign), write_crl(tmp_path / "own.crl", own)]
    with capture_logs() as logs:
        evidence = await crl_source(pki, paths, clock).evidence(pki.good.certificate, pki.ca.certificate)
    assert evidence.crls == (own,)
    rejected = [entry for entry in logs if entry["event"] == "crl.rejected"]
    assert [(entry["file"], entry["log_level"]) for entry in rejected] == [("foreign.crl", "error")]


async def test_a_replaced_file_is_read_at_the_next_refresh_without_blocking_lookups(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    old, new = crl_at(pki, clock.now()), crl_at(pki, clock.now() + timedelta(minutes=5))
    path = write_crl(tmp_path / "jpki.crl", old)
    source = crl_source(pki, [path], clock, refresh_seconds=60)
    assert (await source.evidence(pki.good.certificate, pki.ca.certificate)).crls == (old,)
    mtime = path.stat().st_mtime_ns
    write_crl(path, new)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    clock.advance(timedelta(seconds=59))
    assert (await source.evidence(pki.good.certificate, pki.ca.certificate)).crls == (old,)
    clock.advance(timedelta(seconds=1))
    assert (await source.evidence(pki.good.certificate, pki.ca.certificate)).crls == (old,), (
        "the refresh runs in the background: this lookup is answered by the index in force"
    )
    await source.wait_refreshed()
    assert (await source.evidence(pki.good.certificate, pki.ca.certificate)).crls == (new,)


async def test_a_file_rewritten_with_the_same_size_and_mtime_is_not_read_again(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    old, new = crl_at(pki, clock.now()), crl_at(pki, clock.now() + timedelta(hours=23))
    assert len(old) == len(new)
    path = write_crl(tmp_path / "jpki.crl", old)
    source = crl_source(pki, [path], clock)
    await source.refresh()
    info = path.stat()
    with path.open("r+b") as file:  # same inode, same size, same mtime: nothing says it changed
        file.write(new)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    await source.refresh()
    assert [crl.this_update for crl in source.loaded()] == [clock.now()]


async def test_missing_crl_file_is_retry_later(pki: Pki, tmp_path: Path, clock: FakeClock) -> None:
    source = crl_source(pki, [tmp_path / "absent.crl"], clock)
    with pytest.raises(RevocationUnavailableError, match=r"absent\.crl") as raised:
        await source.evidence(pki.good.certificate, pki.ca.certificate)
    assert raised.value.code == "42"


async def test_a_crl_file_that_disappears_leaves_the_crl_read_before_in_use(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    der = crl_at(pki, clock.now())
    path = write_crl(tmp_path / "jpki.crl", der)
    source = crl_source(pki, [path], clock)
    await source.evidence(pki.good.certificate, pki.ca.certificate)
    path.unlink()
    with capture_logs() as logs:
        await source.refresh()
    assert (await source.evidence(pki.good.certificate, pki.ca.certificate)).crls == (der,)
    assert [entry["file"] for entry in logs if entry["event"] == "crl.unreadable"] == ["jpki.crl"]


async def test_a_replacement_that_fails_to_verify_keeps_the_previous_crl(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    good = crl_at(pki, clock.now())
    path = write_crl(tmp_path / "jpki.crl", good)
    source = crl_source(pki, [path], clock)
    await source.refresh()
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    for replacement in (b"not a CRL at all", tampered):
        path.write_bytes(replacement)
        with capture_logs() as logs:
            await source.refresh()
        assert [crl.this_update for crl in source.loaded()] == [clock.now()]
        assert [entry["event"] for entry in logs] == ["crl.rejected"]


async def test_a_crl_file_that_is_not_a_crl_is_no_evidence(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "garbage.crl"
    path.write_bytes(b"not a CRL at all")
    evidence = await crl_source(pki, [path], clock).evidence(pki.good.certificate, pki.ca.certificate)
    assert evidence == RevocationEvidence()


async def test_a_lookup_without_an_answer_waits_for_a_restored_file(
    pki: Pki, tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "late.crl"
    source = crl_source(pki, [path], clock)
    with pytest.raises(RevocationUnavailableError):
        await source.evidence(pki.good.certificate, pki.ca.certificate)
    write_crl(path, crl_at(pki, clock.now()))
    source._last_urgent = 0.0  # the once-a-second limit is about real time; the test need not sleep
    assert len((await source.evidence(pki.good.certificate, pki.ca.certificate)).crls) == 1


# -- platform API -------------------------------------------------------------------------------


async def test_platform_good_answer_is_the_signed_ocsp_response(
    pki: Pki, platform: PlatformApiSource, responder: RunningResponder
) -> None:
    response = only_ocsp(await platform.evidence(pki.good.certificate, pki.ca.certificate))
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == pki.good.certificate.serial_number
    assert responder.state.requests[ROUTE_PLATFORM] == 1


async def test_platform_revoked_answer(pki: Pki, platform: PlatformApiSource) -> None:
    response = only_ocsp(await platform.evidence(pki.revoked.certificate, pki.ca.certificate))
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.affiliation_changed


async def test_platform_answer_is_cached_until_its_next_update(
    pki: Pki, platform: PlatformApiSource, responder: RunningResponder, clock: FakeClock
) -> None:
    first = await platform.evidence(pki.good.certificate, pki.ca.certificate)
    assert await platform.evidence(pki.good.certificate, pki.ca.certificate) == first
    assert responder.state.requests[ROUTE_PLATFORM] == 1
    clock.advance(OCSP_VALIDITY)
    await platform.evidence(pki.good.certificate, pki.ca.certificate)
    assert responder.state.requests[ROUTE_PLATFORM] == 2


async def test_platform_wrong_token_is_a_misconfiguration(
    pki: Pki, responder: RunningResponder, clock: FakeClock
) -> None:
    source = PlatformApiSource(responder.url, "not-the-token", timeout=TIMEOUT, clock=clock)
    try:
        with pytest.raises(RevocationSourceRejectedError, match="403") as raised:
            await source.evidence(pki.good.certificate, pki.ca.certificate)
    finally:
        await source.close()
    assert raised.value.code == "43"
    assert "not-the-token" not in repr(source)


async def test_platform_down_is_retry_later(
    pki: Pki, platform: PlatformApiSource, responder: RunningResponder
) -> None:
    responder.state.down = True
    with pytest.raises(RevocationUnavailableError, match="503"):
        await platform.evidence(pki.good.certificate, pki.ca.certificate)


async def test_platform_status_that_contradicts_its_ocsp_response_is_retry_later(
    pki: Pki, platform: PlatformApiSource, responder: RunningResponder
) -> None:
    responder.state.platform_status = "good"
    with pytest.raises(RevocationUnavailableError, match="says good but its OCSP response says revoked"):
        await platform.evidence(pki.revoked.certificate, pki.ca.certificate)


async def test_platform_answer_that_is_not_json_is_retry_later(
    pki: Pki, platform: PlatformApiSource, responder: RunningResponder
) -> None:
    responder.state.malformed = True
    with pytest.raises(RevocationUnavailableError, match="not JSON"):
        await platform.evidence(pki.good.certificate, pki.ca.certificate)


async def test_slow_platform_times_out_after_about_the_timeout(
    pki: Pki, responder: RunningResponder, clock: FakeClock
) -> None:
    responder.state.delay = 5.0
    source = PlatformApiSource(responder.url, TOKEN, timeout=0.3, clock=clock)
    started = time.monotonic()
    try:
        with pytest.raises(RevocationUnavailableError):
            await source.evidence(pki.good.certificate, pki.ca.certificate)
    finally:
        await source.close()
    assert time.monotonic() - started < 1.5


# -- the responder itself -----------------------------------------------------------------------


async def test_responder_serves_the_cas_current_crl(
    pki: Pki, responder: RunningResponder, clock: FakeClock
) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{responder.url}/crl") as response:
        status, content_type, body = response.status, response.content_type, await response.read()
    assert (status, content_type) == (200, "application/pkix-crl")
    crl = x509.load_der_x509_crl(body)
    assert crl.is_signature_valid(pki.ca.key.public_key())
    assert crl.last_update_utc == clock.now()
    assert revoked_serials(body) == {pki.revoked.certificate.serial_number}


async def test_responder_stops_and_frees_its_port(pki: Pki, clock: FakeClock) -> None:
    async with serve(pki.ca, clock=clock) as server:
        url = server.url
    source = OcspSource(f"{url}/ocsp", timeout=TIMEOUT, clock=clock)
    try:
        with pytest.raises(RevocationUnavailableError, match="unreachable"):
            await source.evidence(pki.good.certificate, pki.ca.certificate)
    finally:
        await source.close()


async def test_crl_source_without_files_gives_no_evidence(pki: Pki, clock: FakeClock) -> None:
    evidence = await crl_source(pki, [], clock).evidence(pki.good.certificate, pki.ca.certificate)
    assert evidence == RevocationEvidence()
