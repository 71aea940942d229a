"""Lifecycle: cancel and close drain in-flight work, a closed transport refuses work, no thread is left."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from transports import (
    Delivery,
    Message,
    Queue,
    Requeue,
    RetryPolicy,
    Topology,
    Transport,
    TransportClosed,
    TransportStats,
)

from .sandbox import PATIENCE, Inbox, Sandbox, in_background, wait_until

BLOCKED = 0.3
"""Seconds a test checks that a drain is still waiting for a running handler."""


class SlowHandler:
    """A handler that, on its first delivery, keeps working until the test releases it."""

    def __init__(self) -> None:
        self.calls = Inbox()
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def __call__(self, delivery: Delivery) -> None:
        """Record the delivery; the first one waits for `release`."""
        self.calls(delivery)
        if not self.started.is_set():
            self.started.set()
            self.release.wait(PATIENCE)
            self.finished.set()


def drain_while_handler_runs(action: Callable[[], None], handler: SlowHandler) -> None:
    """Run `action` (close or cancel) while `handler` works: it must wait for it, then return."""
    assert handler.started.wait(PATIENCE), "the handler never started"
    thread, errors = in_background(action, "drain")
    try:
        thread.join(BLOCKED)
        assert thread.is_alive(), "it returned while a handler was still running"
        assert not handler.finished.is_set()
    finally:
        handler.release.set()
        thread.join(PATIENCE)
    assert not thread.is_alive(), f"it did not return within {PATIENCE} s of the handler finishing"
    assert errors == []
    assert handler.finished.is_set()


def test_close_lets_an_in_flight_handler_finish_and_acknowledges_its_message(sandbox: Sandbox) -> None:
    transport = sandbox.open(prefetch=1)
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    handler = SlowHandler()
    transport.consume(sandbox.name("jobs"), handler)
    for body in (b"A", b"B"):
        transport.publish("", sandbox.name("jobs"), Message(body)).result(timeout=PATIENCE)

    drain_while_handler_runs(lambda: transport.close(timeout=PATIENCE), handler)

    assert handler.calls.bodies == [b"A"]
    assert transport.stats().acked == 1
    if not sandbox.shared_broker:
        return  # the broker closed with its transport: nothing left to look at
    # On another transport: A was acknowledged (not back in the queue), B was never taken.
    observer = sandbox.another()
    assert observer.queue_size(sandbox.name("jobs")) == 1
    inbox = Inbox()
    observer.consume(sandbox.name("jobs"), inbox)
    [delivery] = inbox.wait_for(1)
    assert (delivery.body, delivery.redelivered) == (b"B", False)


def test_cancelling_a_consumer_lets_its_in_flight_handler_finish_and_acknowledges_its_message(
    sandbox: Sandbox,
) -> None:
    transport = sandbox.open(prefetch=1)
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    handler = SlowHandler()
    consumer = transport.consume(sandbox.name("jobs"), handler)
    for body in (b"A", b"B"):
        transport.publish("", sandbox.name("jobs"), Message(body)).result(timeout=PATIENCE)

    drain_while_handler_runs(lambda: consumer.cancel(timeout=PATIENCE), handler)

    assert transport.stats().acked == 1
    # The transport carries on; the cancelled consumer receives nothing more.
    transport.publish("", sandbox.name("jobs"), Message(b"C")).result(timeout=PATIENCE)
    assert transport.queue_size(sandbox.name("jobs")) == 2
    inbox = Inbox()
    transport.consume(sandbox.name("jobs"), inbox)
    assert sorted(d.body for d in inbox.wait_for(2)) == [b"B", b"C"]
    assert all(not d.redelivered for d in inbox.deliveries)
    assert handler.calls.bodies == [b"A"]


def test_close_waits_for_outstanding_confirms(sandbox: Sandbox) -> None:
    transport = sandbox.open()
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    futures = [transport.publish("", sandbox.name("jobs"), Message(b"%d" % i)) for i in range(500)]

    transport.close(timeout=PATIENCE)

    assert all(future.done() for future in futures)
    confirmed = sum(1 for future in futures if future.exception(timeout=0) is None)
    assert confirmed == 500
    if sandbox.shared_broker:  # otherwise the broker closed with its transport
        assert sandbox.another().queue_size(sandbox.name("jobs")) == 500


def test_a_closed_transport_refuses_to_publish(sandbox: Sandbox) -> None:
    transport = sandbox.open()
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    transport.close(timeout=PATIENCE)

    # Raised by publish itself or through its future: either way the caller sees it.
    with pytest.raises(TransportClosed):
        transport.publish("", sandbox.name("jobs"), Message(b"late")).result(timeout=PATIENCE)


def test_close_leaves_no_thread_of_the_transport_running(sandbox: Sandbox) -> None:
    before = set(threading.enumerate())
    transport = sandbox.open()
    sandbox.declare(Topology(queues=[Queue("jobs"), Queue("users")]))
    inbox = Inbox()
    transport.consume(sandbox.name("jobs"), inbox)
    transport.serve(sandbox.name("users"), lambda delivery: b"ok")
    transport.publish("", sandbox.name("jobs"), Message(b"job")).result(timeout=PATIENCE)
    assert transport.call("", sandbox.name("users"), Message(b"ping"), timeout=PATIENCE).body == b"ok"
    inbox.wait_for(1)

    transport.close(timeout=PATIENCE)

    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []


def test_stats_count_what_the_transport_did(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(
        Topology(
            queues=[Queue("jobs")], retry=RetryPolicy(max_attempts=2, initial_delay=0.02, multiplier=1.0)
        )
    )
    seen: set[bytes] = set()

    def handler(delivery: Delivery) -> None:
        first_time = delivery.body not in seen
        seen.add(delivery.body)
        if delivery.body == b"requeue" and first_time:
            raise Requeue("once more")
        if delivery.body == b"fail":
            raise ValueError("always")

    futures = [transport.publish("", sandbox.name("jobs"), Message(b)) for b in (b"ok", b"requeue", b"fail")]
    unroutable = transport.publish("", sandbox.name("nowhere"), Message(b"lost"))
    for future in futures:
        future.result(timeout=PATIENCE)
    assert unroutable.exception(timeout=PATIENCE) is not None
    assert transport.stats() == TransportStats(published=3, unroutable=1)

    transport.consume(sandbox.name("jobs"), handler)

    # ok: 1 delivery, acked; requeue: 2 deliveries (the second redelivered), one requeue, one ack;
    # fail: 2 deliveries, one retry republished and acked, then dead-lettered (republished) and acked.
    expected = TransportStats(
        published=5, unroutable=1, delivered=5, redelivered=1, acked=4, requeued=1, retried=1, dead_lettered=1
    )
    wait_until(
        lambda: transport.stats() == expected, f"the counters read {expected}", observe=transport.stats
    )
    assert transport.stats() == expected
