"""Topology: only what was declared can be used, declaring again is harmless, deleting removes it all."""

from __future__ import annotations

import pytest

from transports import (
    Binding,
    Exchange,
    ExchangeType,
    Message,
    Queue,
    RetryPolicy,
    Topology,
    TopologyError,
    Transport,
    dead_letter_queue_name,
)

from .sandbox import PATIENCE, Inbox, Sandbox

ORDERS = Topology(
    exchanges=[Exchange("orders", ExchangeType.TOPIC)],
    queues=[Queue("billing")],
    bindings=[Binding("orders", "billing", "order.#")],
    retry=RetryPolicy(max_attempts=3, initial_delay=0.05),
)


def test_publishing_to_an_undeclared_exchange_raises_topology_error(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))

    # Raised by publish itself or through its future: either way the caller sees it.
    with pytest.raises(TopologyError):
        transport.publish(sandbox.name("never-declared"), "key", Message(b"x")).result(timeout=PATIENCE)

    # The transport is still usable afterwards.
    transport.publish("", sandbox.name("jobs"), Message(b"after")).result(timeout=PATIENCE)
    assert transport.queue_size(sandbox.name("jobs")) == 1


def test_consuming_an_undeclared_queue_raises_topology_error(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))

    with pytest.raises(TopologyError):
        transport.consume(sandbox.name("never-declared"), Inbox())

    # The transport is still usable afterwards.
    inbox = Inbox()
    transport.consume(sandbox.name("jobs"), inbox)
    transport.publish("", sandbox.name("jobs"), Message(b"after")).result(timeout=PATIENCE)
    assert inbox.wait_for(1)[0].body == b"after"


def test_declaring_the_same_topology_again_keeps_its_messages(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(ORDERS)
    transport.publish(sandbox.name("orders"), "order.paid", Message(b"o-1")).result(timeout=PATIENCE)

    # Another process (here: another transport) declares the whole topology it was given, too.
    sandbox.declare(ORDERS, on=sandbox.open())

    assert transport.queue_size(sandbox.name("billing")) == 1
    assert transport.queue_size(dead_letter_queue_name(sandbox.name("billing"))) == 0


def test_deleting_a_topology_removes_its_queues_and_their_messages(
    sandbox: Sandbox, transport: Transport
) -> None:
    topology = ORDERS.prefixed(sandbox.prefix)  # declared here, not in the sandbox: the test deletes it
    transport.declare(topology)
    transport.publish(sandbox.name("orders"), "order.paid", Message(b"o-1")).result(timeout=PATIENCE)

    transport.delete(topology)

    with pytest.raises(TopologyError):
        transport.consume(sandbox.name("billing"), Inbox())
    with pytest.raises(TopologyError):
        transport.consume(dead_letter_queue_name(sandbox.name("billing")), Inbox())
    transport.declare(topology)
    try:
        assert transport.queue_size(sandbox.name("billing")) == 0
    finally:
        transport.delete(topology)
