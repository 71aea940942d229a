"""The memory transport's stepping mode, fault injection and quiescence (memory only).

Stepping: event deliveries run one at a time when the test says, faults on
demand, request/reply still running by itself. Quiescence: `is_idle` and
`wait_until_idle` know when every accepted message has been settled.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transports import (
    Binding,
    Delivery,
    Exchange,
    ExchangeType,
    Message,
    PermanentError,
    Queue,
    Requeue,
    RetryPolicy,
    Topology,
    TopologyError,
    dead_letter_queue_name,
    dead_letter_reason,
    retry_queue_name,
)
from transports import connect as connect_transport
from transports import message as headers
from transports.memory import (
    Consumer,
    Fault,
    InjectedCrash,
    Outcome,
    StaleStep,
    Step,
    StepKind,
    StepOutcome,
    SteppingError,
    StepTimeout,
    Transport,
)

from .sandbox import PATIENCE, Inbox, in_background

SLOW_RETRIES = RetryPolicy(max_attempts=3, initial_delay=0.001, multiplier=1.0)
"""Retries due almost at once: in stepping mode they must wait for their release step all the same."""
FAST_RETRIES = RetryPolicy(max_attempts=3, initial_delay=0.02, multiplier=1.0)


@pytest.fixture
def stepped() -> Iterator[Transport]:
    """A stepping memory transport with queues `a`, `b` and `c` behind a topic exchange `events`."""
    transport = Transport(stepping=True)
    transport.declare(
        Topology(
            exchanges=[Exchange("events", ExchangeType.TOPIC)],
            queues=[Queue("a"), Queue("b"), Queue("c")],
            bindings=[
                Binding("events", "a", "to.a"),
                Binding("events", "b", "to.b"),
                Binding("events", "c", "to.c"),
            ],
            retry=SLOW_RETRIES,
        )
    )
    yield transport
    transport.close()


@pytest.fixture
def threaded() -> Iterator[Transport]:
    """A threaded memory transport with queues `a`, `b`, `c` and fast retries."""
    transport = Transport()
    transport.declare(Topology(queues=[Queue("a"), Queue("b"), Queue("c")], retry=FAST_RETRIES))
    yield transport
    transport.close()


def send(transport: Transport, queue: str, message_id: str, body: bytes = b"x") -> None:
    transport.publish("", queue, Message(body, message_id=message_id)).result(timeout=PATIENCE)


def ids(inbox: Inbox) -> list[str | None]:
    return [d.message.message_id for d in inbox.deliveries]


def deliver(queue: str, message_id: str, attempt: int = 1, redelivered: bool = False) -> Step:
    return Step(StepKind.DELIVER, queue, message_id, attempt, redelivered)


# Stepping: nothing moves until the test runs it


@pytest.mark.parametrize("how", ["option", "url"])
def test_stepping_delivers_nothing_until_run(how: str) -> None:
    transport = Transport(stepping=True) if how == "option" else Transport("memory://?stepping=1")
    with transport:
        transport.declare(Topology(queues=[Queue("a")]))
        inbox = Inbox()
        transport.consume("a", inbox)
        send(transport, "a", "m-1")

        assert transport.stepping
        assert inbox.deliveries == []
        assert transport.queue_size("a") == 1
        assert not transport.is_idle()
        [step] = transport.pending()
        assert step == deliver("a", "m-1")

        outcome = transport.run(step)

        assert outcome.outcome is Outcome.ACKED and outcome.handled and outcome.error is None
        assert ids(inbox) == ["m-1"]
        assert transport.pending() == [] and transport.is_idle()
        assert (transport.stats().delivered, transport.stats().acked) == (1, 1)


def test_connect_passes_stepping_through_and_the_url_is_checked() -> None:
    with connect_transport("memory://", stepping=True) as transport:
        assert isinstance(transport, Transport) and transport.stepping
    assert not Transport("memory://?stepping=0").stepping
    with pytest.raises(ValueError, match="stepping"):
        Transport("memory://?stepping=maybe")


def test_pending_lists_each_queue_head_in_a_deterministic_order(stepped: Transport) -> None:
    for queue in ("c", "a", "b"):
        stepped.consume(queue, Inbox())
    send(stepped, "c", "c-1")
    send(stepped, "a", "a-1")
    send(stepped, "b", "b-1")
    send(stepped, "a", "a-2")

    assert stepped.pending() == [deliver("a", "a-1"), deliver("b", "b-1"), deliver("c", "c-1")]
    assert repr(stepped.pending()[0]) == "Step('deliver', 'a', 'a-1', attempt=1)"


def test_only_the_head_of_a_queue_can_run_so_a_queue_keeps_its_order(stepped: Transport) -> None:
    inbox = Inbox()
    stepped.consume("a", inbox)
    for n in range(3):
        send(stepped, "a", f"m-{n}")

    with pytest.raises(StaleStep):
        stepped.run(deliver("a", "m-1"))  # not the head
    while steps := stepped.pending():
        assert len(steps) == 1
        stepped.run(steps[0])

    assert ids(inbox) == ["m-0", "m-1", "m-2"]
    with pytest.raises(StaleStep):
        stepped.run(deliver("a", "m-0"))  # already run


def test_a_queue_nobody_consumes_has_no_steps(stepped: Transport) -> None:
    send(stepped, "a", "m-1")
    assert stepped.pending() == []
    assert stepped.is_idle()  # a message at rest where nobody consumes is no work
    stepped.consume("a", Inbox())
    assert stepped.pending() == [deliver("a", "m-1")]
    assert not stepped.is_idle()


def test_what_a_handler_publishes_is_pending_when_run_returns(stepped: Transport) -> None:
    def relay(delivery: Delivery) -> None:
        stepped.publish("events", "to.b", Message(b"next", message_id="b-1")).result(timeout=PATIENCE)

    stepped.consume("a", relay)
    stepped.consume("b", Inbox())
    send(stepped, "a", "a-1")

    stepped.run(stepped.pending()[0])

    assert stepped.pending() == [deliver("b", "b-1")]


def test_run_waits_for_the_future_the_handler_returns(stepped: Transport) -> None:
    worker = ThreadPoolExecutor(max_workers=1)  # as an actor's thread would
    called = threading.Event()
    finish = threading.Event()

    def handler(delivery: Delivery) -> Future[None]:
        called.set()

        def work() -> None:
            assert finish.wait(PATIENCE)
            stepped.publish("", "b", Message(b"done", message_id="b-1")).result(timeout=PATIENCE)

        return worker.submit(work)

    stepped.consume("a", handler)
    stepped.consume("b", Inbox())
    send(stepped, "a", "a-1")
    outcomes = []
    runner, errors = in_background(lambda: outcomes.append(stepped.run(stepped.pending()[0])), "runner")

    assert called.wait(PATIENCE)
    assert outcomes == [] and not stepped.is_idle()
    finish.set()
    runner.join(PATIENCE)

    assert errors == []
    assert outcomes[0].outcome is Outcome.ACKED
    assert stepped.pending() == [deliver("b", "b-1")]
    worker.shutdown()


def test_a_failed_future_is_retried_with_its_error(stepped: Transport) -> None:
    def handler(delivery: Delivery) -> Future[None]:
        future: Future[None] = Future()
        future.set_exception(ValueError("ledger offline"))
        return future

    stepped.consume("a", handler)
    send(stepped, "a", "a-1")

    outcome = stepped.run(stepped.pending()[0])

    assert outcome.outcome is Outcome.RETRIED
    assert isinstance(outcome.error, ValueError)
    assert "ledger offline" in repr(outcome)


def test_a_future_that_never_completes_times_out_and_settles_when_it_does(stepped: Transport) -> None:
    future: Future[None] = Future()
    stepped.consume("a", lambda _d: future)
    send(stepped, "a", "a-1")

    with pytest.raises(StepTimeout):
        stepped.run(stepped.pending()[0], timeout=0.01)

    assert stepped.in_flight() == 1 and stepped.pending() == []
    future.set_result(None)
    assert stepped.is_idle() and stepped.stats().acked == 1


def test_run_reports_each_settlement(stepped: Transport) -> None:
    def handler(delivery: Delivery) -> None:
        if delivery.body == b"requeue" and not delivery.redelivered:
            raise Requeue()
        if delivery.body == b"fail":
            raise ValueError("boom")
        if delivery.body == b"refuse":
            raise PermanentError("no such gig")

    stepped.consume("a", handler)
    for body in (b"ok", b"requeue", b"fail", b"refuse"):
        send(stepped, "a", body.decode(), body)

    outcomes = [stepped.run(stepped.pending()[0]).outcome for _ in range(5)]

    assert outcomes == [
        Outcome.ACKED,
        Outcome.REQUEUED,
        Outcome.ACKED,
        Outcome.RETRIED,
        Outcome.DEAD_LETTERED,
    ]
    assert stepped.queue_size(dead_letter_queue_name("a")) == 1
    assert stepped.queue_size(retry_queue_name("a", 1)) == 1


def test_an_undecodable_message_is_dead_lettered_without_the_handler(stepped: Transport) -> None:
    def decode(message: Message) -> object:
        raise ValueError("not json")

    inbox = Inbox()
    stepped.consume("a", inbox, decode=decode)
    send(stepped, "a", "a-1")

    outcome = stepped.run(stepped.pending()[0])

    assert (outcome.outcome, outcome.handled, inbox.deliveries) == (Outcome.DEAD_LETTERED, False, [])


# Faults


def test_duplicate_delivers_the_message_twice_the_second_time_redelivered(stepped: Transport) -> None:
    inbox = Inbox()
    stepped.consume("a", inbox)
    send(stepped, "a", "m-1")
    send(stepped, "a", "m-2")

    first = stepped.run(stepped.pending()[0], Fault.DUPLICATE)

    assert first.outcome is Outcome.ACKED and first.fault is Fault.DUPLICATE
    assert stepped.pending() == [deliver("a", "m-1", redelivered=True)]  # at the head, before m-2
    stepped.run_all()
    assert [(d.message.message_id, d.redelivered) for d in inbox.deliveries] == [
        ("m-1", False),
        ("m-1", True),
        ("m-2", False),
    ]
    assert stepped.faults_applied()[Fault.DUPLICATE] == 1
    stats = stepped.stats()
    assert (stats.delivered, stats.redelivered, stats.acked) == (3, 1, 3)


def test_crash_goes_to_the_retry_queue_and_its_release_brings_it_back_with_attempt_2(
    stepped: Transport,
) -> None:
    inbox = Inbox()
    stepped.consume("a", inbox)
    send(stepped, "a", "m-1")

    crashed = stepped.run(stepped.pending()[0], Fault.CRASH)

    assert crashed.outcome is Outcome.RETRIED and not crashed.handled
    assert isinstance(crashed.error, InjectedCrash)
    assert inbox.deliveries == []
    [release] = stepped.pending()
    assert release == Step(StepKind.RELEASE, retry_queue_name("a", 1), "m-1", attempt=2)
    assert stepped.run(release).outcome is Outcome.RELEASED
    assert stepped.pending() == [deliver("a", "m-1", attempt=2)]
    stepped.run(stepped.pending()[0])
    [delivery] = inbox.deliveries
    assert (delivery.attempt, delivery.headers[headers.ERROR]) == (2, f"InjectedCrash: {crashed.error}")
    assert stepped.is_idle()


def test_crash_at_the_last_attempt_dead_letters(stepped: Transport) -> None:
    stepped.consume("a", Inbox())
    send(stepped, "a", "m-1")

    outcomes = []
    for _ in range(SLOW_RETRIES.max_attempts):
        outcomes.append(stepped.run(stepped.pending()[0], Fault.CRASH).outcome)
        if stepped.pending():
            stepped.run(stepped.pending()[0])  # the release

    assert outcomes == [Outcome.RETRIED, Outcome.RETRIED, Outcome.DEAD_LETTERED]
    dlq = dead_letter_queue_name("a")
    inbox = Inbox()
    stepped.consume(dlq, inbox)
    stepped.run_all()
    assert dead_letter_reason(inbox.deliveries[0].message) == "retries-exhausted"
    assert stepped.faults_applied()[Fault.CRASH] == 3


def test_redeliver_runs_the_handler_and_the_message_comes_back_redelivered(stepped: Transport) -> None:
    inbox = Inbox()
    stepped.consume("a", inbox)
    send(stepped, "a", "m-1")
    send(stepped, "a", "m-2")

    outcome = stepped.run(stepped.pending()[0], Fault.REDELIVER)

    assert (outcome.outcome, outcome.handled) == (Outcome.REDELIVERED, True)
    assert ids(inbox) == ["m-1"]
    assert stepped.pending() == [deliver("a", "m-1", redelivered=True)]
    stepped.run_all()
    assert [(d.message.message_id, d.redelivered) for d in inbox.deliveries] == [
        ("m-1", False),
        ("m-1", True),
        ("m-2", False),
    ]
    stats = stepped.stats()
    assert (stats.delivered, stats.acked) == (3, 2)  # the lost ack was never counted


def test_redeliver_of_a_failing_delivery_keeps_its_retry(stepped: Transport) -> None:
    def fail(delivery: Delivery) -> None:
        raise ValueError("boom")

    stepped.consume("a", fail)
    send(stepped, "a", "m-1")

    stepped.run(stepped.pending()[0], Fault.REDELIVER)

    # The retry was published before the ack that got lost: both copies exist, as on RabbitMQ.
    assert stepped.pending() == [
        deliver("a", "m-1", redelivered=True),
        Step(StepKind.RELEASE, retry_queue_name("a", 1), "m-1", attempt=2),
    ]


def test_faults_apply_to_deliveries_only(stepped: Transport) -> None:
    stepped.consume("a", Inbox())
    send(stepped, "a", "m-1")
    stepped.run(stepped.pending()[0], Fault.CRASH)

    with pytest.raises(SteppingError, match="deliveries"):
        stepped.run(stepped.pending()[0], Fault.DUPLICATE)
    assert stepped.faults_applied() == {Fault.DUPLICATE: 0, Fault.CRASH: 1, Fault.REDELIVER: 0}


# Holding and reordering


def test_hold_and_release_reorder_deliveries_across_queues(stepped: Transport) -> None:
    order: list[str | None] = []

    def record(delivery: Delivery) -> None:
        order.append(delivery.message.message_id)

    stepped.consume("a", record)
    stepped.consume("b", record)
    send(stepped, "a", "a-1")
    send(stepped, "a", "a-2")
    send(stepped, "b", "b-1")

    stepped.hold("a")
    assert stepped.held() == frozenset({"a"})
    assert stepped.pending() == [deliver("b", "b-1")]
    with pytest.raises(StaleStep, match="held"):
        stepped.run(deliver("a", "a-1"))
    stepped.run_all()
    assert not stepped.is_idle()  # a held queue's messages are still work to do
    stepped.release("a")
    stepped.run_all()

    assert order == ["b-1", "a-1", "a-2"]  # published first, delivered last; a kept its own order
    assert stepped.held() == frozenset() and stepped.is_idle()


def test_a_retry_queue_can_be_held_by_its_name(stepped: Transport) -> None:
    stepped.consume("a", Inbox())
    send(stepped, "a", "m-1")
    stepped.run(stepped.pending()[0], Fault.CRASH)

    stepped.hold(retry_queue_name("a", 1))

    assert stepped.pending() == []
    assert not stepped.is_idle()


# Retries wait for their step


def test_a_retry_is_released_by_a_step_not_by_a_timer(stepped: Transport) -> None:
    stepped.consume("a", Inbox())
    send(stepped, "a", "m-1")
    stepped.run(stepped.pending()[0], Fault.CRASH)
    retry_queue = retry_queue_name("a", 1)

    threading.Event().wait(20 * SLOW_RETRIES.initial_delay)  # long past the retry's delay

    # queue_size dead-letters whatever is due: a timed retry would have gone back to `a` by now.
    assert (stepped.queue_size(retry_queue), stepped.queue_size("a")) == (1, 0)
    assert [s.kind for s in stepped.pending()] == [StepKind.RELEASE]
    assert not stepped.is_idle()


def test_retries_waiting_together_can_be_released_in_any_order(stepped: Transport) -> None:
    inbox = Inbox()
    stepped.consume("a", inbox)
    send(stepped, "a", "m-1")
    send(stepped, "a", "m-2")
    stepped.run(stepped.pending()[0], Fault.CRASH)
    stepped.run(stepped.pending()[0], Fault.CRASH)
    retry_queue = retry_queue_name("a", 1)
    assert stepped.pending() == [
        Step(StepKind.RELEASE, retry_queue, "m-1", attempt=2),
        Step(StepKind.RELEASE, retry_queue, "m-2", attempt=2, position=1),
    ]

    stepped.run(stepped.pending()[1])
    stepped.run_all()

    assert ids(inbox) == ["m-2", "m-1"]


# Request/reply runs by itself


def test_request_reply_runs_by_itself_while_event_consumers_are_stepped() -> None:
    with Transport(stepping=True) as transport:
        transport.declare(Topology(queues=[Queue("rpc"), Queue("events")], retry=FAST_RETRIES))
        events = Inbox()
        transport.consume("events", events)
        tries: list[int] = []

        def respond(request: Delivery) -> bytes:
            tries.append(request.attempt)
            if request.attempt == 1:
                raise ValueError("try again")  # a served queue's retry keeps its timer
            transport.publish("", "events", Message(b"happened", message_id="e-1")).result(timeout=PATIENCE)
            return b"pong:" + request.body

        transport.serve("rpc", respond)

        reply = transport.call("", "rpc", Message(b"ping"), timeout=PATIENCE)

        assert reply.body == b"pong:ping" and tries == [1, 2]
        assert events.deliveries == []
        assert transport.pending() == [deliver("events", "e-1")]
        transport.run_all()
        assert ids(events) == ["e-1"] and transport.is_idle()


# Quiescence


def test_stepping_is_idle_only_once_every_step_ran(stepped: Transport) -> None:
    def relay(delivery: Delivery) -> None:
        stepped.publish("", "b", Message(b"next", message_id="b-1")).result(timeout=PATIENCE)

    stepped.consume("a", relay)
    stepped.consume("b", Inbox())
    send(stepped, "a", "a-1")
    counts = [stepped.in_flight()]
    while steps := stepped.pending():
        stepped.run(steps[0])
        counts.append(stepped.in_flight())

    assert counts == [1, 1, 0]
    assert stepped.is_idle()
    stepped.wait_until_idle(timeout=0)


def test_the_stepping_interface_needs_stepping_mode(threaded: Transport) -> None:
    with pytest.raises(SteppingError, match="stepping"):
        threaded.pending()
    with pytest.raises(SteppingError):
        threaded.hold("a")
    assert threaded.held() == frozenset()


def test_only_a_declared_queue_can_be_held(stepped: Transport) -> None:
    with pytest.raises(TopologyError):
        stepped.hold("nowhere")


def cascade(transport: Transport, fail_first: bool = False) -> Inbox:
    """`a` publishes two to `b`, `b` one to `c` (through a worker's future); what `c` received."""
    worker = ThreadPoolExecutor(max_workers=2)
    leaves = Inbox()

    def a(delivery: Delivery) -> None:
        for n in range(2):
            transport.publish("", "b", Message(delivery.body + b".%d" % n)).result(timeout=PATIENCE)

    def b(delivery: Delivery) -> Future[None]:
        if fail_first and delivery.attempt == 1:
            raise ValueError("retry me")
        return worker.submit(
            lambda: transport.publish("", "c", Message(delivery.body + b".c")).result(timeout=PATIENCE)
        )

    transport.consume("a", a)
    transport.consume("b", b)
    transport.consume("c", leaves)
    return leaves


@pytest.mark.parametrize("fail_first", [False, True], ids=["straight", "with-retries"])
def test_wait_until_idle_returns_once_a_whole_cascade_settled(threaded: Transport, fail_first: bool) -> None:
    leaves = cascade(threaded, fail_first)

    for n in range(50):
        threaded.publish("", "a", Message(b"%d" % n))
    threaded.wait_until_idle(timeout=PATIENCE)

    assert len(leaves.deliveries) == 100  # at once: nothing was still under way
    assert threaded.is_idle() and threaded.in_flight() == 0
    stats = threaded.stats()
    retries = 100 if fail_first else 0
    assert stats.delivered == stats.acked == 50 + 100 + retries + 100
    assert stats.retried == retries


def test_a_dead_letter_nobody_reads_does_not_keep_the_broker_busy(threaded: Transport) -> None:
    def refuse(delivery: Delivery) -> None:
        raise PermanentError("no")

    threaded.consume("a", refuse)
    threaded.publish("", "a", Message(b"x"))

    threaded.wait_until_idle(timeout=PATIENCE)

    assert threaded.queue_size(dead_letter_queue_name("a")) == 1


def test_wait_until_idle_times_out_saying_what_is_in_flight(threaded: Transport) -> None:
    unblock = threading.Event()
    started = threading.Event()

    def stuck(delivery: Delivery) -> None:
        started.set()
        assert unblock.wait(PATIENCE)

    threaded.consume("a", stuck, prefetch=1)
    threaded.publish("", "a", Message(b"1"))
    threaded.publish("", "a", Message(b"2"))
    assert started.wait(PATIENCE)

    with pytest.raises(TimeoutError) as raised:
        threaded.wait_until_idle(timeout=0.05)

    text = str(raised.value)
    assert "2 in flight" in text and "a: 1 ready" in text and "not settled" in text
    unblock.set()
    threaded.wait_until_idle(timeout=PATIENCE)


def test_a_request_waiting_for_its_reply_is_in_flight(threaded: Transport) -> None:
    unblock = threading.Event()
    started = threading.Event()

    def slow(request: Delivery) -> bytes:
        started.set()
        assert unblock.wait(PATIENCE)
        return b"ok"

    threaded.serve("a", slow)
    replies: list[bytes] = []
    caller, errors = in_background(
        lambda: replies.append(threaded.call("", "a", Message(b"?"), timeout=PATIENCE).body), "caller"
    )
    assert started.wait(PATIENCE)

    with pytest.raises(TimeoutError, match="request"):
        threaded.wait_until_idle(timeout=0.01)
    unblock.set()
    caller.join(PATIENCE)
    threaded.wait_until_idle(timeout=PATIENCE)
    assert (errors, replies) == ([], [b"ok"])


def test_a_consumer_cancelled_from_its_own_handler_during_a_step_does_not_wait_for_itself(
    stepped: Transport,
) -> None:
    consumers: list[Consumer] = []

    def cancel_self(delivery: Delivery) -> None:
        consumers[0].cancel(timeout=PATIENCE)

    consumers.append(stepped.consume("a", cancel_self))
    send(stepped, "a", "m-1")
    send(stepped, "a", "m-2")

    assert stepped.run(stepped.pending()[0]).outcome is Outcome.ACKED

    assert stepped.pending() == []
    assert stepped.is_idle()  # m-2 rests: nobody consumes `a` any more


# Determinism and the property: whatever the steps and faults, nothing is lost


MAX_ATTEMPTS = 3
AGAIN = (Fault.DUPLICATE, Fault.REDELIVER)
CHAIN = {"a": "b", "b": "c"}
"""Each message handled on `a` publishes one to `b`, each on `b` one to `c`."""


def chain_system() -> tuple[Transport, dict[str, set[str]], list[str]]:
    """A stepping transport whose handlers relay along `CHAIN`; who handled what; what was published."""
    transport = Transport(stepping=True)
    transport.declare(
        Topology(
            exchanges=[Exchange("events", ExchangeType.TOPIC)],
            queues=[Queue(q) for q in ("a", "b", "c", "audit")],
            bindings=[Binding("events", q, f"to.{q}") for q in ("a", "b", "c")]
            + [Binding("events", "audit", "#")],
            retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_delay=60.0),
        )
    )
    handled: dict[str, set[str]] = defaultdict(set)
    published: list[str] = []

    def handler_for(queue: str) -> Callable[[Delivery], None]:
        def handle(delivery: Delivery) -> None:
            message_id = str(delivery.message.message_id)
            handled[queue].add(message_id)
            if queue in CHAIN:
                follow_up = f"{message_id}>{CHAIN[queue]}"
                published.append(follow_up)
                transport.publish("events", f"to.{CHAIN[queue]}", Message(b"", message_id=follow_up))

        return handle

    for queue in ("a", "b", "c", "audit"):
        transport.consume(queue, handler_for(queue))
    return transport, handled, published


def test_the_same_choices_give_the_same_run() -> None:
    def trace(seed: int) -> list[str]:
        chooser = random.Random(seed)
        transport, _, _ = chain_system()
        with transport:
            for n in range(4):
                transport.publish("events", "to.a", Message(b"", message_id=f"m{n}"))
            lines = []
            while steps := transport.pending():
                step = chooser.choice(steps)
                fault = chooser.choice([None, Fault.DUPLICATE, Fault.REDELIVER])
                if step.kind is StepKind.RELEASE:
                    fault = None
                elif step.attempt < MAX_ATTEMPTS and chooser.random() < 0.2:
                    fault = Fault.CRASH
                lines.append(repr(transport.run(step, fault)))
            return lines

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


@given(st.data())
def test_whatever_the_steps_and_faults_every_message_is_handled_and_nothing_is_left(
    data: st.DataObject,
) -> None:
    transport, handled, published = chain_system()
    with transport:
        originals = [f"m{n}" for n in range(data.draw(st.integers(1, 3), label="messages"))]
        for message_id in originals:
            transport.publish("events", "to.a", Message(b"", message_id=message_id))
        applied: dict[Fault, int] = defaultdict(int)
        outcomes: list[StepOutcome] = []

        for _ in range(data.draw(st.integers(0, 40), label="actions")):
            action = data.draw(st.sampled_from(["step", "step", "step", "hold", "release"]), label="action")
            if action == "hold":
                transport.hold(data.draw(st.sampled_from(["a", "b", "c", "audit"]), label="hold"))
                continue
            if action == "release":
                if transport.held():
                    transport.release(data.draw(st.sampled_from(sorted(transport.held())), label="release"))
                continue
            steps = transport.pending()
            if not steps:
                continue
            step = data.draw(st.sampled_from(steps), label="step")
            faults: list[Fault | None] = [None]
            if step.kind is StepKind.DELIVER:
                faults += [Fault.DUPLICATE, Fault.REDELIVER]
                if step.attempt < MAX_ATTEMPTS:  # a crash at the last attempt would dead-letter it
                    faults.append(Fault.CRASH)
            fault = data.draw(st.sampled_from(faults), label="fault")
            outcomes.append(transport.run(step, fault))
            if fault is not None:
                applied[fault] += 1

        for queue in transport.held():
            transport.release(queue)
        outcomes += transport.run_all()

        assert transport.is_idle() and transport.in_flight() == 0
        assert handled["a"] == set(originals)
        assert handled["b"] == {f"{m}>b" for m in originals}
        assert handled["c"] == {f"{m}>b>c" for m in originals}
        assert handled["audit"] == set(originals) | set(published)  # every id reached a handler
        for queue in ("a", "b", "c", "audit"):
            assert transport.queue_size(dead_letter_queue_name(queue)) == 0
        assert transport.faults_applied() == {fault: applied[fault] for fault in Fault}
        # Each DUPLICATE or REDELIVER put one copy back, and each copy was delivered once more.
        copies = Counter((o.step.queue, o.step.message_id) for o in outcomes if o.fault in AGAIN)
        redeliveries = Counter((o.step.queue, o.step.message_id) for o in outcomes if o.step.redelivered)
        assert redeliveries == copies
        stats = transport.stats()
        # Every delivery was acknowledged, except those whose ack the REDELIVER fault lost.
        assert stats.delivered == stats.acked + applied[Fault.REDELIVER]
