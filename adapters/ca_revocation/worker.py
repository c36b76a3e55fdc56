"""The verifier worker: answers `verification.requested` with `verification.completed`."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import structlog

from adapters.ca_revocation.pipeline import Pipeline, Subject
from orchestrator.errors import PoisonMessageError
from orchestrator.ports import Bus, BusMessage, Clock, Delivery, Store
from schemas.events import (
    EnvelopeError,
    VerificationCompleted,
    VerificationRequested,
    derived_event_id,
    parse_event,
)
from schemas.payloads import VerificationCompletedPayload

log = structlog.get_logger("honnin.verifier")


class Verifier:
    """Reads the submitted signature from the store, runs the pipeline, publishes the verdict.

    The verdict's event id derives from the request's, so a redelivered request re-publishes
    the same verdict and the orchestrator applies it once.
    """

    def __init__(
        self,
        store: Store,
        bus: Bus,
        pipeline: Pipeline,
        clock: Clock,
        *,
        by_profile: Mapping[str, Pipeline] | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._pipeline = pipeline
        self._clock = clock
        self._by_profile = dict(by_profile or {})  # a profile's own checks, e.g. xID: no identity match

    async def on_delivery(self, delivery: Delivery) -> None:
        try:
            request = parse_event(delivery.message.body)
        except EnvelopeError as exc:
            raise PoisonMessageError(exc.message) from None
        if not isinstance(request, VerificationRequested):
            raise PoisonMessageError(f"{request.type} is not a verification request")
        await self.verify(request)

    async def verify(self, request: VerificationRequested) -> VerificationCompleted | None:
        bound = log.bind(registration_id=request.registration_id, attempt=request.payload.attempt)
        stored = await self._store.load(request.registration_id)
        registration = stored.registration if stored else None
        signature = registration.signature if registration else None
        verification = registration.verification if registration else None
        if (
            registration is None
            or signature is None
            or verification is None
            or verification.status != "pending"
            or signature.attempt != request.payload.attempt
        ):
            bound.info("verification.stale_request")
            return None
        subject = Subject(
            certificate=base64.b64decode(signature.certificate),
            signature=base64.b64decode(signature.signature),
            algorithm=signature.algorithm,
            challenge=base64.b64decode(signature.challenge),
            card=registration.card,
            at=self._clock.now(),
        )
        pipeline = self._by_profile.get(registration.profile, self._pipeline)
        verdict = await pipeline.verify(subject)
        completed = VerificationCompleted(
            type="verification.completed",
            event_id=derived_event_id(str(request.event_id), "verdict"),
            registration_id=request.registration_id,
            occurred_at=self._clock.now(),
            source="verifier",
            payload=VerificationCompletedPayload(
                attempt=request.payload.attempt,
                outcome=verdict.outcome,
                code=None if verdict.outcome == "pass" else verdict.code,
                message=verdict.reason,
                certificate_fingerprint=verdict.fingerprint,
            ),
        )
        await self._bus.publish(
            BusMessage(completed.type, completed.model_dump_json().encode(), str(completed.event_id))
        )
        return completed
