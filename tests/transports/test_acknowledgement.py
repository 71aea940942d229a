"""Acknowledgement: after the handler succeeds, put back on request, never beyond the prefetch bound."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from transports import Delivery, Message, Queue, Requeue, Topology, Transport

from .sandbox import PATIENCE, Inbox, Sandbox, wait_until


class PendingWork:
    """A handler that hands each delivery to 'another thread': it returns a future the test completes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: list[tuple[Delivery, Future[None]]] = []
        self.handled: list[bytes] = []
        self.most_outstanding = 0

    def __call__(self, delivery: Delivery) -> Future[None]:
        """Start work on `delivery`; it is settled when the test completes the returned future."""
        future: Future[None] = Future()
        with self._lock:
            self.pending.append((delivery, future))
            self.most_outstanding = max(self.most_outstanding, len(self.pending))
        return future

    @property
    def outstanding(self) -> int:
        """Deliveries handed over and not yet completed."""
        with self._lock:
            return len(self.pending)

    def complete_oldest(self) -> None:
        """Finish the oldest outstanding delivery successfully."""
        with self._lock:
            delivery, future = self.pending.pop(0)
            self.handled.append(delivery.body)
        future.set_result(None)


def test_a_message_handled_successfully_is_acknowledged(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    inbox = Inbox()
    consumer = transport.consume(sandbox.name("jobs"), inbox)

    transport.publish("", sandbox.name("jobs"), Message(b"job")).result(timeout=PATIENCE)
    inbox.wait_for(1)
    wait_until(lambda: transport.stats().acked == 1, "the delivery is acknowledged")
    consumer.cancel(timeout=PATIENCE)

    # Acknowledged, so nothing goes back to the queue once the consumer is gone.
    observer = sandbox.another()
    assert observer.queue_size(sandbox.name("jobs")) == 0
    assert len(inbox.deliveries) == 1


def test_a_returned_future_settles_the_message_only_when_it_completes(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    work = PendingWork()
    transport.consume(sandbox.name("jobs"), work)

    transport.publish("", sandbox.name("jobs"), Message(b"job")).result(timeout=PATIENCE)
    wait_until(lambda: work.outstanding == 1, "the handler has the delivery")
    assert transport.stats().acked == 0

    work.complete_oldest()

    wait_until(lambda: transport.stats().acked == 1, "the delivery is acknowledged")
    assert transport.queue_size(sandbox.name("jobs")) == 0


def test_requeue_puts_the_message_back_and_it_comes_again_marked_redelivered(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    inbox = Inbox()

    def handler(delivery: Delivery) -> None:
        inbox(delivery)
        if len(inbox.deliveries) == 1:
            raise Requeue("not now")

    transport.consume(sandbox.name("jobs"), handler)
    transport.publish("", sandbox.name("jobs"), Message(b"job", message_id="m-1")).result(timeout=PATIENCE)

    first, second = inbox.wait_for(2)
    assert (first.body, first.redelivered) == (b"job", False)
    assert (second.body, second.message.message_id, second.redelivered) == (b"job", "m-1", True)
    wait_until(lambda: transport.stats().acked == 1, "the second delivery is acknowledged")
    stats = transport.stats()
    assert (stats.requeued, stats.redelivered, stats.retried, stats.dead_lettered) == (1, 1, 0, 0)


def test_no_more_than_prefetch_deliveries_are_outstanding_and_completing_them_lets_the_rest_flow(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    queue = sandbox.name("jobs")
    for i in range(10):
        transport.publish("", queue, Message(b"%d" % i)).result(timeout=PATIENCE)
    work = PendingWork()

    transport.consume(queue, work, prefetch=3)

    # Three handed over, seven still waiting in the queue: the consumer holds no more.
    wait_until(
        lambda: work.outstanding == 3 and transport.queue_size(queue) == 7,
        "three deliveries are outstanding and seven are ready",
    )
    while len(work.handled) < 10:
        wait_until(
            lambda: work.outstanding > 0, f"another delivery arrives after {len(work.handled)} handled"
        )
        work.complete_oldest()

    assert work.most_outstanding == 3
    assert sorted(work.handled) == sorted(b"%d" % i for i in range(10))
    wait_until(lambda: transport.stats().acked == 10, "all ten are acknowledged")
    assert transport.queue_size(queue) == 0


def test_the_transport_prefetch_bounds_consumers_that_do_not_set_their_own(sandbox: Sandbox) -> None:
    transport = sandbox.open(prefetch=2)
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    queue = sandbox.name("jobs")
    for i in range(5):
        transport.publish("", queue, Message(b"%d" % i)).result(timeout=PATIENCE)
    work = PendingWork()

    transport.consume(queue, work)

    wait_until(
        lambda: work.outstanding == 2 and transport.queue_size(queue) == 3,
        "two deliveries are outstanding and three are ready",
    )
    while len(work.handled) < 5:
        wait_until(
            lambda: work.outstanding > 0, f"another delivery arrives after {len(work.handled)} handled"
        )
        work.complete_oldest()
    assert work.most_outstanding == 2
