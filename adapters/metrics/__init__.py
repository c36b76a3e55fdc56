"""Metrics: Prometheus (prometheus_client), and a recording fake beside it."""
