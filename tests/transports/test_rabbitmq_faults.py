"""RabbitMQ faults: a stream of confirmed publishes survives a dropped connection and a broker restart.

Each test has a node of its own (`own_rabbitmq_node`). A publisher sends
10,000 messages with confirms while a consumer on another transport takes
them; once 30 % are confirmed the publisher slows down and the fault is
injected, so that it lands mid-stream, before 70 % are confirmed. The same
transport objects must carry on: every confirmed message is consumed (at
least once: duplicates are counted and reported, never missing ones).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

import pytest

from transports import Delivery, Message, Queue, Topology, TransportError
from transports.rabbitmq_node import ThrowawayNode

from .sandbox import PATIENCE, Sandbox, in_background

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.slow,
    pytest.mark.parametrize("backend", [pytest.param("rabbitmq", id="rabbitmq")], indirect=True),
]

TOTAL = 10_000
FAULT_AFTER = 0.3
"""The fault is injected once this fraction of the messages is confirmed..."""
FAULT_BEFORE = 0.7
"""... and must have landed before this fraction is."""
PACE = 0.002
"""Seconds the publisher waits between messages while the fault is being injected."""
RECOVERY = 120.0
"""Seconds allowed for the whole stream to be confirmed and consumed, outage included."""


@pytest.fixture
def broker_url(own_rabbitmq_node: ThrowawayNode) -> str:
    """A node of the test's own: these tests disconnect and restart it."""
    return own_rabbitmq_node.url


class Ledger:
    """What became of each message of the stream: confirmed or failed, and how often consumed."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.confirmed: set[str] = set()
        self.failed: dict[str, BaseException] = {}
        self.consumed: Counter[str] = Counter()

    def track(self, message_id: str, future: Future[None]) -> None:
        """Record the outcome of the publish of `message_id` once `future` completes."""
        future.add_done_callback(partial(self._published, message_id))

    def _published(self, message_id: str, future: Future[None]) -> None:
        error = future.exception()
        with self._changed:
            if error is None:
                self.confirmed.add(message_id)
            else:
                self.failed[message_id] = error
            self._changed.notify_all()

    def __call__(self, delivery: Delivery) -> None:
        """Count a consumed message (this is the consumer's handler)."""
        with self._changed:
            self.consumed[str(delivery.message.message_id)] += 1
            self._changed.notify_all()

    def confirmed_count(self) -> int:
        """How many messages are confirmed so far."""
        with self._changed:
            return len(self.confirmed)

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait until `predicate` (called under the ledger's lock) holds; fail after `timeout` s."""
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                pytest.fail(
                    f"timed out after {timeout} s waiting until {what}: {len(self.confirmed)} confirmed, "
                    f"{len(self.failed)} failed, {len(self.consumed)} distinct consumed"
                )


def stream_through_fault(sandbox: Sandbox, inject: Callable[[], None]) -> None:
    """Publish `TOTAL` messages with a consumer running, `inject` the fault mid-stream, check the outcome."""
    publisher = sandbox.open()
    sandbox.declare(Topology(queues=[Queue("stream")]))
    queue = sandbox.name("stream")
    receiver = sandbox.another()
    ledger = Ledger()
    receiver.consume(queue, ledger)
    fault_landed = threading.Event()
    confirmed_at_fault: list[int] = []

    def inject_mid_stream() -> None:
        ledger.wait(lambda: len(ledger.confirmed) >= TOTAL * FAULT_AFTER, "30 % are confirmed", RECOVERY)
        confirmed_at_fault.append(ledger.confirmed_count())
        inject()
        confirmed_at_fault.append(ledger.confirmed_count())
        fault_landed.set()

    injector, injector_errors = in_background(inject_mid_stream, "fault-injector")
    try:
        for i in range(TOTAL):
            if not fault_landed.is_set() and ledger.confirmed_count() >= TOTAL * FAULT_AFTER:
                fault_landed.wait(PACE)  # slow down so that the fault lands before 70 %
            message_id = str(i)
            ledger.track(message_id, publisher.publish("", queue, Message(b"x" * 200, message_id=message_id)))
    finally:
        injector.join(RECOVERY)
    assert injector_errors == []
    assert not injector.is_alive()

    ledger.wait(
        lambda: len(ledger.confirmed) + len(ledger.failed) == TOTAL, "every publish completed", RECOVERY
    )
    ledger.wait(
        lambda: ledger.confirmed <= ledger.consumed.keys(), "every confirmed message is consumed", RECOVERY
    )
    # The same transports carry on after the fault.
    publisher.publish("", queue, Message(b"after", message_id="after")).result(timeout=PATIENCE)
    ledger.wait(lambda: "after" in ledger.consumed, "a message published afterwards is consumed", PATIENCE)

    duplicates = sum(n - 1 for n in ledger.consumed.values() if n > 1)
    missing = ledger.confirmed - ledger.consumed.keys()
    started, landed = (count / TOTAL for count in confirmed_at_fault)
    print(
        f"fault injected at {started:.0%} confirmed, landed by {landed:.0%}; "
        f"{len(ledger.confirmed)} confirmed, {len(ledger.failed)} failed, {duplicates} duplicates, "
        f"{len(missing)} missing; reconnects: publisher {publisher.stats().reconnects}, "
        f"consumer {receiver.stats().reconnects}"
    )
    assert FAULT_AFTER <= started <= landed <= FAULT_BEFORE
    assert publisher.stats().reconnects >= 1
    assert receiver.stats().reconnects >= 1
    assert sorted(missing) == []
    assert all(isinstance(error, TransportError) for error in ledger.failed.values()), ledger.failed


def test_a_stream_survives_the_broker_closing_every_connection(
    sandbox: Sandbox, own_rabbitmq_node: ThrowawayNode
) -> None:
    stream_through_fault(sandbox, own_rabbitmq_node.close_all_connections)


def test_a_stream_survives_a_broker_restart(sandbox: Sandbox, own_rabbitmq_node: ThrowawayNode) -> None:
    stream_through_fault(sandbox, own_rabbitmq_node.restart)
