"""SMTP through aiosmtplib, one connection per message; every failure classified for the retry
schedule as MailTemporaryError (send again later) or MailPermanentError (record it, stop)."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
import structlog
from pydantic import SecretStr

from adapters.mail.message import Sender, to_mime, transport_address
from orchestrator.errors import MailPermanentError, MailTemporaryError
from orchestrator.ports import Clock, MailMessage
from schemas.privacy import mask_email

log = structlog.get_logger("honnin.mail")

TlsMode = Literal["none", "starttls", "tls"]
DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "tls": 465}
_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")

# Refusals of Honnin's own session (its login, greeting, sender, a STARTTLS the server lacks):
# the recipient is not the cause, and the same mail goes once an operator fixes the settings.
_SETUP_REFUSALS = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPSenderRefused,
    aiosmtplib.SMTPConnectResponseError,
)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int | None = None  # default by TLS mode: 25, 587 (STARTTLS), 465 (TLS)
    tls: TlsMode = "starttls"
    timeout_seconds: float = 10.0  # for the connection and for each reply
    username: str | None = None
    password: SecretStr | None = None
    tls_context: ssl.SSLContext | None = None  # e.g. trusting a private CA; default: the system's

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.tls]


class SmtpMailer:
    def __init__(self, config: SmtpConfig, sender: Sender, clock: Clock) -> None:
        self.config = config
        self.sender = sender
        self.clock = clock

    async def send(self, message: MailMessage) -> None:
        config = self.config
        mime = to_mime(message, self.sender, self.clock.now())
        try:
            await aiosmtplib.send(
                mime,
                sender=self.sender.address,
                recipients=[transport_address(message.to)],
                hostname=config.host,
                port=config.effective_port,
                username=config.username,
                password=config.password.get_secret_value() if config.password else None,
                timeout=config.timeout_seconds,
                use_tls=config.tls == "tls",
                start_tls=config.tls == "starttls",
                tls_context=config.tls_context,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            error = classify(exc)
            log.warning(
                "mail.failed",
                message_id=message.message_id,
                recipient=mask_email(message.to),
                code=error.code,
                smtp_code=error.smtp_code,
                retry=isinstance(error, MailTemporaryError),
            )
            raise error from exc
        log.info("mail.sent", message_id=message.message_id, recipient=mask_email(message.to))

    async def close(self) -> None:
        return None  # a connection lives for one message


def classify(exc: BaseException) -> MailTemporaryError | MailPermanentError:
    """What a failed hand-over means for the retry schedule. The server's own text is left out:
    it often quotes the recipient's address; the reply code and enhanced status say enough."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        texts = [refused.message for refused in exc.recipients]
        return _by_reply(max(codes, default=550), texts[0] if texts else "", "the recipient", "refused")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        what = "the recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "the message"
        return _by_reply(exc.code, exc.message, what, "refused")
    if isinstance(exc, _SETUP_REFUSALS):
        if 400 <= exc.code < 500:
            return _by_reply(exc.code, exc.message, "Honnin's session", "deferred")
        return _setup(f"refused Honnin's session (SMTP {exc.code}{_enhanced(exc.message)})", exc.code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_reply(exc.code, exc.message, "the message", "refused")
    if isinstance(exc, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors too
        return MailTemporaryError("the SMTP server did not answer in time", code="mail_timeout")
    if _caused_by(exc, ssl.SSLError):
        return _setup(f"could not agree on TLS ({type(exc).__name__})", None)
    if type(exc) is aiosmtplib.SMTPException or isinstance(exc, aiosmtplib.SMTPNotSupported):
        # aiosmtplib raises the bare class for what the client misses: STARTTLS, AUTH
        return _setup("lacks what the settings ask for (STARTTLS or AUTH)", None)
    if isinstance(exc, OSError | aiosmtplib.SMTPException):  # refused, reset, disconnected
        return MailTemporaryError(
            f"could not reach the SMTP server ({type(exc).__name__})", code="mail_unreachable"
        )
    if isinstance(exc, ValueError):
        return MailPermanentError("the address cannot be sent over SMTP", code="mail_address_unsupported")
    return MailTemporaryError(f"mail not handed over ({type(exc).__name__})")


def _by_reply(smtp_code: int, text: str, what: str, verb: str) -> MailTemporaryError | MailPermanentError:
    said = f"SMTP {smtp_code}{_enhanced(text)}"
    if 400 <= smtp_code < 500:
        return MailTemporaryError(
            f"the server {verb} {what} for now ({said})", code="mail_deferred", smtp_code=smtp_code
        )
    return MailPermanentError(f"the server {verb} {what} ({said})", code="mail_rejected", smtp_code=smtp_code)


def _setup(why: str, smtp_code: int | None) -> MailTemporaryError:
    return MailTemporaryError(
        f"the SMTP server {why}: check HONNIN_SMTP_* and HONNIN_MAIL_FROM",
        code="mail_server_setup",
        smtp_code=smtp_code,
    )


def _enhanced(text: str) -> str:
    match = _ENHANCED.match(text or "")
    return f" {match[1]}" if match else ""


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
