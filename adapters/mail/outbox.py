"""The embedded default: one .eml file per message in a folder, for a laptop or a mail pickup job."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

import structlog

from adapters.mail.message import Sender, to_mime
from orchestrator.errors import MailTemporaryError
from orchestrator.ports import Clock, MailMessage
from schemas.privacy import mask_email

log = structlog.get_logger("honnin.mail")


class FileOutbox:
    """Writes `<message_id>.eml` (mode 0600; the name holds no personal fact) by temp file and
    rename, so a reader never sees half a mail; sending the same id again replaces the file."""

    def __init__(self, directory: Path, sender: Sender, clock: Clock) -> None:
        self.directory = directory
        self.sender = sender
        self.clock = clock

    def path_of(self, message_id: str) -> Path:
        return self.directory / f"{message_id}.eml"

    async def send(self, message: MailMessage) -> None:
        data = to_mime(message, self.sender, self.clock.now()).as_bytes()
        try:
            await asyncio.to_thread(self._write, message.message_id, data)
        except OSError as exc:
            log.warning("mail.failed", message_id=message.message_id, code="mail_outbox_unwritable")
            raise MailTemporaryError(
                f"the mail folder cannot be written ({type(exc).__name__}): check HONNIN_MAIL_DIR",
                code="mail_outbox_unwritable",
            ) from exc
        log.info("mail.written", message_id=message.message_id, recipient=mask_email(message.to))

    def _write(self, message_id: str, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{message_id}.", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path_of(message_id))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        _sync_directory(self.directory)

    async def close(self) -> None:
        return None


def _sync_directory(directory: Path) -> None:
    """The rename survives a crash only once the folder itself is on disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
