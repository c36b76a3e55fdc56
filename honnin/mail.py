"""Builds the configured mailer from Settings; bootstrap calls it, nothing else reads the mail settings."""

from __future__ import annotations

import ssl
from email.errors import HeaderParseError
from email.headerregistry import Address

from adapters.mail import FileOutbox, Sender, SmtpConfig, SmtpMailer
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from orchestrator.ports import Clock, Mailer

PLACEHOLDER_FROM = "no-reply@honnin.invalid"


def sender(settings: Settings) -> Sender:
    try:
        parsed = Address(addr_spec=settings.mail_from)
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise ConfigurationError("HONNIN_MAIL_FROM is no e-mail address") from exc
    if not parsed.domain or not settings.mail_from.isascii():
        raise ConfigurationError("HONNIN_MAIL_FROM: an ASCII address, local@domain")
    return Sender(settings.mail_from, settings.mail_from_name)


def smtp_config(settings: Settings) -> SmtpConfig:
    if settings.mail_from == PLACEHOLDER_FROM:
        raise ConfigurationError("HONNIN_MAIL=smtp needs HONNIN_MAIL_FROM, an address the server may send as")
    if settings.smtp_username and settings.smtp_tls == "none":
        raise ConfigurationError(
            "HONNIN_SMTP_USERNAME with HONNIN_SMTP_TLS=none would send the password in clear"
        )
    context = None
    if settings.smtp_ca_file is not None:
        try:
            context = ssl.create_default_context(cafile=str(settings.smtp_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError("HONNIN_SMTP_CA_FILE: no readable PEM certificates") from exc
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=settings.smtp_tls,
        timeout_seconds=settings.smtp_timeout_seconds,
        username=settings.smtp_username or None,  # compose passes unset variables as ""
        password=settings.smtp_password
        if settings.smtp_password and settings.smtp_password.get_secret_value()
        else None,
        tls_context=context,
    )


def make_mailer(settings: Settings, clock: Clock) -> Mailer:
    """SMTP when HONNIN_MAIL=smtp, else the file outbox in HONNIN_MAIL_DIR (DATA_DIR/mail)."""
    if settings.mail == "smtp":
        return SmtpMailer(smtp_config(settings), sender(settings), clock)
    return FileOutbox(settings.mail_folder, sender(settings), clock)
