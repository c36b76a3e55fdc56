"""The MongoDB outbox claim's order rules, without a server (none runs here; the store contract
covers the rest whenever HONNIN_MONGODB_URL names one): two relays claiming at the same moment
split no registration between them, and a registration's rows keep their commit order when the
committing workers' clocks disagree.

The collection below answers the handful of queries the claim sends (equality, $in, $nin, $ne,
$lt, $gte, $or; sort; update) and yields to the loop on every call, as a driver's round trip does,
so two claims interleave the way they would against a server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from bson import Binary

from adapters.store.codec import Sealer
from adapters.store.mongodb import MongoStore, in_commit_order

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
Doc = dict[str, Any]


def _matches(doc: Doc, query: Doc) -> bool:
    for key, wanted in query.items():
        if key == "$or":
            if not any(_matches(doc, alternative) for alternative in wanted):
                return False
            continue
        value = doc.get(key)
        if not isinstance(wanted, dict):
            if value != wanted:
                return False
            continue
        for op, arg in wanted.items():
            if (
                (op == "$in" and value not in arg)
                or (op == "$nin" and value in arg)
                or (op == "$ne" and value == arg)
                or (op == "$lt" and (value is None or not value < arg))
                or (op == "$gte" and (value is None or not value >= arg))
            ):
                return False
    return True


def _sorted(docs: list[Doc], order: list[tuple[str, int]]) -> list[Doc]:
    return sorted(docs, key=lambda d: tuple(d[field] for field, _ in order))


class _Cursor:
    def __init__(self, docs: list[Doc]) -> None:
        self._docs = docs

    def sort(self, order: list[tuple[str, int]]) -> _Cursor:
        self._docs = _sorted(self._docs, order)
        return self

    def limit(self, n: int) -> _Cursor:
        self._docs = self._docs[:n]
        return self

    async def to_list(self) -> list[Doc]:
        await asyncio.sleep(0)
        return [dict(d) for d in self._docs]


class Outbox:
    def __init__(self) -> None:
        self.docs: list[Doc] = []

    async def distinct(self, field: str, query: Doc) -> list[Any]:
        await asyncio.sleep(0)
        return list(dict.fromkeys(d[field] for d in self.docs if _matches(d, query)))

    def find(self, query: Doc, *_: object) -> _Cursor:
        return _Cursor([d for d in self.docs if _matches(d, query)])

    async def find_one(self, query: Doc, _projection: Doc, sort: list[tuple[str, int]]) -> Doc | None:
        await asyncio.sleep(0)
        found = _sorted([d for d in self.docs if _matches(d, query)], sort)
        return dict(found[0]) if found else None

    async def find_one_and_update(
        self, query: Doc, update: Doc, sort: list[tuple[str, int]], return_document: object
    ) -> Doc | None:
        await asyncio.sleep(0)
        found = _sorted([d for d in self.docs if _matches(d, query)], sort)
        if not found:
            return None
        found[0].update(update["$set"])
        return dict(found[0])

    async def update_many(self, query: Doc, update: Doc) -> None:
        await asyncio.sleep(0)
        for doc in self.docs:
            if _matches(doc, query):
                doc.update(update["$set"])


SEALER = Sealer(bytes(range(32)))


def row(message_id: str, registration_id: str, idx: int, created_at: datetime) -> Doc:
    body = json.dumps({"event_id": message_id}).encode()
    return {
        "_id": message_id,
        "routing_key": "verification.requested",
        "registration_id": registration_id,
        "body": Binary(SEALER.seal(body, f"outbox:{message_id}")),
        "created_at": created_at,
        "idx": idx,
        "sent_at": None,
        "claimed_by": None,
        "claimed_until": None,
    }


def store(outbox: Outbox) -> MongoStore:
    opened = object.__new__(MongoStore)
    opened._db = SimpleNamespace(outbox=outbox)  # type: ignore[attr-defined]
    opened._sealer = SEALER  # type: ignore[attr-defined]
    return opened


async def test_two_relays_claiming_at_once_split_no_registration() -> None:
    outbox = Outbox()
    outbox.docs = [row(f"m{i}", "reg-1", i, NOW + timedelta(milliseconds=i)) for i in range(3)]
    outbox.docs.append(row("o1", "reg-2", 0, NOW + timedelta(milliseconds=5)))
    first, second = await asyncio.gather(
        store(outbox).claim_outbox("wb", NOW, 30, 10), store(outbox).claim_outbox("wc", NOW, 30, 10)
    )
    claims = [[m.message_id for m in first], [m.message_id for m in second]]
    reg_1 = [[m for m in claim if m.startswith("m")] for claim in claims]
    assert [] in reg_1, f"one registration, two relays: {claims}"
    returned = reg_1[0] or reg_1[1]
    assert returned == ["m0", "m1", "m2"][: len(returned)], "a prefix, in commit order"
    assert sum(claim.count("o1") for claim in claims) == 1
    left = [d for d in outbox.docs if d["_id"].startswith("m") and d["_id"] not in returned]
    assert all(d["claimed_by"] is None for d in left), "what a claim took behind a gap is given back"
    for doc in outbox.docs:
        if doc["_id"] in claims[0] + claims[1]:
            doc["sent_at"] = NOW  # as mark_sent does once the broker confirmed them
    rest = await store(outbox).claim_outbox("wd", NOW, 30, 10)
    assert [m.message_id for m in rest if m.message_id.startswith("m")] == ["m0", "m1", "m2"][len(returned) :]


async def test_a_registrations_rows_keep_commit_order_when_the_clocks_disagree() -> None:
    outbox = Outbox()
    outbox.docs = [
        row("m1", "reg-1", 0, NOW + timedelta(milliseconds=3)),  # worker a's clock
        row("m2", "reg-1", 1, NOW),  # committed after m1 on worker b, whose clock is 3 ms behind
        row("o1", "reg-2", 0, NOW + timedelta(milliseconds=1)),
    ]
    claimed = await store(outbox).claim_outbox("w", NOW + timedelta(seconds=1), 30, 1)
    assert [m.message_id for m in claimed] == ["m1", "m2"], "m2 looks oldest: m1 comes with it, first"
    claimed = await store(outbox).claim_outbox("w2", NOW + timedelta(seconds=1), 30, 10)
    assert [m.message_id for m in claimed] == ["o1"]


async def test_rows_a_skewed_clock_made_look_older_do_not_stall_a_full_claim() -> None:
    """Each registration's second row looks older than its first, and there are as many such
    registrations as a claim holds: every claim must still make progress, the others' rows too."""
    outbox = Outbox()
    for r in range(3):
        outbox.docs.append(row(f"r{r}-m1", f"reg-{r}", 0, NOW + timedelta(seconds=2, milliseconds=r)))
        outbox.docs.append(row(f"r{r}-m2", f"reg-{r}", 1, NOW + timedelta(milliseconds=r)))
    outbox.docs.append(row("x1", "reg-x", 0, NOW + timedelta(seconds=1)))
    sent: list[str] = []
    for _ in range(4):
        claimed = [
            m.message_id for m in await store(outbox).claim_outbox("w", NOW + timedelta(seconds=5), 30, 3)
        ]
        sent += claimed
        for doc in outbox.docs:
            if doc["_id"] in claimed:
                doc["sent_at"] = NOW + timedelta(seconds=5)
    assert sorted(sent) == sorted(d["_id"] for d in outbox.docs), "everything went, in a few claims"
    for r in range(3):
        assert sent.index(f"r{r}-m1") < sent.index(f"r{r}-m2")


def test_commit_order_within_a_registration_oldest_first_across() -> None:
    docs = [
        row("a2", "reg-a", 1, NOW),
        row("b1", "reg-b", 0, NOW + timedelta(milliseconds=1)),
        row("a1", "reg-a", 0, NOW + timedelta(milliseconds=2)),
        row("b2", "reg-b", 1, NOW + timedelta(milliseconds=3)),
    ]
    assert [d["_id"] for d in in_commit_order(docs)] == ["a1", "b1", "a2", "b2"]
