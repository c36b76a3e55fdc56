"""Build valid events and registrations for tests; one place knows what a sane payload is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.model import Profile
from schemas.events import AnyEvent, parse_event

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NAME = "公的　花子"
ADDRESS = "東京都千代田区千代田１－１"

APPLICANT = {
    "login_id": "tarou12345",
    "user_type": "勤労者",
    "user_category": "個人",
    "name": NAME,
    "name_kana": "コウテキ　ハナコ",
    "postal_code": "100-0001",
    "address": ADDRESS,
    "phone": "03-1234-5678",
    "email": "hanako@example.jp",
}
CARD = {"name": NAME, "address": ADDRESS, "birth_date": "1990-04-01", "sex": 2}
CERTIFICATE_FACTS = {"name": NAME, "sex": "2", "birth_date": "1990-04-01", "address": ADDRESS}
TERMS = {"version": "2026-10", "sha256": "e" * 64}
SOURCES = {
    "registration.started": "web",
    "card.info_read": "app",
    "registration.confirmed": "web",
    "card.signature_submitted": "app",
    "verification.completed": "verifier",
    "registration.complete_requested": "web",
    "registration.cancel_requested": "web",
    "verification.replay_requested": "operator",
    "xid.certificate_read": "app",
    "xid.consent_given": "app",
    "xid.signature_submitted": "app",
    "xid.activation_requested": "app",
    "xid.email_entered": "app",
    "xid.email_confirmed": "app",
    "xid.use_started": "app",
    "email.delivery_completed": "mailer",
}
PAYLOADS: dict[str, dict[str, Any]] = {
    "registration.started": {"facility_id": "facility-1", "profile": "facility", "applicant": APPLICANT},
    "card.info_read": {"card": CARD},
    "registration.confirmed": {"notice_acknowledged": True},
    "card.signature_submitted": {
        "certificate": "MIIB",
        "signature": "c2ln",
        "algorithm": "rsa-pkcs1v15-sha256",
    },
    "verification.completed": {"attempt": 1, "outcome": "pass", "certificate_fingerprint": "a" * 64},
    "registration.complete_requested": {},
    "registration.cancel_requested": {},
    "verification.replay_requested": {"reason": "the platform is back"},
    "xid.certificate_read": {"facts": CERTIFICATE_FACTS, "certificate_fingerprint": "b" * 64},
    "xid.consent_given": {"consent": True},
    "xid.signature_submitted": {
        "certificate": "MIIB",
        "signature": "c2ln",
        "algorithm": "rsa-pkcs1v15-sha256",
    },
    "xid.activation_requested": {
        "device_key": {"public_key": "MFkw", "algorithm": "ec-p256", "sha256": "c" * 64}
    },
    "xid.email_entered": {
        "email": "hanako@example.jp",
        "link_id": "link-0000000000000001",
        "link_sha256": "d" * 64,
    },
    "xid.email_confirmed": {"link_sha256": "d" * 64},
    "xid.use_started": {},
    "email.delivery_completed": {"attempt": 1, "outcome": "sent"},
}
FLOW = [
    "registration.started",
    "card.info_read",
    "registration.confirmed",
    "card.signature_submitted",
    "verification.completed",
    "registration.complete_requested",
]


def raw(kind: str, registration_id: str = "reg-00000001", **changes: Any) -> dict[str, Any]:
    """A wire-shaped envelope; `payload=` replaces the payload, other keys the envelope's."""
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "registration_id": registration_id,
        "occurred_at": NOW.isoformat(),
        "source": SOURCES[kind],
        "schema_version": 1,
        "payload": PAYLOADS[kind],
    }
    envelope.update(changes)
    return envelope


def event(kind: str, registration_id: str = "reg-00000001", **changes: Any) -> AnyEvent:
    return parse_event(raw(kind, registration_id, **changes))


def flow(registration_id: str = "reg-00000001", upto: int = len(FLOW)) -> list[AnyEvent]:
    return [event(kind, registration_id) for kind in FLOW[:upto]]


def profiles(timeout: timedelta = timedelta(hours=1), retry_limit: int = 3) -> dict[str, Profile]:
    return {
        "facility": Profile(
            name="facility",
            steps=frozenset({"card_info_read", "confirm", "signature", "complete"}),
            activation_timeout=timeout,
            verification_retry_limit=retry_limit,
            verification_retry_base=timedelta(seconds=2),
            verification_retry_cap=timedelta(seconds=60),
        )
    }
