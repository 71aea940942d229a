"""Stepping mode of the memory transport: event deliveries run one at a time, faults on demand.

For deterministic, property-based tests of event flows. In stepping mode
(`transports.memory.Transport(stepping=True)`, or `memory://?stepping=1`),
consumers started with `consume` get no dispatch thread: their deliveries
wait until the test runs them, one at a time, in its own thread. `serve`
(request/reply) is unchanged: servers keep their threads, so `call` works by
itself. Retries of consumed queues are not released by a timer either: each
waiting retry is a step of its own. Timing decides nothing, except message
expiration: a message published with an `expiration` still expires by the
clock, so events should not carry one in stepping mode (a retry waiting for
its release step ignores it until released).

Steps
    `pending()` lists the `Step`s that can run next, ordered by queue name,
    then position: for each consumed queue not held, a `deliver` step for
    its head message (only the head: the order within a queue is kept;
    reordering happens across queues), and a `release` step for each message
    waiting in a retry queue (any of them, in any order). `run(step,
    fault=None, timeout=10)` runs one in the caller's thread: a delivery
    calls the handler, waits for the future it may return, and settles the
    message exactly as a dispatch thread would (`_settlement.decide`); a
    release moves the retry to the end of its work queue, as its timer would
    have. It returns a `StepOutcome`. What the handler published is in its
    queues when `run` returns. With several consumers on one queue, its
    deliveries go to them in turn. `run_all()` runs the first pending step
    until none is left.

Faults (`Fault`), injected by `run` into a delivery
    - `DUPLICATE`: the delivery runs, then a copy (same message id,
      redelivered) is put back at the head of the queue, to be delivered by
      a later step: a broker delivering twice.
    - `CRASH`: the handler is not called; the delivery fails with
      `InjectedCrash` and follows the retry policy: to a retry queue with
      attempt + 1, or after the last attempt to the dead-letter queue.
    - `REDELIVER`: the handler runs, but its acknowledgement is lost: the
      message goes back to the head of the queue, redelivered (a connection
      dropping just before the ack). Whatever the settlement published before
      its ack (a retry, a dead letter) stays published, as on RabbitMQ.
    `faults_applied()` counts how often each was applied.

Holding
    `hold(queue)` keeps a queue's steps out of `pending()` (and `run` refuses
    them) until `release(queue)` lists them again, in the same order; a retry
    queue is held by its own name. A held queue's messages still count as
    work: `is_idle()` stays false while one waits there.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import CancelledError, Future
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from . import _settlement as s
from .errors import TransportError
from .message import Delivery

if TYPE_CHECKING:
    from .memory import Consumer, Transport, _Entry, _Queue


class StepKind(StrEnum):
    """What a step does."""

    DELIVER = "deliver"
    """Deliver the head message of a consumed queue to its consumer and settle it."""
    RELEASE = "release"
    """Return a message waiting in a retry queue to the end of its work queue."""


class Fault(StrEnum):
    """A fault `Transport.run` can inject into a delivery step."""

    DUPLICATE = "duplicate"
    """The delivery runs, and a copy (same message id, redelivered) goes back to the head of the queue."""
    CRASH = "crash"
    """The handler is not called; the delivery fails with `InjectedCrash` and follows the retry policy."""
    REDELIVER = "redeliver"
    """The handler runs but its acknowledgement is lost: the message goes back to the head, redelivered."""

    def __repr__(self) -> str:
        return f"Fault.{self.name}"


class Outcome(StrEnum):
    """What a step did."""

    ACKED = "acked"
    REQUEUED = "requeued"
    RETRIED = "retried"
    DEAD_LETTERED = "dead-lettered"
    REDELIVERED = "redelivered"
    """The acknowledgement was lost (`Fault.REDELIVER`): the message is back at the head of its queue."""
    EXPIRED = "expired"
    """The message had expired when its turn came: dead-lettered by the broker, no handler called."""
    RELEASED = "released"
    """A retry went back to the end of its work queue."""


class InjectedCrash(Exception):
    """The failure `Fault.CRASH` puts in place of the handler's run: an ordinary, retryable error."""


class SteppingError(TransportError):
    """The stepping interface was misused: not in stepping mode, or a fault a step cannot take."""


class StaleStep(SteppingError, LookupError):
    """The step is not runnable now (already run, its message moved, its queue held or not consumed)."""


class StepTimeout(SteppingError, TimeoutError):
    """The future a handler returned did not complete in time; the delivery settles whenever it does."""


@frozen(repr=False)
class Step:
    """One thing the broker can do next: deliver the head of a queue, or release a waiting retry.

    `queue` is where the message is now: the consumed queue for a delivery,
    the retry queue (`<queue>.retry.<n>`) for a release; `position` is its
    place in that queue (always 0 for a delivery: only the head can go).
    `attempt` is the attempt the message's next delivery will be.
    """

    kind: StepKind = field(converter=StepKind)
    queue: str
    message_id: str | None
    attempt: int = 1
    redelivered: bool = False
    position: int = 0

    def __repr__(self) -> str:
        extra = ", redelivered=True" if self.redelivered else ""
        if self.position:
            extra += f", position={self.position}"
        return (
            f"Step({self.kind.value!r}, {self.queue!r}, {self.message_id!r}, attempt={self.attempt}{extra})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints drawn attrs values field by field unless they say how: say it as `repr`.
        printer.text(repr(self))


@frozen(repr=False)
class StepOutcome:
    """What `Transport.run` did with a step.

    `error` is what the handler raised, or the error its future failed with,
    or the `InjectedCrash` (None on success, and for a message the consumer
    could not decode: the reason is in the dead letter's headers). `handled`
    says whether a handler was called. `delivery` is what was delivered (None
    for a release).
    """

    step: Step
    outcome: Outcome
    error: BaseException | None = field(default=None, eq=False)
    fault: Fault | None = None
    handled: bool = False
    delivery: Delivery | None = field(default=None, eq=False)

    def __repr__(self) -> str:
        extra = f", error={s.describe(self.error)!r}" if self.error is not None else ""
        if self.fault is not None:
            extra += f", fault={self.fault.value!r}"
        return f"StepOutcome({self.step!r}, {self.outcome.value!r}{extra}, handled={self.handled})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


_OUTCOMES: dict[type[s.Settlement], Outcome] = {
    s.Ack: Outcome.ACKED,
    s.PutBack: Outcome.REQUEUED,
    s.Retry: Outcome.RETRIED,
    s.DeadLetter: Outcome.DEAD_LETTERED,
}


def _step_of(kind: StepKind, queue: str, entry: _Entry, position: int) -> Step:
    message = entry[0]
    attempt = s.attempt_of(message.headers) if message.headers else 1
    return Step(kind, queue, message.message_id, attempt, entry[3], position)


class SteppingControls:
    """The stepping methods of the memory transport (a mixin: they delegate to its `Stepper`)."""

    _stepper: Stepper

    def pending(self) -> list[Step]:
        """What can run next, ordered by queue name, then position in the queue.

        The head of each consumed queue that is not held, and each retry waiting for its release.
        """
        return self._stepper.pending()

    def run(self, step: Step, fault: Fault | None = None, timeout: float = 10.0) -> StepOutcome:
        """Run `step` in this thread, injecting `fault` into a delivery; what happened.

        A delivery calls the consumer's handler, waits up to `timeout` for the
        future it may return (`StepTimeout` otherwise: the delivery then
        settles whenever the future completes), and settles the message as a
        dispatch thread would. Raises `StaleStep` if `step` is not in
        `pending()` now.
        """
        return self._stepper.run(step, fault, timeout)

    def run_all(self, limit: int = 10_000) -> list[StepOutcome]:
        """Run the first pending step, without faults, until none is left (at most `limit` steps).

        Held queues stay held: their messages are still waiting afterwards.
        """
        outcomes: list[StepOutcome] = []
        while steps := self.pending():
            if len(outcomes) >= limit:
                raise SteppingError(f"still {len(steps)} step(s) pending after {limit}: {steps[:5]!r}")
            outcomes.append(self.run(steps[0]))
        return outcomes

    def hold(self, queue: str) -> None:
        """Keep the steps of `queue` out of `pending` until `release(queue)`; its messages stay put."""
        self._stepper.hold(queue)

    def release(self, queue: str) -> None:
        """List the steps of a held `queue` again, in their order."""
        self._stepper.release(queue)

    def held(self) -> frozenset[str]:
        """The queues held now."""
        return self._stepper.held()

    def faults_applied(self) -> dict[Fault, int]:
        """How many times `run` applied each fault (every `Fault` is a key)."""
        return self._stepper.faults_applied()


class Stepper:
    """The stepping half of a memory transport: lists steps, runs them, holds queues, counts faults.

    It works on the transport's queues and consumers under their own locks;
    the transport's methods of the same names delegate here.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._faults: Counter[Fault] = Counter()
        self._turns: Counter[str] = Counter()  # deliveries per queue: competing consumers take turns

    # Listing

    def pending(self) -> list[Step]:
        """What can run next, ordered by queue name then position."""
        self._check_stepping()
        t = self._transport
        with t._lock:
            queues = list(t._queues.values())
            stepped = {c.queue for c in t._consumers if c.stepped and not c._cancelled}
        held = self.held()
        steps: list[Step] = []
        for q in queues:
            if q.name in held:
                continue
            with q.lock:
                if q.ttl is not None:
                    # Retries of a served queue keep their timers (entry with an expiry): not steps.
                    steps.extend(
                        _step_of(StepKind.RELEASE, q.name, entry, i)
                        for i, entry in enumerate(q.ready)
                        if entry[4] is None
                    )
                elif q.name in stepped and q.ready:
                    steps.append(_step_of(StepKind.DELIVER, q.name, q.ready[0], 0))
        steps.sort(key=lambda step: (step.queue, step.position))
        return steps

    # Holding

    def hold(self, queue: str) -> None:
        """Leave the steps of `queue` out of `pending` (and refuse to run them) until `release`."""
        self._check_stepping()
        self._transport._queue(queue)
        with self._lock:
            self._held.add(queue)

    def release(self, queue: str) -> None:
        """List the steps of `queue` again, its messages in the order they were in."""
        self._check_stepping()
        with self._lock:
            self._held.discard(queue)

    def held(self) -> frozenset[str]:
        """The queues held now."""
        with self._lock:
            return frozenset(self._held)

    def faults_applied(self) -> dict[Fault, int]:
        """How many times each fault was applied."""
        with self._lock:
            return {fault: self._faults[fault] for fault in Fault}

    # Running

    def run(self, step: Step, fault: Fault | None, timeout: float) -> StepOutcome:
        """Run `step` in the calling thread, injecting `fault`; see `Transport.run`."""
        self._check_stepping()
        if fault is not None:
            fault = Fault(fault)
        if step.queue in self.held():
            raise StaleStep(f"{step!r}: queue {step.queue!r} is held")
        if step.kind is StepKind.RELEASE:
            if fault is not None:
                raise SteppingError(f"{step!r}: faults apply to deliveries, not to releases")
            return self._release(step)
        return self._deliver(step, fault, timeout)

    def _release(self, step: Step) -> StepOutcome:
        t = self._transport
        q = t._queues.get(step.queue)
        if q is None or q.ttl is None:
            raise StaleStep(f"{step!r}: {step.queue!r} is not a retry queue")
        with q.lock:
            ready = q.ready
            if not (0 <= step.position < len(ready) and ready[step.position][4] is None) or (
                _step_of(StepKind.RELEASE, q.name, ready[step.position], step.position) != step
            ):
                raise StaleStep(f"{step!r}: no such message waits there now")
            entry = ready[step.position]
            del ready[step.position]
        t._expire(q, entry)  # what the broker does when the retry's time is up
        q.activity.done(1)
        return StepOutcome(step, Outcome.RELEASED)

    def _deliver(self, step: Step, fault: Fault | None, timeout: float) -> StepOutcome:
        t = self._transport
        with t._lock:
            consumers = [c for c in t._consumers if c.queue == step.queue and c.stepped and not c._cancelled]
        if not consumers:
            raise StaleStep(f"{step!r}: no consumer is stepped on {step.queue!r}")
        with self._lock:
            consumer = consumers[self._turns[step.queue] % len(consumers)]
        q = consumer._q
        with q.lock:
            if not q.ready or _step_of(StepKind.DELIVER, q.name, q.ready[0], 0) != step:
                raise StaleStep(f"{step!r}: not the head of {step.queue!r} now")
            consumer._take_locked(1)
            entry = consumer._taken.popleft()
        with self._lock:
            self._turns[step.queue] += 1
        try:
            outcome = self._run_delivery(consumer, q, entry, step, fault, timeout)
        except StepTimeout:
            raise  # handed over: settled (and deducted) when the handler's future completes
        except BaseException:
            # Escaped the handler (KeyboardInterrupt, say): the broker has it again, as for a lost consumer.
            self._put_back(q, (*entry[:3], True, entry[4]))
            self._settled(consumer, q)
            raise
        self._settled(consumer, q)
        return outcome

    def _settled(self, consumer: Consumer, q: _Queue) -> None:
        with q.lock:
            consumer._unsettled -= 1
            q.activity.done(1)
            consumer._wakeup.notify_all()

    def _run_delivery(
        self, consumer: Consumer, q: _Queue, entry: _Entry, step: Step, fault: Fault | None, timeout: float
    ) -> StepOutcome:
        """Deliver `entry` (taken by `consumer`) and settle it as the fault says; uncounted by the caller."""
        t = self._transport
        message, exchange, routing_key, redelivered, expiry = entry
        if expiry is not None and expiry <= time.monotonic():
            t._expire(q, entry)
            return StepOutcome(step, Outcome.EXPIRED)
        t._stats.add("delivered")
        if redelivered:
            t._stats.add("redelivered")
        delivery = consumer._delivery_of(entry)
        error: BaseException | None = None
        handled = False
        if fault is Fault.CRASH:
            error = InjectedCrash(f"injected crash of the handler of {q.name!r} ({step!r})")
            settlement = consumer._decide(delivery, error)
        else:
            prepared = consumer._prepare(delivery)
            if isinstance(prepared, Delivery):
                delivery = prepared
                error = self._call_handler(consumer, q, entry, delivery, timeout)
                handled = True
                settlement = consumer._decide(delivery, error)
            else:
                settlement = prepared
        again: _Entry = (message, exchange, routing_key, True, expiry)
        if fault is Fault.REDELIVER:
            # The connection dropped after the settlement's publishes and before the ack reached
            # the broker: what was republished stays; the message itself comes back.
            if isinstance(settlement, s.Retry | s.DeadLetter) and t._republish(
                settlement.queue, settlement.message
            ):
                t._stats.add("retried" if isinstance(settlement, s.Retry) else "dead_lettered")
            self._put_back(q, again)
            outcome = Outcome.REDELIVERED
        else:
            t._settle(q, entry, delivery, settlement)
            outcome = _OUTCOMES[type(settlement)]
        if fault is Fault.DUPLICATE:
            self._put_back(q, again)
        if fault is not None:
            with self._lock:
                self._faults[fault] += 1
        return StepOutcome(step, outcome, error, fault, handled, delivery)

    def _call_handler(
        self, consumer: Consumer, q: _Queue, entry: _Entry, delivery: Delivery, timeout: float
    ) -> BaseException | None:
        """Call the handler and wait for the future it may return; what it failed with, or None."""
        consumer._step_thread = threading.current_thread()
        try:
            result = consumer._handler(delivery)
        except Exception as error:
            return error
        finally:
            consumer._step_thread = None
        if not isinstance(result, Future):
            return None
        try:
            return result.exception(timeout)
        except CancelledError as error:
            return error
        except TimeoutError:
            # Still in flight: it settles, like a threaded consumer's delivery, when the future completes.
            token = next(consumer._tokens)
            with q.lock:
                consumer._pending[token] = entry
            result.add_done_callback(partial(consumer._settle_later, token, delivery))
            raise StepTimeout(
                f"the handler of {q.name!r} returned a future that did not complete within {timeout}s"
            ) from None

    def _put_back(self, q: _Queue, entry: _Entry) -> None:
        q.put_front([entry])
        self._transport._schedule_expiry(q, [entry])

    def _check_stepping(self) -> None:
        if not self._transport.stepping:
            raise SteppingError(f"{self._transport.url}: not in stepping mode (open it with stepping=True)")
