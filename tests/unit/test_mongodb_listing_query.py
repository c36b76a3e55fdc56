"""The MongoDB listing's filter, built without a server (none runs here): every bound on its field,
the keyset cursor as an $or after (created_at, _id), and nothing kept from one call to the next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.store.mongodb_listing import listing_query
from orchestrator.listing import RegistrationQuery

AT = datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_filters_bounds_and_the_cursor() -> None:
    query = RegistrationQuery(
        state="confirmed",
        verification="parked",
        code="42",
        created_after=AT,
        created_before=AT + timedelta(hours=1),
        updated_before=AT + timedelta(hours=2),
    )
    assert listing_query(query, (AT, "reg-00000009")) == {
        "created_at": {"$type": "date", "$gte": AT, "$lt": AT + timedelta(hours=1)},
        "state": "confirmed",
        "verification": "parked",
        "code": "42",
        "updated_at": {"$lt": AT + timedelta(hours=2)},
        "$or": [{"created_at": {"$gt": AT}}, {"created_at": AT, "_id": {"$gt": "reg-00000009"}}],
    }


def test_one_calls_bounds_never_reach_the_next() -> None:
    listing_query(RegistrationQuery(created_after=AT), None)
    assert listing_query(RegistrationQuery(), None) == {"created_at": {"$type": "date"}}
