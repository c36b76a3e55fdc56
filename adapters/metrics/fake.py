"""A Metrics port that records what it was told in plain lists, for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RecordingMetrics:
    events: list[tuple[str, str]] = field(default_factory=list)  # (type, outcome)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, profile)
    verifications: list[tuple[str, str]] = field(default_factory=list)  # (outcome, code)
    retries: list[str] = field(default_factory=list)  # codes
    handled: list[tuple[str, str, float]] = field(default_factory=list)  # (queue, outcome, seconds)
    redeliveries: list[str] = field(default_factory=list)  # queues
    webhooks: list[str] = field(default_factory=list)  # outcomes

    def event_handled(self, event_type: str, outcome: str) -> None:
        self.events.append((event_type, outcome))

    def transition(self, from_state: str, to_state: str, profile: str) -> None:
        self.transitions.append((from_state, to_state, profile))

    def verification(self, outcome: str, code: str) -> None:
        self.verifications.append((outcome, code))

    def verification_retry(self, code: str) -> None:
        self.retries.append(code)

    def handler_seconds(self, queue: str, outcome: str, seconds: float) -> None:
        self.handled.append((queue, outcome, seconds))

    def redelivered(self, queue: str) -> None:
        self.redeliveries.append(queue)

    def webhook_delivery(self, outcome: str) -> None:
        self.webhooks.append(outcome)
