"""Draining an event cascade on the stepping memory transport, in an order and with faults chosen by a test.

A `Drain` is a list of `Move`s, drawn by Hypothesis (`tests.strategies.drains`)
and printed in a failing program as `Drain('0 1:duplicate 3:hold')`. Each move
picks one of the steps the transport has pending (`pick` modulo their number,
so that any list of moves fits any cascade) and says what to do with it:

- `deliver`: run it as is;
- `duplicate`: the broker delivers it twice (`Fault.DUPLICATE`);
- `redeliver`: the handler runs, its acknowledgement is lost, the broker
  delivers it again (`Fault.REDELIVER`);
- `crash`: the handler crashes before it starts; the message goes to its
  retry queue, to be released by a later step (`Fault.CRASH`);
- `crash-before-commit`, `crash-after-commit`: the consuming service's actor
  crashes in the middle of the handling, before or after its state change is
  committed (through the `faults` hook the services call); its supervisor
  restarts it and the message is retried;
- `hold`: the step's queue is held back while the others progress, and
  released later in the same drain (reordering across queues);
- `release`: the queue held longest is released.

A move that cannot apply is a plain delivery: a fault on a retry's release,
a crash on the last attempt allowed (the message would be dead-lettered,
which is another story), a duplicate of a message meant to be dead-lettered
(it would be dead-lettered twice, as a broker may rightly do), a hold with
nothing else to run. When the moves run out, the first pending step runs,
then held queues are released, until nothing is pending: the transport is
then idle, every message it accepted settled.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from attrs import field, frozen

from marketplace.bootstrap import App
from transports.memory import Fault, Step, StepKind, Transport


class Action(StrEnum):
    """What a move does with the step it picks."""

    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    REDELIVER = "redeliver"
    CRASH = "crash"
    CRASH_BEFORE_COMMIT = "crash-before-commit"
    CRASH_AFTER_COMMIT = "crash-after-commit"
    HOLD = "hold"
    RELEASE = "release"


FAULTS = frozenset(Action) - {Action.DELIVER, Action.RELEASE}
"""The actions that inject a fault (release only ends a hold)."""

FAULT_EVENTS: dict[Action, str] = {
    Action.DUPLICATE: "fault: delivered twice",
    Action.REDELIVER: "fault: acknowledgement lost, redelivered",
    Action.CRASH: "fault: handler crashed, retried",
    Action.CRASH_BEFORE_COMMIT: "fault: actor crashed before its commit",
    Action.CRASH_AFTER_COMMIT: "fault: actor crashed after its commit",
    Action.HOLD: "fault: queue held back, released later",
}
"""The `hypothesis.event` recorded when a fault is applied."""

_TRANSPORT_FAULTS = {
    Action.DUPLICATE: Fault.DUPLICATE,
    Action.REDELIVER: Fault.REDELIVER,
    Action.CRASH: Fault.CRASH,
}
ACTOR_CRASHES = {Action.CRASH_BEFORE_COMMIT: "before-commit", Action.CRASH_AFTER_COMMIT: "after-commit"}
"""The actor crashes, by the point of the handling (the `faults` hook's) where each happens."""


@frozen(repr=False)
class Move:
    """Pick the pending step number `pick` (modulo how many there are) and do `action` with it."""

    pick: int
    action: Action = Action.DELIVER

    def __repr__(self) -> str:
        return str(self.pick) if self.action is Action.DELIVER else f"{self.pick}:{self.action}"

    @classmethod
    def parse(cls, text: str) -> Move:
        """A move from its repr: `3` or `3:duplicate`."""
        pick, _, action = text.partition(":")
        return cls(int(pick), Action(action or Action.DELIVER))


def _moves(value: str | Iterable[Move]) -> tuple[Move, ...]:
    if isinstance(value, str):
        return tuple(Move.parse(word) for word in value.split())
    return tuple(value)


@frozen(repr=False)
class Drain:
    """The moves that drain one cascade; `Drain('0 2:crash 1')` (its repr) builds it again."""

    moves: tuple[Move, ...] = field(default=(), converter=_moves)

    def __repr__(self) -> str:
        return f"Drain({' '.join(map(repr, self.moves))!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints drawn attrs values field by field unless they say how: say it as `repr`.
        printer.text(repr(self))


class InjectedActorCrash(Exception):
    """The crash `ActorCrashes` injects into a service's handling."""


class ActorCrashes:
    """The services' `faults` hook: crashes one service once, at one point, when armed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: tuple[str, str] | None = None
        self._fired = False

    def __call__(self, service: str, point: str) -> None:
        with self._lock:
            if self._armed != (service, point):
                return
            self._armed = None
            self._fired = True
        raise InjectedActorCrash(f"injected crash of {service} {point}")

    def arm(self, service: str, point: str) -> None:
        """Crash `service` the next time it reaches `point`."""
        with self._lock:
            self._armed, self._fired = (service, point), False

    def disarm(self) -> bool:
        """Stop waiting for the crash; whether it happened."""
        with self._lock:
            self._armed = None
            return self._fired


class Drainer:
    """Drains the cascades of one app on a stepping memory transport, with the faults a `Drain` asks for."""

    def __init__(
        self,
        app: App,
        transport: Transport,
        crashes: ActorCrashes,
        *,
        record: Callable[[Action], None],
        limit: int = 10_000,
    ) -> None:
        self._transport = transport
        self._crashes = crashes
        self._record = record
        self._limit = limit
        self._max_attempts = app.wiring.retry.max_attempts
        self._consumer_of = {app.wiring.events_queue(name): name for name in app.services}
        self.applied: Counter[Action] = Counter()

    def drain(self, moves: list[Move], *, spare: frozenset[str] = frozenset()) -> None:
        """Run steps as `moves` say (taking them from its front), then the first pending, until none is left.

        `spare` names messages (by id) never to duplicate or redeliver: those
        meant to be dead-lettered, which would be dead-lettered twice.
        """
        transport = self._transport
        held: list[str] = []
        for _ in range(self._limit):
            steps = transport.pending()
            if not steps:
                if not held:
                    break
                for queue in held:
                    transport.release(queue)
                held.clear()
                continue
            move = moves.pop(0) if moves else Move(0)
            step = steps[move.pick % len(steps)]
            action = self._applicable(move.action, step, steps, held, spare)
            if action is Action.HOLD:
                transport.hold(step.queue)
                held.append(step.queue)
                self._applied(action)
            elif action is Action.RELEASE:
                transport.release(held.pop(0))
            else:
                self._run(step, action)
        else:
            raise AssertionError(f"the cascade did not drain in {self._limit} steps: {transport.pending()!r}")
        assert transport.is_idle(), (
            f"drained, yet the transport is not idle: {transport.in_flight()} in flight"
        )

    def _applicable(
        self, action: Action, step: Step, steps: list[Step], held: list[str], spare: frozenset[str]
    ) -> Action:
        """`action`, or a plain delivery where `action` cannot apply to `step`."""
        if action is Action.RELEASE:
            return action if held else Action.DELIVER
        if action is Action.HOLD:
            others = any(other.queue != step.queue for other in steps)
            return action if others else Action.DELIVER
        if action is Action.DELIVER or step.kind is StepKind.RELEASE:
            return Action.DELIVER
        if action in (Action.DUPLICATE, Action.REDELIVER) and step.message_id in spare:
            return Action.DELIVER
        if action in (Action.CRASH, *ACTOR_CRASHES) and step.attempt >= self._max_attempts:
            return Action.DELIVER
        if action in ACTOR_CRASHES and step.queue not in self._consumer_of:
            return Action.DELIVER
        return action

    def _run(self, step: Step, action: Action) -> None:
        point = ACTOR_CRASHES.get(action)
        if point is not None:
            self._crashes.arm(self._consumer_of[step.queue], point)
        try:
            self._transport.run(step, _TRANSPORT_FAULTS.get(action))
        finally:
            crashed = self._crashes.disarm() if point is not None else False
        if action in _TRANSPORT_FAULTS or crashed:
            self._applied(action)

    def _applied(self, action: Action) -> None:
        self.applied[action] += 1
        self._record(action)
