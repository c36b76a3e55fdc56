"""The Metrics port in Prometheus's terms, with prometheus_client: per process, or summed.

With a metrics folder (HONNIN_METRICS_DIR) every worker process on the host writes its counters to
files there (prometheus_client's multiprocess mode) and any worker's /metrics serves the sum over all
of them, the ones that have stopped included; without one, each worker serves its own counts.
What is standing (the outbox, parked, dead letters, the quarantine) is read from the store at scrape
time and is the same on every worker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from orchestrator.errors import ConfigurationError
from orchestrator.observations import Standing

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_folder: Path | None = None


def _multiprocess(folder: Path, worker: str) -> None:
    """prometheus_client finds its folder in the environment only, so this is the one place that
    writes it; each process writes files named after its worker id and pid (two workers never
    share one, even with the same HONNIN_WORKER_ID in two containers on one volume)."""
    global _folder
    folder = folder.resolve()
    if _folder is not None and _folder != folder:
        raise ConfigurationError("one process writes its metrics to one folder")
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    tag = re.sub(r"[^A-Za-z0-9.-]", "-", worker)[:64]
    values.ValueClass = values.MultiProcessValue(lambda: f"{tag}-{os.getpid()}")  # type: ignore[no-untyped-call]
    _folder = folder


class PrometheusMetrics:
    """Counters and histograms of one worker process; `exposition` is the /metrics body."""

    def __init__(self, *, folder: Path | None = None, worker: str = "") -> None:
        if folder is not None:
            _multiprocess(folder, worker)
        self._folder = folder
        self._own = CollectorRegistry() if folder is None else None
        r = self._own
        self._events = Counter(
            "honnin_events", "Inbound events by type and outcome", ["type", "outcome"], registry=r
        )
        self._transitions = Counter(
            "honnin_transitions", "State changes", ["from_state", "to_state", "profile"], registry=r
        )
        self._verifications = Counter(
            "honnin_verifications",
            "Verification decisions by outcome and code",
            ["outcome", "code"],
            registry=r,
        )
        self._retries = Counter(
            "honnin_verification_retries", "Verification retries by code", ["code"], registry=r
        )
        self._handler = Histogram(
            "honnin_handler_seconds",
            "Time a consumer's handler took for one delivery",
            ["queue", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._redelivered = Counter(
            "honnin_redeliveries", "Deliveries after the first, by queue", ["queue"], registry=r
        )
        self._webhooks = Counter(
            "honnin_webhook_deliveries", "Webhook attempts by outcome", ["outcome"], registry=r
        )

    def event_handled(self, event_type: str, outcome: str) -> None:
        self._events.labels(event_type, outcome).inc()

    def transition(self, from_state: str, to_state: str, profile: str) -> None:
        self._transitions.labels(from_state, to_state, profile).inc()

    def verification(self, outcome: str, code: str) -> None:
        self._verifications.labels(outcome, code).inc()

    def verification_retry(self, code: str) -> None:
        self._retries.labels(code).inc()

    def handler_seconds(self, queue: str, outcome: str, seconds: float) -> None:
        self._handler.labels(queue, outcome).observe(seconds)

    def redelivered(self, queue: str) -> None:
        self._redelivered.labels(queue).inc()

    def webhook_delivery(self, outcome: str) -> None:
        self._webhooks.labels(outcome).inc()

    def exposition(self, standing: Standing | None) -> bytes:
        """The text format: counters (this process's, or every process's in the folder) and the
        store's standing counts (`honnin_store_up` 0 when the store could not be read)."""
        registry = CollectorRegistry()
        if self._folder is not None:
            MultiProcessCollector(registry, path=str(self._folder))  # type: ignore[no-untyped-call]
        else:
            assert self._own is not None
            registry.register(_Forward(self._own))
        registry.register(_Standing(standing))
        return generate_latest(registry)


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class _Standing(Collector):
    def __init__(self, standing: Standing | None) -> None:
        self._standing = standing

    def collect(self) -> Iterator[Metric]:
        s = self._standing
        yield GaugeMetricFamily(
            "honnin_store_up", "1 when the store answered this scrape", value=int(bool(s))
        )
        if s is None:
            return
        yield GaugeMetricFamily(
            "honnin_outbox_backlog", "Outbox messages not yet published", s.outbox_backlog
        )
        yield GaugeMetricFamily(
            "honnin_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox message",
            s.outbox_oldest_age,
        )
        yield GaugeMetricFamily("honnin_dead_letters", "Dead letters kept in the store", s.dead_letters)
        yield GaugeMetricFamily("honnin_parked", "Registrations whose verification is parked", s.parked)
        yield _labelled("honnin_quarantined", "Rows in the quarantine by kind", "kind", s.quarantined)
        yield _labelled("honnin_registrations", "Registrations by state", "state", s.by_state)
        yield _labelled(
            "honnin_registrations_verification",
            "Registrations by verification status",
            "status",
            s.by_verification,
        )


def _labelled(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family
