"""One module per state: what it accepts, its guards, what it emits. `TABLE` gathers them.

A state shared by several profiles holds every profile's rules; the registration's profile path
(`Profile.path`) says which of them it accepts. `xid_steps` adds the xID profile's steps to the
states it shares with the facility flow.
"""

from __future__ import annotations

from orchestrator.model import TERMINAL, State
from orchestrator.states import (
    activated,
    cancelled,
    card_read,
    common,
    confirmed,
    email_confirmed,
    email_pending,
    expired,
    id_enabled,
    info_entered,
    new,
    signature_verified,
    xid_steps,
)
from orchestrator.states.rules import Rule

_MODULES = (
    new,
    info_entered,
    card_read,
    confirmed,
    signature_verified,
    id_enabled,
    email_pending,
    email_confirmed,
    activated,
    expired,
    cancelled,
)


def _rules(state: State, own: list[Rule]) -> list[Rule]:
    """Open persisted states share cancellation and deadlines; order decides among `when`s."""
    if state is State.NEW or state in TERMINAL:
        return list(own)
    return [*common.FIRST, *own, *common.LAST]


SHARED = (*common.FIRST, *common.LAST)
"""Rules every open state has; they say nothing about where on the path an event belongs."""

TABLE: dict[State, list[Rule]] = {
    m.STATE: _rules(m.STATE, [*m.RULES, *xid_steps.RULES.get(m.STATE, [])]) for m in _MODULES
}

__all__ = ["SHARED", "TABLE", "Rule", "new"]
