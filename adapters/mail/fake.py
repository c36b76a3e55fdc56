"""A mailer for other tests: it records what it was given and fails when told to."""

from __future__ import annotations

from orchestrator.errors import MailPermanentError, MailTemporaryError
from orchestrator.ports import MailMessage


class RecordingMailer:
    """`sent` holds each message taken; `attempts` every message offered, failed or not.

    Errors put in `failures` are raised, one per call and in order, before any message is taken:
    a MailTemporaryError then success plays a server that answered 451 once.
    """

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []
        self.attempts: list[MailMessage] = []
        self.failures: list[MailTemporaryError | MailPermanentError] = []
        self.closed = False

    async def send(self, message: MailMessage) -> None:
        self.attempts.append(message)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)

    async def close(self) -> None:
        self.closed = True
