"""The SMTP mailer against a real SMTP server (aiosmtpd) on loopback: delivered, deferred, refused,
unreachable, silent, and over STARTTLS and TLS with a certificate made for the test."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from structlog.testing import capture_logs

from adapters.clock import FakeClock
from adapters.mail import Sender, SmtpConfig, SmtpMailer
from orchestrator.errors import MailPermanentError, MailTemporaryError
from orchestrator.mails import email_confirmation

TO = "hanako@example.jp"
LINK = "https://honnin.example/app/v1/email/confirm?token=AbC123&lang=ja"
SENDER = Sender("no-reply@honnin.example", "本人確認サービス")
TIMEOUT = 1.0


def confirmation(message_id: str = "mail-0001"):
    expires = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    return email_confirmation(message_id=message_id, to=TO, link=LINK, expires_at=expires)


@dataclass
class Recorder:
    """The server side: what it received, and the replies it is told to give first."""

    received: list[Envelope] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(envelope)
        return "250 Message accepted for delivery"


@dataclass
class Server:
    recorder: Recorder
    port: int

    def parsed(self, index: int = 0) -> email.message.EmailMessage:
        raw = self.recorder.received[index].original_content
        return email.message_from_bytes(raw, policy=email.policy.default)


@asynccontextmanager
async def smtp_server(ssl_context: ssl.SSLContext | None = None, **smtp: Any) -> AsyncIterator[Server]:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(recorder, hostname="mx.test", **smtp), "127.0.0.1", 0, ssl=ssl_context
    )
    try:
        yield Server(recorder, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def mailer(port: int, **config: Any) -> SmtpMailer:
    settings = {"host": "127.0.0.1", "port": port, "tls": "none", "timeout_seconds": TIMEOUT} | config
    return SmtpMailer(SmtpConfig(**settings), SENDER, FakeClock())


# --- delivered ------------------------------------------------------------------------------------


async def test_delivered_with_both_parts_a_decoded_subject_and_the_link() -> None:
    async with smtp_server() as server:
        with capture_logs() as logs:
            await mailer(server.port).send(confirmation())
    [envelope] = server.recorder.received
    assert (envelope.mail_from, envelope.rcpt_tos) == ("no-reply@honnin.example", [TO])
    mail = server.parsed()
    assert mail["Subject"] == "【xID】メールアドレスの確認"
    assert "=?utf-8?" in envelope.original_content.decode("ascii").split("\r\n\r\n")[0], "RFC 2047"
    assert mail["From"].addresses[0].display_name == "本人確認サービス"
    assert mail["Message-ID"] == "<mail-0001@honnin.example>"
    assert mail["Date"].datetime == FakeClock().now()
    assert mail.get_content_type() == "multipart/alternative"
    plain, page = (part for part in mail.iter_parts())
    assert (plain.get_content_type(), page.get_content_type()) == ("text/plain", "text/html")
    assert {plain.get_content_charset(), page.get_content_charset()} == {"utf-8"}
    assert LINK in plain.get_content()
    assert "2026年11月23日 18:30" in plain.get_content()
    assert 'href="https://honnin.example/app/v1/email/confirm?token=AbC123&amp;lang=ja"' in page.get_content()
    assert envelope.original_content.isascii(), "7-bit clean: base64 bodies"
    assert [entry["event"] for entry in logs] == ["mail.sent"]
    assert TO not in str(logs)
    assert "AbC123" not in str(logs)
    assert logs[0]["recipient"] == "h***@e***.jp"


# --- a temporary failure, then delivery -------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("rcpt_replies", "451 4.7.1 Greylisted, please try again later"),
        ("rcpt_replies", "452 4.2.2 Mailbox full for now"),
        ("data_replies", "421 4.3.2 System not accepting network messages"),
    ],
)
async def test_a_4xx_is_temporary_and_the_next_attempt_delivers(where, reply) -> None:
    async with smtp_server() as server:
        getattr(server.recorder, where).append(reply)
        smtp = mailer(server.port)
        with capture_logs() as logs, pytest.raises(MailTemporaryError) as failed:
            await smtp.send(confirmation())
        assert failed.value.smtp_code == int(reply[:3])
        assert failed.value.code == "mail_deferred"
        assert reply[4:9] in failed.value.message, "the enhanced status code is kept"
        assert server.recorder.received == []
        await smtp.send(confirmation())
    assert len(server.recorder.received) == 1
    assert server.parsed()["Message-ID"] == "<mail-0001@honnin.example>", "the same id on the retry"
    assert logs[0]["retry"] is True
    assert TO not in str(logs)


# --- permanent failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "reply", "what"),
    [
        ("rcpt_replies", f"550 5.1.1 <{TO}>: Recipient address rejected: User unknown", "recipient"),
        ("rcpt_replies", "553 5.1.3 Bad destination mailbox address syntax", "recipient"),
        ("data_replies", "554 5.7.1 Message rejected as spam", "message"),
        ("data_replies", "552 5.3.4 Message too big", "message"),
    ],
)
async def test_a_5xx_is_permanent_and_the_error_does_not_quote_the_server(where, reply, what) -> None:
    async with smtp_server() as server:
        getattr(server.recorder, where).append(reply)
        with capture_logs() as logs, pytest.raises(MailPermanentError) as failed:
            await mailer(server.port).send(confirmation())
    assert (failed.value.code, failed.value.smtp_code) == ("mail_rejected", int(reply[:3]))
    assert what in failed.value.message
    assert TO not in failed.value.message
    assert "spam" not in failed.value.message
    assert logs[0]["retry"] is False
    assert TO not in str(logs)
    assert server.recorder.received == []


# --- unreachable and silent servers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_temporary() -> None:
    with pytest.raises(MailTemporaryError) as failed:
        await mailer(free_port()).send(confirmation())
    assert failed.value.code == "mail_unreachable"


@pytest.mark.parametrize("greets", [False, True], ids=["no-greeting", "silent-after-greeting"])
async def test_a_server_that_hangs_is_temporary_once_the_timeout_passes(greets) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if greets:
            writer.write(b"220 mx.test ESMTP\r\n")
            await writer.drain()
        await reader.read()  # never answers; returns when the client hangs up
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        with pytest.raises(MailTemporaryError) as failed:
            await mailer(server.sockets[0].getsockname()[1], timeout_seconds=0.3).send(confirmation())
    finally:
        server.close()
        await server.wait_closed()
    assert failed.value.code == "mail_timeout"


async def test_a_server_that_drops_the_connection_is_temporary() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mx.test ESMTP\r\n")
        await writer.drain()
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    try:
        with pytest.raises(MailTemporaryError) as failed:
            await mailer(server.sockets[0].getsockname()[1]).send(confirmation())
    finally:
        server.close()
        await server.wait_closed()
    assert failed.value.code == "mail_unreachable"


@pytest.mark.parametrize(
    ("greeting", "error", "code"),
    [
        (b"421 4.3.2 mx.test busy, come back later", MailTemporaryError, "mail_deferred"),
        (b"554 5.7.1 no service for your address", MailTemporaryError, "mail_server_setup"),
    ],
)
async def test_a_refusing_greeting_concerns_honnin_not_the_recipient(greeting, error, code) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting + b"\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    try:
        with pytest.raises(error) as failed:
            await mailer(server.sockets[0].getsockname()[1]).send(confirmation())
    finally:
        server.close()
        await server.wait_closed()
    assert (failed.value.code, failed.value.smtp_code) == (code, int(greeting[:3]))


# --- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Honnin test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"honnin", b"s3cret-pass")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


async def test_starttls_with_login_delivers(certificate) -> None:
    async with smtp_server(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    ) as server:
        await mailer(
            server.port,
            tls="starttls",
            tls_context=client_tls(certificate),
            username="honnin",
            password=SecretStr("s3cret-pass"),
        ).send(confirmation())
    assert server.parsed()["Subject"] == "【xID】メールアドレスの確認"


async def test_a_wrong_password_is_the_servers_setup_not_the_recipients(certificate) -> None:
    async with smtp_server(
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    ) as server:
        with pytest.raises(MailTemporaryError) as failed:
            await mailer(
                server.port,
                tls="starttls",
                tls_context=client_tls(certificate),
                username="honnin",
                password=SecretStr("wrong"),
            ).send(confirmation())
    assert (failed.value.code, failed.value.smtp_code) == ("mail_server_setup", 535)
    assert "wrong" not in failed.value.message


async def test_a_server_certificate_nobody_vouches_for_is_refused(certificate) -> None:
    async with smtp_server(tls_context=server_tls(certificate), require_starttls=True) as server:
        with pytest.raises(MailTemporaryError) as failed:
            await mailer(server.port, tls="starttls").send(confirmation())  # the system's roots only
    assert failed.value.code == "mail_server_setup"
    assert server.recorder.received == []


async def test_plain_smtp_to_a_server_that_requires_starttls_is_refused_as_setup(certificate) -> None:
    async with smtp_server(tls_context=server_tls(certificate), require_starttls=True) as server:
        with pytest.raises(MailTemporaryError) as failed:
            await mailer(server.port, tls="none").send(confirmation())
    assert failed.value.code == "mail_server_setup"


async def test_starttls_demanded_from_a_server_without_it_is_refused_as_setup() -> None:
    async with smtp_server() as server:
        with pytest.raises(MailTemporaryError) as failed:
            await mailer(server.port, tls="starttls").send(confirmation())
    assert failed.value.code == "mail_server_setup"
    assert server.recorder.received == []


async def test_implicit_tls_delivers(certificate) -> None:
    async with smtp_server(ssl_context=server_tls(certificate)) as server:
        await mailer(server.port, tls="tls", tls_context=client_tls(certificate)).send(confirmation())
    assert LINK in server.parsed().get_body(("plain",)).get_content()
