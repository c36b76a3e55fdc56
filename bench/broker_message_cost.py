"""What one message costs RabbitMQ, by how it is sent: the floor's shape against Honnin's.

The floor moves small bodies through the default exchange with many confirms in flight; Honnin
publishes through a topic exchange with `mandatory`, a routing-key header, a 1.5 kB envelope, and
a registration's next message only once its previous step is done (fewer in flight). Each variant
here is the floor's loop (publish with confirms, consume and ack, one quorum queue, one
connection) changed in one respect, so the broker's CPU per message can be read off each change:

    .venv/bin/python bench/broker_message_cost.py            # 8,000 messages per variant, twice
    .venv/bin/python bench/broker_message_cost.py --n 2000

Prints, per variant, messages/s and the CPU milliseconds per message of the broker (beam.smp,
/proc) and of this client.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aio_pika

from bench.e2e_rabbitmq import URL, CpuMeter, consume_acking


@dataclass(frozen=True)
class Variant:
    name: str
    topic: bool = False  # a topic exchange with two wildcard bindings, publishes `mandatory`
    envelope: bool = False  # 1.5 kB body, content type and Honnin's two headers
    window: int = 64  # confirms in flight


VARIANTS = (
    Variant("floor: default exchange, 600 B, 64 in flight"),
    Variant("+ topic exchange, mandatory", topic=True),
    Variant("+ 1.5 kB envelope and headers", topic=True, envelope=True),
    Variant("+ 8 in flight", topic=True, envelope=True, window=8),
    Variant("+ 1 in flight", topic=True, envelope=True, window=1),
)


async def measure(variant: Variant, n: int) -> tuple[float, float, float]:
    """(messages/s, broker CPU ms per message, client CPU ms per message)."""
    connection = await aio_pika.connect_robust(URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=32)
        name = f"bench.cost.{uuid.uuid4().hex[:8]}"
        queue = await channel.declare_queue(name, arguments={"x-queue-type": "quorum"}, durable=True)
        exchange: aio_pika.abc.AbstractExchange = channel.default_exchange
        key = queue.name
        if variant.topic:
            exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
            await queue.bind(exchange, "card.#")
            await queue.bind(exchange, "registration.#")
            key = "card.info_read"
        body = b"x" * (1500 if variant.envelope else 600)
        headers = {"x-honnin-routing-key": key, "x-honnin-attempt": 1} if variant.envelope else None
        done = await consume_acking(queue, n)
        meter = CpuMeter([])
        started = time.perf_counter()
        for first in range(0, n, variant.window):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            body,
                            message_id=str(i),
                            headers=headers,
                            content_type="application/json" if variant.envelope else None,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=key,
                        mandatory=variant.topic,
                    )
                    for i in range(first, min(first + variant.window, n))
                )
            )
        await done.wait()
        elapsed = time.perf_counter() - started
        spent = meter.spent()
        await queue.delete(if_unused=False, if_empty=False)
        if variant.topic:
            await exchange.delete()  # type: ignore[attr-defined]
        return n / elapsed, spent["broker"] / n * 1000, spent["driver"] / n * 1000
    finally:
        await connection.close()


async def main(n: int, rounds: int) -> None:
    for round_ in range(1, rounds + 1):
        for variant in VARIANTS:
            rate, broker, client = await measure(variant, n)
            print(
                f"round {round_}: {variant.name:<48} {rate:7.0f} messages/s;"
                f" CPU ms per message: broker {broker:.3f}, client {client:.3f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.rounds))
