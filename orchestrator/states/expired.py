"""Expired: a final state. Every event is refused and recorded; nothing changes any more."""

from __future__ import annotations

from orchestrator.model import State
from orchestrator.states.rules import Rule

STATE = State.EXPIRED
RULES: list[Rule] = []
