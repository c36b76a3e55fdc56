"""BusMessage ⇄ AMQP message, and the bookkeeping headers that travel with retries and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode, HeadersType

from orchestrator.ports import BusMessage, DeadLetter, Delivery

ROUTING_KEY = "x-honnin-routing-key"  # the publisher's key; retries arrive through the default exchange
ATTEMPT = "x-honnin-attempt"  # the attempt a copy starts at: 1 + delayed redeliveries so far
REASON = "x-honnin-reason"
QUEUE = "x-honnin-queue"
FIRST_SEEN = "x-honnin-first-seen"  # when a consumer first saw the message (epoch seconds)
DELIVERY_COUNT = "x-delivery-count"  # quorum queues: how often the broker redelivered this copy
_BOOKKEEPING = ("x-honnin-", "x-death", "x-first-death-", "x-last-death-", DELIVERY_COUNT)


def to_amqp(
    message: BusMessage, extra: Mapping[str, str | int] | None = None, expiration: float | None = None
) -> aio_pika.Message:
    """Persistent, with the message id and the original routing key, so a copy loses nothing."""
    headers: HeadersType = {**message.headers, ROUTING_KEY: message.routing_key, **(extra or {})}
    return aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        delivery_mode=DeliveryMode.PERSISTENT,
        expiration=None if expiration is None else timedelta(seconds=expiration),
    )


def to_delivery(incoming: AbstractIncomingMessage, queue: str) -> Delivery:
    """The handler sees the message as published, which attempt this is and since when it is tried."""
    raw = incoming.headers or {}
    return Delivery(bus_message(incoming), queue, attempt_of(raw), first_seen_of(raw))


def first_seen_of(raw: Mapping[str, object]) -> datetime | None:
    """The first-seen time a retry copy carries (None on a first delivery, or a header gone bad)."""
    try:
        seconds = float(_text(raw.get(FIRST_SEEN)))
    except ValueError:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def bus_message(incoming: AbstractIncomingMessage) -> BusMessage:
    raw = incoming.headers or {}
    routing_key = _text(raw.get(ROUTING_KEY)) or incoming.routing_key or ""
    headers = {k: _text(v) for k, v in raw.items() if not k.startswith(_BOOKKEEPING)}
    return BusMessage(routing_key, incoming.body, incoming.message_id or "", headers)


def attempt_of(raw: Mapping[str, object]) -> int:
    """Delayed redeliveries (our header) plus the broker's own redeliveries of this copy."""
    return _int(raw.get(ATTEMPT), 1) + _int(raw.get(DELIVERY_COUNT), 0)


def dead_letter(incoming: AbstractIncomingMessage, queue: str) -> DeadLetter:
    """A dead letter with our reason, or the broker's when its delivery limit struck first."""
    raw = incoming.headers or {}
    reason = _text(raw.get(REASON)) or f"broker: {_text(raw.get('x-first-death-reason')) or 'unknown'}"
    return DeadLetter(queue, bus_message(incoming), reason, attempt_of(raw), first_seen_at=first_seen_of(raw))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _int(value: object, default: int) -> int:
    try:
        return int(_text(value)) if value is not None else default
    except ValueError:
        return default
