"""Wire formats of Honnin: the versioned envelope, every event, and their JSON Schemas."""

from __future__ import annotations

from schemas.events import (
    ALL_EVENTS,
    INBOUND,
    INBOUND_TYPES,
    OUTBOUND,
    OUTBOUND_TYPES,
    AnyEvent,
    Envelope,
    EnvelopeError,
    derived_event_id,
    event_type,
    new_event_id,
    parse_event,
)
from schemas.privacy import INDIVIDUAL_NUMBER_REFUSED, contains_individual_number

__all__ = [
    "ALL_EVENTS",
    "INBOUND",
    "INBOUND_TYPES",
    "INDIVIDUAL_NUMBER_REFUSED",
    "OUTBOUND",
    "OUTBOUND_TYPES",
    "AnyEvent",
    "Envelope",
    "EnvelopeError",
    "contains_individual_number",
    "derived_event_id",
    "event_type",
    "new_event_id",
    "parse_event",
]
