"""Outbound mail behind the Mailer port: SMTP (aiosmtplib), the embedded file outbox, and a fake."""

from __future__ import annotations

from adapters.mail.fake import RecordingMailer
from adapters.mail.message import Sender, to_mime
from adapters.mail.outbox import FileOutbox
from adapters.mail.smtp import SmtpConfig, SmtpMailer, classify

__all__ = ["FileOutbox", "RecordingMailer", "Sender", "SmtpConfig", "SmtpMailer", "classify", "to_mime"]
