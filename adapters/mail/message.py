"""A rendered MailMessage as the MIME a mail client reads: multipart/alternative, UTF-8, and
RFC 2047 headers, so Japanese subjects and display names survive 7-bit transports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy, utils
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage

from orchestrator.errors import MailPermanentError
from orchestrator.ports import MailMessage


@dataclass(frozen=True)
class Sender:
    """The From of every mail Honnin sends; its domain also closes each Message-ID."""

    address: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def transport_address(address: str) -> str:
    """The recipient as SMTP carries it without SMTPUTF8: an ASCII local part, an IDNA domain."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise MailPermanentError(
            "the address has non-ASCII characters before the @, which this mailer cannot carry",
            code="mail_address_unsupported",
        )
    try:
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise MailPermanentError(
            "the address's domain is no valid internationalised name", code="mail_address_unsupported"
        ) from exc
    return f"{local}@{ascii_domain}"


def to_mime(message: MailMessage, sender: Sender, now: datetime) -> EmailMessage:
    """The mail as bytes will carry it (policy SMTP: CRLF line ends)."""
    mime = EmailMessage(policy=policy.SMTP)
    try:
        mime["From"] = Address(display_name=sender.name, addr_spec=sender.address)
        mime["To"] = Address(addr_spec=transport_address(message.to))
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise MailPermanentError(
            "the address cannot be written in a header", code="mail_address_unsupported"
        ) from exc
    mime["Subject"] = message.subject
    mime["Date"] = utils.format_datetime(now)
    mime["Message-ID"] = f"<{message.message_id}@{sender.domain}>"
    mime["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to an automatic mail
    # base64 bodies: 7-bit relays pass them, and no line of Japanese text is ever too long
    mime.set_content(message.text, subtype="plain", charset="utf-8", cte="base64")
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html", charset="utf-8", cte="base64")
    return mime
