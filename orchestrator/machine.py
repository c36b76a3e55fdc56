"""The registration state machine: one `transitions` machine serves every registration.

Each event gets a model in the registration's stored state, and the machine's event for it is
triggered on that model (`Machine.events[name].trigger(model)`, queued); the guards and effects are
the pure functions of `orchestrator.states`. The model is not registered with `add_model`: that
binds every trigger and every state's `is_` method to the object (17 triggers, 11 states), which
was 58 % of the machine's time per event and none of its decisions; nothing is left to remove. Which
events a state takes is the registration's profile's path (`Profile.path`): the machine holds
every profile's rules, the path picks.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

from transitions import EventData, Machine, MachineError

from orchestrator.model import (
    FACILITY_PATH,
    Applied,
    Context,
    Outcome,
    ProfilePath,
    Registration,
    Rejection,
    State,
)
from orchestrator.states import TABLE, Rule, new
from orchestrator.states.rules import not_accepted
from schemas.events import Envelope


class _Subject:
    """What the machine drives for one event: the stored state in, a decision out."""

    def __init__(self, before: Registration | None, event: Envelope, ctx: Context) -> None:
        self.before = before
        self.event = event
        self.ctx = ctx
        self.state: str = ""
        self.applied: Applied | None = None
        self.rejection: Rejection | None = None


def _trigger_name(event_type: str) -> str:
    return event_type.replace(".", "__")


class RegistrationMachine:
    """Applies one event to one registration and says what happened; no I/O."""

    def __init__(self) -> None:
        self._machine = Machine(
            model=None,
            states=[s.value for s in State],
            initial=State.NEW.value,
            send_event=True,
            auto_transitions=False,
            queued="model",  # type: ignore[arg-type]  # supported since 0.9.1, stubs say bool
        )
        for state, rules in TABLE.items():
            for rule in rules:
                self._machine.add_transition(
                    trigger=_trigger_name(rule.trigger),
                    source=state.value,
                    dest=rule.dest.value if rule.dest else None,
                    conditions=[self._condition(rule)],
                    after=[self._effect(rule)],
                )

    @staticmethod
    def _condition(rule: Rule) -> Any:
        def check(data: EventData) -> bool:
            subject = cast(_Subject, data.model)
            if subject.rejection is not None or subject.applied is not None:
                return False
            args = (subject.before, subject.event, subject.ctx)
            if rule.when is not None and not rule.when(*args):
                return False
            if rule.guard is not None:
                subject.rejection = rule.guard(*args)
            return subject.rejection is None

        return check

    @staticmethod
    def _effect(rule: Rule) -> Any:
        def apply(data: EventData) -> None:
            subject = cast(_Subject, data.model)
            state = State(subject.state)
            subject.applied = rule.effect(subject.before, subject.event, subject.ctx, state)

        return apply

    def apply(self, before: Registration | None, event: Envelope, ctx: Context) -> Outcome:
        state = before.state if before else State.NEW
        if before is not None and before.profile not in ctx.profiles:
            rejection = Rejection("unknown_profile", f"profile {before.profile!r} is not configured")
            return Outcome(event, before, rejection=rejection)
        path = ctx.profile(before).path if before else FACILITY_PATH
        subject = _Subject(before, event, ctx)
        if before is None or event.type in path.accepted(state):  # the profile's path decides
            self._trigger(subject, state, event.type)
        if subject.applied is not None:
            return Outcome(event, before, applied=subject.applied)
        rejection = subject.rejection or _unaccepted(state, before, event, path)
        return Outcome(event, before, rejection=rejection)

    def _trigger(self, subject: _Subject, state: State, event_type: str) -> None:
        event = self._machine.events.get(_trigger_name(event_type))
        if event is None:
            return  # no state takes this event: refused below
        subject.state = state.value
        with contextlib.suppress(MachineError):  # no rule for this event in this state: refused below
            event.trigger(subject)


def _unaccepted(state: State, before: Registration | None, event: Envelope, path: ProfilePath) -> Rejection:
    """Early events wait, late ones are refused: competing consumers may deliver a registration's
    steps out of order, and a step whose state is still ahead on the registration's own path
    must not be spent on a refusal."""
    if state is State.NEW:
        return new.unaccepted(before, event)
    if path.waits(state, event.type):
        return Rejection(
            code="not_yet_accepted",
            message=f"{event.type} waits: the registration is still {state.value}",
            retryable=True,
        )
    return not_accepted(state, event)
