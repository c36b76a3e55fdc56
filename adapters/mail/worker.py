"""The mail worker: answers `email.confirmation_requested` with `email.delivery_completed`.

Like the verifier, it reads what it needs from the store (the address never travels in a
message), hands the mail to the configured Mailer and says what happened; the orchestrator keeps
the retry schedule. The answer's id derives from the request's, so a redelivered request that
was sent already is answered with the same event and applied once.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from orchestrator.errors import MailPermanentError, MailTemporaryError, PoisonMessageError
from orchestrator.mails import email_confirmation
from orchestrator.ports import Bus, BusMessage, Clock, Delivery, Mailer, Store
from schemas.events import (
    EmailConfirmationRequested,
    EmailDeliveryCompleted,
    EnvelopeError,
    derived_event_id,
    parse_event,
)
from schemas.payloads_xid import EmailDeliveryCompletedPayload, MailOutcome

log = structlog.get_logger("honnin.mail")

LinkFor = Callable[[str, str], str]  # (registration id, link id) → the link's URL


def message_id_for(registration_id: str, attempt: int) -> str:
    """One Message-ID per link: a retry is the same mail, so the outbox overwrites and readers dedupe."""
    return f"xid-email-confirmation.{registration_id}.{attempt}"


class MailWorker:
    def __init__(
        self, store: Store, bus: Bus, mailer: Mailer, clock: Clock, *, link_for: LinkFor, service: str = "xID"
    ) -> None:
        self._store = store
        self._bus = bus
        self._mailer = mailer
        self._clock = clock
        self._link_for = link_for
        self._service = service

    async def on_delivery(self, delivery: Delivery) -> None:
        try:
            request = parse_event(delivery.message.body)
        except EnvelopeError as exc:
            raise PoisonMessageError(exc.message) from None
        if not isinstance(request, EmailConfirmationRequested):
            raise PoisonMessageError(f"{request.type} is not a mail request")
        await self.send(request)

    async def send(self, request: EmailConfirmationRequested) -> EmailDeliveryCompleted | None:
        attempt = request.payload.attempt
        bound = log.bind(registration_id=request.registration_id, attempt=attempt)
        stored = await self._store.load(request.registration_id)
        xid = stored.registration.xid if stored else None
        email = xid.email if xid else None
        if email is None or email.attempt != attempt or email.delivery != "pending":
            bound.info("mail.stale_request")  # re-entered since, or answered already
            return None
        message = email_confirmation(
            message_id=message_id_for(request.registration_id, attempt),
            to=email.address,
            link=self._link_for(request.registration_id, email.link_id),
            expires_at=email.link_expires_at,
            service=self._service,
        )
        outcome: MailOutcome = "sent"
        code, smtp_code = None, None
        try:
            await self._mailer.send(message)
        except MailTemporaryError as exc:
            outcome, code, smtp_code = "temporary_failure", exc.code, exc.smtp_code
        except MailPermanentError as exc:
            outcome, code, smtp_code = "permanent_failure", exc.code, exc.smtp_code
        bound.info("mail.answered", outcome=outcome, code=code, smtp_code=smtp_code)
        return await self._answer(request, outcome, code, smtp_code)

    async def _answer(
        self, request: EmailConfirmationRequested, outcome: MailOutcome, code: str | None, smtp: int | None
    ) -> EmailDeliveryCompleted:
        now = self._clock.now()
        completed = EmailDeliveryCompleted(
            type="email.delivery_completed",
            event_id=derived_event_id(str(request.event_id), "delivery"),
            registration_id=request.registration_id,
            occurred_at=now,
            source="mailer",
            payload=EmailDeliveryCompletedPayload(
                attempt=request.payload.attempt,
                outcome=outcome,
                code=code,
                smtp_code=smtp,
                sent_at=now if outcome == "sent" else None,
            ),
        )
        await self._bus.publish(
            BusMessage(completed.type, completed.model_dump_json().encode(), str(completed.event_id))
        )
        return completed
