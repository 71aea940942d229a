"""The in-memory broker: the transport contract with RabbitMQ's observable semantics, in one process.

URL: `memory://`, optionally `memory://?stepping=1` (see Stepping). Every
`Transport` object is its own private broker: two transports opened with the
same URL share nothing. Other URL parts are ignored.

Supported: direct, fanout and topic exchanges and the default exchange (the
routing key names the queue, derived queues included); unroutable messages
fail their publish instead of vanishing; publishes are confirmed at once
(`confirm_window` is accepted for parity with RabbitMQ and otherwise unused);
consumers with prefetch, acknowledgement after the handler or when the future
it returned completes, requeueing with the redelivered flag, retries that wait
in `<queue>.retry.<n>` for the queue's delay and then return to the end of the
queue, dead-lettering onto `<queue>.dlq`; competing consumers; per-message
expiration, enforced at the head of the queue and before delivery, the expired
message being dead-lettered with reason `expired`; request/reply with
RabbitMQ-style direct reply-to addresses; counters. The counters count what
the transport does as a client; what the broker does by itself (expire a
message, return a retry to its queue) is counted nowhere, as on RabbitMQ.

Threads: one dispatch thread per consumer, and one scheduler thread (started
on first use) that moves messages whose time is up: retries back to their
queue, expired messages to the dead-letter queue. `close` joins them all.

Quiescence (both modes)
    `in_flight()` counts the work the broker still has: messages ready on a
    queue that has a consumer (held or not), messages waiting in a retry
    queue, deliveries taken and not settled yet, and requests waiting for
    their reply. A message is counted as it enters such a queue, before any
    consumer can take it, and uncounted only after its settlement (and so
    after whatever its handler published) was carried out: the count cannot
    reach zero in the middle of a cascade. `is_idle()` is `in_flight() == 0`;
    `wait_until_idle(timeout)` waits on a condition (no polling) until then,
    or raises `TimeoutError` naming the queues and consumers still busy.
    Messages resting where nobody consumes (a dead-letter queue nobody
    reads, say) are not work.

Stepping (`Transport(stepping=True)`, or `memory://?stepping=1`; details in `_stepping`)
    Event consumers get no dispatch thread: `pending()` lists the `Step`s
    that can run next (the head of each consumed queue, each waiting retry:
    timers release no retry), and `run(step, fault)` runs one in the
    caller's thread, settling it as a dispatch thread would, and returns a
    `StepOutcome`. Faults: `DUPLICATE` (delivered twice), `CRASH` (fails
    with `InjectedCrash` without calling the handler, then retried),
    `REDELIVER` (the ack is lost: back at the head, redelivered);
    `faults_applied()` counts them. `hold(queue)` / `release(queue)` reorder
    deliveries across queues. Request/reply (`serve`, `call`) keeps its
    threads and runs by itself. Message expiration still goes by the clock:
    events should not carry one in stepping mode.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from attrs import evolve

from . import _settlement as s
from . import base
from . import message as m
from ._stepping import (
    Fault,
    InjectedCrash,
    Outcome,
    StaleStep,
    Step,
    StepKind,
    StepOutcome,
    Stepper,
    SteppingControls,
    SteppingError,
    StepTimeout,
)
from .errors import ReplyError, RequestTimeout, TopologyError, TransportClosed, UnknownScheme, Unroutable
from .message import Delivery, Message
from .topology import (
    ExchangeType,
    RetryPolicy,
    Topology,
    dead_letter_queue_name,
    is_derived_queue,
    topic_matches,
)
from .url import mask_password, scheme_of

__all__ = [
    "REPLY_TO_PREFIX",
    "Consumer",
    "Fault",
    "InjectedCrash",
    "Outcome",
    "StaleStep",
    "Step",
    "StepKind",
    "StepOutcome",
    "StepTimeout",
    "SteppingError",
    "Transport",
]

REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."
"""Reply addresses handed out by `call` start with this, as RabbitMQ's direct reply-to ones do."""
_REPLY_QUEUE = "amq.rabbitmq.reply-to"
_ROUTE_CACHE_SIZE = 10_000

_Entry = tuple[Message, str, str, bool, float | None]
"""A message in a queue: message, exchange, routing key, redelivered, expiry (monotonic) or None."""


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _stepping_in(url: str) -> bool:
    """The `stepping` parameter of a memory URL (`memory://?stepping=1`); False when absent."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True).get("stepping")
    if not values:
        return False
    value = values[-1].strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"{mask_password(url)!r}: stepping={values[-1]!r} is not a yes or a no")
    return value in _TRUE


def _completed() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


# Publishing is confirmed at once; one finished future serves every publish (a
# finished future stores no callbacks, so sharing it is safe and saves a Future
# per message).
_CONFIRMED = _completed()


class _Activity:
    """The work the broker still has to do, counted so that quiescence is known rather than guessed.

    `live` counts the messages ready on a counted queue (one with a consumer,
    or a retry queue), the deliveries taken and not settled yet, and the
    requests waiting for their reply. A message is counted when it enters a
    counted queue (under that queue's lock, before anyone can take it) and
    uncounted only once its settlement is carried out, after whatever the
    settlement or the handler published was counted: so `live` never drops to
    zero while a cascade is still under way. Settlements may be deducted late
    (a dispatch thread deducts a whole batch at once), which only delays the
    moment zero is seen, never brings it early.

    Lock order: this lock is always taken last (after a queue's lock).
    """

    __slots__ = ("changed", "live", "lock", "waiters")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.live = 0
        self.waiters = 0  # threads in `wait_until_idle`: notify only when someone listens

    def add(self, n: int) -> None:
        """Count `n` more pieces of work."""
        with self.lock:
            self.live += n

    def done(self, n: int) -> None:
        """Count `n` pieces of work as finished; wake the waiters once none is left."""
        with self.lock:
            self.live -= n
            if self.live == 0 and self.waiters:
                self.changed.notify_all()


class _Queue:
    """One queue of the broker: its ready messages and the consumers idly waiting for them."""

    __slots__ = (
        "activity",
        "consumers",
        "counted",
        "dead_letter_to",
        "idle",
        "lock",
        "name",
        "policy",
        "ready",
        "served",
        "ttl",
    )

    def __init__(
        self,
        name: str,
        activity: _Activity,
        policy: RetryPolicy | None = None,
        ttl: float | None = None,
        dead_letter_to: str | None = None,
    ) -> None:
        self.name = name
        self.activity = activity
        self.policy = policy
        """The retry policy of a declared queue; None for a derived one (dead-letter or retry)."""
        self.ttl = ttl
        """Seconds a message may wait here (the delay of a retry queue); None: no limit."""
        self.dead_letter_to = dead_letter_to
        """Where expired messages go, as RabbitMQ's dead-letter routing key."""
        self.ready: deque[_Entry] = deque()
        self.lock = threading.Lock()
        self.idle: deque[Consumer] = deque()
        """Consumers with room for more, blocked until a message arrives."""
        self.consumers = 0
        """Consumers running on this queue, which share its messages."""
        self.counted = ttl is not None
        """Whether its ready messages count as work to do (`_Activity`): a retry queue's always do,
        another queue's while it has consumers; messages at rest where nobody consumes do not."""
        self.served = False
        """Whether requests are served from it: its retries keep their timers in stepping mode."""

    def put(self, entry: _Entry) -> None:
        """Append `entry` and wake one idle consumer."""
        with self.lock:
            self.ready.append(entry)
            if self.counted:
                activity = self.activity
                with activity.lock:
                    activity.live += 1
            if self.idle:
                self.idle.popleft()._wake()

    def put_front(self, entries: list[_Entry]) -> None:
        """Put `entries` back at the head of the queue, in their order."""
        with self.lock:
            self.put_front_locked(entries)

    def put_front_locked(self, entries: list[_Entry]) -> None:
        """`put_front`, the queue lock being held."""
        self.ready.extendleft(reversed(entries))
        if self.counted:
            self.activity.add(len(entries))
        for _ in entries:
            if not self.idle:
                break
            self.idle.popleft()._wake()

    def joined_locked(self) -> None:
        """A consumer started on this queue (its lock held): its ready messages are now work to do."""
        self.consumers += 1
        if not self.counted:
            self.counted = True
            self.activity.add(len(self.ready))

    def left_locked(self) -> None:
        """A consumer of this queue stopped (its lock held): once none is left, its messages rest."""
        self.consumers -= 1
        if self.consumers == 0 and self.ttl is None and self.counted:
            self.counted = False
            self.activity.done(len(self.ready))

    def clear_locked(self) -> None:
        """Drop every ready message (the queue is deleted; its lock held)."""
        if self.counted:
            self.activity.done(len(self.ready))
        self.ready.clear()

    def __repr__(self) -> str:
        return f"<queue {self.name!r}: {len(self.ready)} ready>"


class _Exchange:
    """An exchange's bindings and, cached, the queues each routing key reaches."""

    __slots__ = ("bindings", "name", "routes", "type")

    def __init__(self, name: str, type: ExchangeType, bindings: list[tuple[str, _Queue]]) -> None:
        self.name = name
        self.type = type
        self.bindings = bindings
        self.routes: dict[str, tuple[_Queue, ...]] = {}
        if type is ExchangeType.DIRECT:
            for key, _ in bindings:
                self.routes[key] = self._match(key)

    def route(self, routing_key: str) -> tuple[_Queue, ...]:
        """The queues `routing_key` reaches, each once (what `routes` caches)."""
        queues = self._match(routing_key)
        if len(self.routes) < _ROUTE_CACHE_SIZE:
            self.routes[routing_key] = queues
        return queues

    def _match(self, routing_key: str) -> tuple[_Queue, ...]:
        if self.type is ExchangeType.FANOUT:
            hits = [q for _, q in self.bindings]
        elif self.type is ExchangeType.TOPIC:
            hits = [q for pattern, q in self.bindings if topic_matches(pattern, routing_key)]
        else:
            hits = [q for key, q in self.bindings if key == routing_key]
        return tuple(dict.fromkeys(hits))  # a queue gets one copy however many bindings match


class _Scheduler:
    """Runs actions at given monotonic times, in order, on one thread started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action` once `time.monotonic()` reaches `when` (never, once stopped)."""
        with self._cond:
            if self._stopped:
                return
            seq = next(self._seq)
            heapq.heappush(self._heap, (when, seq, action))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][1] == seq:
                self._cond.notify()

    def stop(self, timeout: float) -> None:
        """Drop what is still scheduled and wait up to `timeout` seconds for the thread to end."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    if heap and heap[0][0] <= now:
                        action = heapq.heappop(heap)[2]
                        break
                    self._cond.wait(heap[0][0] - now if heap else None)
            action()


class _Call:
    """A caller waiting for its reply."""

    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Delivery | None = None

    def resolve(self, reply: Delivery | None) -> None:
        """Hand over `reply` (None: the transport closed); later replies are ignored."""
        if not self.done.is_set():
            self.reply = reply
            self.done.set()


class Consumer(base.Consumer):
    """A subscription to one queue of a memory transport, served by its own dispatch thread.

    The dispatch thread takes a batch of messages (as many as prefetch
    allows) under the queue's lock, then runs them one by one: `_take_locked`
    picks the next messages, `_run_one` runs one delivery and settles it.

    A `stepped` consumer (stepping mode) has no dispatch thread: its
    deliveries are run one at a time by `Transport.run` (see `_stepping`).
    """

    def __init__(
        self,
        transport: Transport,
        queue: _Queue,
        handler: base.Handler,
        decode: base.Decoder | None,
        prefetch: int,
        *,
        stepped: bool = False,
    ) -> None:
        self.queue = queue.name
        self.prefetch = prefetch
        self.stepped = stepped
        self._transport = transport
        self._q = queue
        self._handler = handler
        self._decode = decode
        self._policy = queue.policy
        self._wakeup = threading.Condition(queue.lock)
        self._thread = threading.Thread(
            target=self._dispatch, name=f"memory-consumer-{queue.name}", daemon=True
        )
        # Guarded by the queue's lock:
        self._cancelled = False
        self._listed = False  # in the queue's idle list
        self._unsettled = 0  # taken from the queue and not settled yet
        self._pending: dict[int, _Entry] = {}  # handed over; a future will settle them
        self._gave_up_current = False
        # Written by the dispatch thread only (read by `cancel` when it gives up):
        self._taken: deque[_Entry] = deque()  # taken, not handed to the handler yet
        self._current: _Entry | None = None  # in the handler right now
        self._settled_here = 0  # settled on the dispatch thread, not yet deducted from _unsettled
        self._delivered = self._redelivered = self._acked = 0  # counted here, added to the stats per batch
        self._tokens = itertools.count()
        self._step_thread: threading.Thread | None = None  # the thread running a step of this consumer

    def cancel(self, timeout: float = 10.0) -> None:
        """Stop taking messages; wait up to `timeout` for those handed over to settle, put the rest back."""
        deadline = time.monotonic() + timeout
        self._stop()
        if threading.current_thread() in (self._thread, self._step_thread):
            return  # called by our own handler: this delivery settles once the handler returns
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._q.lock:
            while self._unsettled > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.wait(remaining)
            self._give_up()
        self._transport._forget(self)

    def _wake(self) -> None:
        """Called by the queue, its lock held: a message arrived for this idle consumer."""
        self._listed = False
        self._wakeup.notify()

    def _stop(self) -> None:
        with self._q.lock:
            if not self._cancelled:
                self._q.left_locked()
            self._cancelled = True
            if self._listed:
                self._q.idle.remove(self)
                self._listed = False
            self._wakeup.notify_all()

    def _give_up(self) -> None:
        """Put back, marked redelivered, every message taken and not settled (the queue lock held).

        As RabbitMQ does with the unacknowledged messages of a consumer that went away.
        """
        unsettled = list(self._pending.values())
        self._pending.clear()
        if self._current is not None:
            self._gave_up_current = True
            unsettled.append(self._current)
        unsettled.extend(self._taken)
        self._taken.clear()
        if unsettled:
            back = [(msg, ex, key, True, expiry) for msg, ex, key, _, expiry in unsettled]
            self._q.put_front_locked(back)
            self._q.activity.done(len(back))
            self._transport._schedule_expiry(self._q, back)

    def _dispatch(self) -> None:
        taken = self._taken
        try:
            # Once cancelled, what was already taken is still handled, as a RabbitMQ
            # consumer handles what the broker pushed to it before the cancel.
            while self._take_batch():
                while True:
                    try:
                        entry = taken.popleft()
                    except IndexError:  # all done, or `cancel` gave up and took them back
                        break
                    self._run_one(entry)
                self._flush_stats()
        finally:
            with self._q.lock:
                self._deduct_settled_locked()
                if taken:  # only after an error escaped a handler: let the queue have them again
                    self._give_up()
                self._wakeup.notify_all()
            self._flush_stats()

    def _take_batch(self) -> bool:
        """Wait until there is room and a message, then take a batch; False once cancelled."""
        q = self._q
        with q.lock:
            self._deduct_settled_locked()
            while True:
                if self._cancelled:
                    return False
                room = self.prefetch - self._unsettled
                if room > 0:
                    if q.ready:
                        break
                    if not self._listed:
                        q.idle.append(self)
                        self._listed = True
                self._wakeup.wait()
            if self._listed:
                q.idle.remove(self)
                self._listed = False
            # Competing consumers each take their share, as RabbitMQ hands messages out in turn.
            self._take_locked(min(room, -(-len(q.ready) // q.consumers)))
            if q.ready and q.idle:
                q.idle.popleft()._wake()
        return True

    def _deduct_settled_locked(self) -> None:
        """Deduct the deliveries settled on the dispatch thread since last time (the queue lock held)."""
        if self._settled_here:
            self._unsettled -= self._settled_here
            self._q.activity.done(self._settled_here)
            self._settled_here = 0

    def _take_locked(self, limit: int) -> int:
        """Move up to `limit` ready messages from the queue to this consumer; how many it took."""
        ready, taken = self._q.ready, self._taken
        n = min(limit, len(ready))
        for _ in range(n):
            taken.append(ready.popleft())
        self._unsettled += n
        return n

    def _run_one(self, entry: _Entry) -> None:
        """Hand one taken message to the handler and settle it, now or when its future completes."""
        expiry = entry[4]
        if expiry is not None and expiry <= time.monotonic():
            self._transport._expire(self._q, entry)
            self._settled_here += 1
            return
        self._delivered += 1
        if entry[3]:
            self._redelivered += 1
        delivery = self._delivery_of(entry)
        prepared = self._prepare(delivery)
        if not isinstance(prepared, Delivery):
            self._settle_now(entry, delivery, prepared)
            return
        delivery = prepared

        self._current = entry
        failure: BaseException | None = None
        try:
            result = self._handler(delivery)
        except Exception as error:
            failure, result = error, None
        if isinstance(result, Future):
            token = next(self._tokens)
            with self._q.lock:
                self._current = None
                if self._gave_up_current:
                    return
                self._pending[token] = entry
            result.add_done_callback(partial(self._settle_later, token, delivery))
            return
        # Cleared before `_cancelled` is read: `cancel` reads them in the opposite order,
        # so either it sees no current delivery or we see the cancellation.
        self._current = None
        if self._cancelled:
            with self._q.lock:
                if self._gave_up_current:
                    return  # cancel timed out and put it back already
        self._settle_now(entry, delivery, self._decide(delivery, failure))

    def _delivery_of(self, entry: _Entry) -> Delivery:
        """The delivery of a message taken from the queue, before decoding."""
        message, exchange, routing_key, redelivered, _ = entry
        headers = message.headers
        if headers:  # a retried or dead-lettered message shows where it was first published
            exchange = str(headers.get(m.ORIGINAL_EXCHANGE, exchange))
            routing_key = str(headers.get(m.ORIGINAL_ROUTING_KEY, routing_key))
            attempt = s.attempt_of(headers)
        else:
            attempt = 1
        return Delivery(message, self.queue, exchange, routing_key, redelivered, attempt, message.body)

    def _prepare(self, delivery: Delivery) -> Delivery | s.Settlement:
        """The delivery to hand to the handler, payload decoded; or the settlement of one not to run."""
        if self._decode is None:
            return delivery
        try:
            payload = self._decode(delivery.message)
        except Exception as error:
            return self._undecodable(delivery, error)
        d = delivery
        return Delivery(d.message, d.queue, d.exchange, d.routing_key, d.redelivered, d.attempt, payload)

    def _settle_now(self, entry: _Entry, delivery: Delivery, settlement: s.Settlement) -> None:
        self._settled_here += 1
        if settlement is s.ACK:
            self._acked += 1
        else:
            self._transport._settle(self._q, entry, delivery, settlement)

    def _settle_later(self, token: int, delivery: Delivery, future: Future[Any]) -> None:
        with self._q.lock:
            entry = self._pending.pop(token, None)
        if entry is None:
            return  # cancel gave up waiting and put it back already
        error = CancelledError() if future.cancelled() else future.exception()
        self._transport._settle(self._q, entry, delivery, self._decide(delivery, error))
        with self._q.lock:
            self._unsettled -= 1
            self._q.activity.done(1)
            self._wakeup.notify_all()

    def _decide(self, delivery: Delivery, error: BaseException | None) -> s.Settlement:
        if self._policy is None:  # a dead-letter or retry queue has no dead-letter queue of its own
            return s.ACK if error is None else s.PUT_BACK
        return s.decide(delivery, error, self._policy)

    def _undecodable(self, delivery: Delivery, error: BaseException) -> s.Settlement:
        if self._policy is None:
            return s.PUT_BACK
        return s.dead_letter(delivery, m.REASON_UNDECODABLE, error)

    def _flush_stats(self) -> None:
        stats = self._transport._stats
        if self._delivered:
            stats.add("delivered", self._delivered)
            self._delivered = 0
        if self._redelivered:
            stats.add("redelivered", self._redelivered)
            self._redelivered = 0
        if self._acked:
            stats.add("acked", self._acked)
            self._acked = 0

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "stepped" if self.stepped else "running"
        return f"<memory {type(self).__name__} of {self.queue!r}, {state}>"


class _Server(Consumer):
    """A consumer that answers requests: a reply for each, an error reply when one fails for good."""

    def __init__(
        self,
        transport: Transport,
        queue: _Queue,
        responder: base.Responder,
        decode: base.Decoder | None,
        prefetch: int,
    ) -> None:
        super().__init__(transport, queue, self._respond, decode, prefetch)
        self._responder = responder

    def _respond(self, request: Delivery) -> None:
        result = self._responder(request)
        self._transport._reply(request, s.reply_message(request, result))

    def _prepare(self, delivery: Delivery) -> Delivery | s.Settlement:
        if s.is_past_deadline(delivery.headers):  # its caller has given up: not run, not answered
            return s.dead_letter(delivery, m.REASON_EXPIRED, "the caller's deadline passed")
        return super()._prepare(delivery)

    def _decide(self, delivery: Delivery, error: BaseException | None) -> s.Settlement:
        if isinstance(error, ReplyError):
            self._transport._reply(delivery, s.error_reply(delivery, error))
            return s.ACK
        settlement = super()._decide(delivery, error)
        if error is not None and isinstance(settlement, s.DeadLetter):
            self._transport._reply(delivery, s.error_reply(delivery, error))
        return settlement

    def _undecodable(self, delivery: Delivery, error: BaseException) -> s.Settlement:
        settlement = super()._undecodable(delivery, error)
        if isinstance(settlement, s.DeadLetter):
            self._transport._reply(delivery, s.undecodable_reply(delivery, error))
        return settlement


class Transport(SteppingControls, base.Transport):
    """An in-process broker with RabbitMQ's observable semantics; see the module docstring."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        prefetch: int = base.DEFAULT_PREFETCH,
        confirm_window: int = base.DEFAULT_CONFIRM_WINDOW,
        stepping: bool | None = None,
    ) -> None:
        """Open a private broker; `stepping` (default: the URL's `stepping` parameter) steps events."""
        if scheme_of(url) != "memory":
            raise UnknownScheme(f"the memory transport cannot open {mask_password(url)!r}: use memory://")
        if stepping is None:
            stepping = _stepping_in(url)
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, not {prefetch}")
        if confirm_window < 1:
            raise ValueError(f"confirm_window must be at least 1, not {confirm_window}")
        self.url = mask_password(url)
        self.prefetch = prefetch
        self.confirm_window = confirm_window
        self.stepping = stepping
        """Whether event consumers wait for `run` instead of having dispatch threads."""
        self._activity = _Activity()
        self._stepper = Stepper(self)
        self._lock = threading.Lock()  # topology changes, consumers, calls, closing
        self._topology = Topology()
        self._queues: dict[str, _Queue] = {}
        # Replaced whole, never changed in place, so that publish reads it without a lock.
        self._exchanges: dict[str, _Exchange] = {"": _Exchange("", ExchangeType.DIRECT, [])}
        self._consumers: list[Consumer] = []
        self._calls: dict[str, _Call] = {}
        self._scheduler = _Scheduler("memory-scheduler")
        self._stats = base.StatsCounter()
        self._closed = False

    # Topology

    def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues (each with its dead-letter and retry queues) and bindings."""
        with self._lock:
            self._check_open()
            try:
                merged = self._topology.merged(topology)
            except ValueError as error:
                raise TopologyError(str(error)) from None
            for declared in topology.queues:
                self._add_queues(merged, declared.name)
            self._install(merged)

    def delete(self, topology: Topology) -> None:
        """Remove the exchanges and queues of `topology` (derived queues too), messages included."""
        with self._lock:
            current = self._topology
            doomed: list[_Queue] = []
            for declared in topology.queues:
                name = declared.name
                if name in self._queues:
                    derived = [dead_letter_queue_name(name), *(n for n, _ in current.retry_queues(name))]
                    doomed.extend(self._queues.pop(n) for n in (name, *derived))
            remaining = current.without(topology)
            consumers = [c for c in self._consumers if c._q in doomed]
            self._install(remaining)
        for q in doomed:
            with q.lock:
                q.clear_locked()
        for consumer in consumers:  # RabbitMQ cancels the consumers of a deleted queue
            consumer._stop()

    def _add_queues(self, topology: Topology, name: str) -> None:
        if name in self._queues:
            return
        dlq = dead_letter_queue_name(name)
        activity = self._activity
        self._queues[name] = _Queue(name, activity, policy=topology.retry_policy(name), dead_letter_to=dlq)
        self._queues[dlq] = _Queue(dlq, activity)
        for retry_name, delay in topology.retry_queues(name):
            self._queues[retry_name] = _Queue(retry_name, activity, ttl=delay, dead_letter_to=name)

    def _install(self, topology: Topology) -> None:
        exchanges = {"": _Exchange("", ExchangeType.DIRECT, [(n, q) for n, q in self._queues.items()])}
        for e in topology.exchanges:
            bindings = [
                (b.routing_key, self._queues[b.queue]) for b in topology.bindings if b.exchange == e.name
            ]
            exchanges[e.name] = _Exchange(e.name, e.type, bindings)
        self._topology = topology
        self._exchanges = exchanges

    # Publishing

    def publish(self, exchange: str, routing_key: str, message: Message) -> Future[None]:
        """Route `message` into every matching queue; the future is already complete (or failed)."""
        if self._closed:
            raise TransportClosed(f"{self.url}: closed")
        if message.headers:
            s.check_headers(message.headers)
        try:
            target = self._exchanges[exchange]
        except KeyError:
            raise TopologyError(f"exchange {exchange!r} is not declared") from None
        queues = target.routes.get(routing_key)
        if queues is None:
            queues = target.route(routing_key)
        if not queues:
            if exchange == "" and routing_key.startswith(REPLY_TO_PREFIX):
                self._send_reply(routing_key, message)
                return _CONFIRMED
            self._stats.add("unroutable")
            failed: Future[None] = Future()
            failed.set_exception(Unroutable(exchange, routing_key))
            return failed
        self._put(queues, message, exchange, routing_key)
        self._stats.add("published")
        return _CONFIRMED

    def _put(self, queues: Iterable[_Queue], message: Message, exchange: str, routing_key: str) -> None:
        if message.expiration is None:
            entry: _Entry = (message, exchange, routing_key, False, None)
            for q in queues:
                if q.ttl is None:
                    q.put(entry)
                else:
                    self._put_expiring(q, message, exchange, routing_key)
        else:
            for q in queues:
                self._put_expiring(q, message, exchange, routing_key)

    def _put_expiring(self, q: _Queue, message: Message, exchange: str, routing_key: str) -> None:
        if q.ttl is not None and self.stepping and not self._serves_retries_of(q):
            # A retry queue of an event queue: the message waits for its release step, not for the clock.
            q.put((message, exchange, routing_key, False, None))
            return
        # The clock starts when the message enters the queue; the lower of message and queue TTL wins.
        ttls = [t for t in (message.expiration, q.ttl) if t is not None]
        entry = (message, exchange, routing_key, False, time.monotonic() + min(ttls))
        q.put(entry)
        self._schedule_expiry(q, [entry])

    def _serves_retries_of(self, retry_queue: _Queue) -> bool:
        """Whether the work queue of `retry_queue` serves requests (whose retries keep their timers)."""
        work = self._queues.get(retry_queue.dead_letter_to or "")
        return work is not None and work.served

    def _republish(self, queue: str, message: Message) -> bool:
        """Put `message` onto `queue` through the default exchange; False if the queue is gone."""
        q = self._queues.get(queue)
        if q is None:
            return False
        self._put((q,), message, "", queue)
        self._stats.add("published")
        return True

    # Expiry

    def _schedule_expiry(self, q: _Queue, entries: Iterable[_Entry]) -> None:
        for entry in entries:
            if entry[4] is not None:
                self._scheduler.at(entry[4], partial(self._expire_due, q))

    def _expire_due(self, q: _Queue) -> None:
        """Dead-letter the expired messages at the head of `q` (only the head, as RabbitMQ does)."""
        now = time.monotonic()
        expired = []
        with q.lock:
            ready = q.ready
            while ready and (expiry := ready[0][4]) is not None and expiry <= now:
                expired.append(ready.popleft())
            counted = q.counted
        for entry in expired:
            self._expire(q, entry)
        if expired and counted:  # only now: where they went is counted already
            self._activity.done(len(expired))

    def _expire(self, q: _Queue, entry: _Entry) -> None:
        """What the broker does with an expired message: route it to the queue's dead-letter target."""
        message, exchange, routing_key, redelivered, _ = entry
        target = self._queues.get(q.dead_letter_to) if q.dead_letter_to else None
        if target is None:
            return  # a dead-letter queue has no dead-letter queue: RabbitMQ drops it too
        if q.ttl is not None:  # a retry queue: its message goes back to the end of the work queue
            self._put((target,), message, "", target.name)
            return
        delivery = Delivery(
            message, q.name, exchange, routing_key, redelivered, s.attempt_of(message.headers)
        )
        letter = s.dead_letter(delivery, m.REASON_EXPIRED, f"expired after {message.expiration}s in {q.name}")
        self._put((target,), letter.message, "", target.name)

    # Consuming

    def consume(
        self,
        queue: str,
        handler: base.Handler,
        *,
        decode: base.Decoder | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        """Call `handler` for each message of `queue` on a dispatch thread of its own.

        In stepping mode, the consumer has no thread: its deliveries are steps (`pending`, `run`).
        """
        consumer = Consumer(
            self, self._queue(queue), handler, decode, self._prefetch(prefetch), stepped=self.stepping
        )
        return self._start(consumer)

    def serve(
        self,
        queue: str,
        responder: base.Responder,
        *,
        decode: base.Decoder | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        """Answer each request arriving on `queue` with `responder`, on a dispatch thread of its own."""
        if is_derived_queue(queue):
            raise TopologyError(f"queue {queue!r} is a dead-letter or retry queue: it cannot serve requests")
        q = self._queue(queue)
        q.served = True
        return self._start(_Server(self, q, responder, decode, self._prefetch(prefetch)))

    def _queue(self, name: str) -> _Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise TopologyError(f"queue {name!r} is not declared") from None

    def _prefetch(self, prefetch: int | None) -> int:
        if prefetch is None:
            return self.prefetch
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, not {prefetch}")
        return prefetch

    def _start(self, consumer: Consumer) -> Consumer:
        with self._lock:
            self._check_open()
            self._consumers.append(consumer)
            with consumer._q.lock:
                consumer._q.joined_locked()
            if not consumer.stepped:
                consumer._thread.start()
        return consumer

    def _forget(self, consumer: Consumer) -> None:
        with self._lock:
            if consumer in self._consumers:
                self._consumers.remove(consumer)

    def _settle(self, q: _Queue, entry: _Entry, delivery: Delivery, settlement: s.Settlement) -> None:
        """Carry out `settlement` for `entry`, delivered from `q` as `delivery`."""
        if isinstance(settlement, s.Ack):
            self._stats.add("acked")
        elif isinstance(settlement, s.PutBack):
            message, exchange, routing_key, _, expiry = entry
            back: _Entry = (message, exchange, routing_key, True, expiry)
            q.put_front([back])
            self._schedule_expiry(q, [back])
            self._stats.add("requeued")
        elif isinstance(settlement, s.Retry):
            if self._republish(settlement.queue, settlement.message):
                self._stats.add("retried")
            self._stats.add("acked")
        else:
            if self._republish(settlement.queue, settlement.message):
                self._stats.add("dead_lettered")
            self._stats.add("acked")

    # Request/reply

    def call(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Delivery:
        """Send a request and wait at most `timeout` seconds for its reply."""
        reply_to = REPLY_TO_PREFIX + uuid.uuid4().hex
        request = evolve(
            message,
            headers={**message.headers, m.DEADLINE: s.deadline_after(timeout)},
            correlation_id=message.correlation_id or uuid.uuid4().hex,
            expiration=timeout,
            reply_to=reply_to,
        )
        waiter = _Call()
        with self._lock:
            self._check_open()
            self._calls[reply_to] = waiter
            self._activity.add(1)
        try:
            error = self.publish(exchange, routing_key, request).exception(timeout)
            if error is not None:
                raise error
            if not waiter.done.wait(timeout):
                raise RequestTimeout(
                    f"no reply within {timeout}s to a request to exchange {exchange!r}, "
                    f"routing key {routing_key!r}"
                )
        finally:
            with self._lock:
                self._calls.pop(reply_to, None)
            self._activity.done(1)
        if waiter.reply is None:
            raise TransportClosed(f"{self.url}: closed while waiting for a reply")
        return s.raise_if_error(waiter.reply)

    def _reply(self, request: Delivery, reply: Message) -> None:
        if request.message.reply_to:
            self._send_reply(request.message.reply_to, reply)

    def _send_reply(self, reply_to: str, reply: Message) -> None:
        waiter = self._calls.get(reply_to)
        if waiter is not None:
            waiter.resolve(Delivery(reply, _REPLY_QUEUE, "", reply_to, payload=reply.body))
            return
        q = self._queues.get(reply_to)
        if q is not None:  # replies to a queue of its own, as RabbitMQ allows
            self._put((q,), reply, "", reply_to)
        # otherwise the caller is gone: the reply is discarded

    # State

    def queue_size(self, queue: str) -> int:
        """Messages ready on `queue` (not counting those delivered and not yet settled)."""
        q = self._queue(queue)
        self._expire_due(q)
        return len(q.ready)

    def stats(self) -> base.TransportStats:
        """A snapshot of this transport's counters."""
        return self._stats.snapshot()

    # Quiescence

    def in_flight(self) -> int:
        """Work the broker still has (0: idle).

        Messages ready on consumed queues or waiting for a retry, deliveries
        not settled yet, requests waiting for their reply.
        """
        return self._activity.live

    def is_idle(self) -> bool:
        """Whether nothing is left to do (`in_flight() == 0`).

        No message ready on a consumed queue (held or not), none waiting for
        a retry, no delivery unsettled, no request unanswered.
        """
        return self._activity.live == 0

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Block until `is_idle`; raise `TimeoutError`, saying what is still in flight, after `timeout`."""
        activity = self._activity
        with activity.changed:
            activity.waiters += 1
            try:
                if activity.changed.wait_for(lambda: activity.live == 0, timeout):
                    return
            finally:
                activity.waiters -= 1
        raise TimeoutError(f"{self.url}: not idle after {timeout}s: {self._describe_activity()}")

    def _describe_activity(self) -> str:
        """What keeps the broker busy, for error messages (a snapshot taken queue by queue)."""
        with self._lock:
            queues = sorted(self._queues.values(), key=lambda q: q.name)
            consumers = list(self._consumers)
            calls = len(self._calls)
        held = self._stepper.held()
        parts = []
        for q in queues:
            with q.lock:
                counted, ready = q.counted, len(q.ready)
            if counted and ready:
                what = "waiting for a retry" if q.ttl is not None else "ready"
                parts.append(f"{q.name}: {ready} {what}{' (held)' if q.name in held else ''}")
        for c in consumers:
            with c._q.lock:
                unsettled = c._unsettled - c._settled_here
            if unsettled > 0:
                parts.append(f"{c.queue}: {unsettled} delivered to {c!r}, not settled")
        if calls:
            parts.append(f"{calls} request(s) waiting for a reply")
        return f"{self._activity.live} in flight ({'; '.join(parts) or 'settling'})"

    def close(self, timeout: float = 10.0) -> None:
        """Cancel every consumer (letting in-flight deliveries settle), stop the scheduler, fail calls."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            consumers = list(self._consumers)
        deadline = time.monotonic() + timeout
        for consumer in consumers:  # all stop at once, so that they drain side by side
            consumer._stop()
        for consumer in consumers:
            consumer.cancel(max(0.0, deadline - time.monotonic()))
        self._scheduler.stop(max(0.0, deadline - time.monotonic()))
        with self._lock:
            waiters = list(self._calls.values())
        for waiter in waiters:
            waiter.resolve(None)

    def __enter__(self) -> Transport:
        return self

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed(f"{self.url}: closed")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        mode = ", stepping" if self.stepping else ""
        return f"<memory Transport {self.url}, {len(self._queues)} queues{mode}, {state}>"
