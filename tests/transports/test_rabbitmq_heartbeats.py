"""RabbitMQ heartbeats: a handler busy for several heartbeat intervals does not cost the connection."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from transports import Delivery, Message, Queue, Topology, Transport

from .sandbox import PATIENCE, Inbox, Sandbox, wait_until

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.slow,
    pytest.mark.parametrize("backend", [pytest.param("rabbitmq", id="rabbitmq")], indirect=True),
]

HEARTBEAT = 2
"""Seconds between heartbeats asked for in the URL."""
BUSY = 3 * HEARTBEAT + 0.5
"""Seconds the slow handler works: long enough for the broker to drop a connection that missed heartbeats."""


def with_query(url: str, **options: str) -> str:
    """`url` with `options` added to its query string (pika's URL parameters)."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *options.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@pytest.fixture
def broker_url(rabbitmq_url: str) -> str:
    """The session's broker, asking for short heartbeats."""
    return with_query(rabbitmq_url, heartbeat=str(HEARTBEAT))


def test_a_handler_busy_for_three_heartbeats_keeps_its_connection_and_is_acked_once(
    sandbox: Sandbox, transport: Transport
) -> None:
    from transports.rabbitmq import Transport as RabbitMQTransport

    sandbox.declare(Topology(queues=[Queue("slow")]))
    calls = Inbox()
    finished = threading.Event()
    nobody_sets_this = threading.Event()

    def slow_handler(delivery: Delivery) -> None:
        calls(delivery)
        nobody_sets_this.wait(BUSY)  # blocks this thread, as real slow work would
        finished.set()

    transport.consume(sandbox.name("slow"), slow_handler)
    assert isinstance(transport, RabbitMQTransport)
    assert transport.heartbeat is not None
    assert 0 < transport.heartbeat <= HEARTBEAT

    transport.publish("", sandbox.name("slow"), Message(b"slow job")).result(timeout=PATIENCE)

    assert finished.wait(BUSY + PATIENCE)
    wait_until(
        lambda: transport.stats().acked == 1, "the slow delivery is acknowledged", observe=transport.stats
    )
    assert transport.queue_size(sandbox.name("slow")) == 0
    stats = transport.stats()
    assert (stats.reconnects, stats.delivered, stats.redelivered, stats.acked) == (0, 1, 0, 1)
    assert len(calls.deliveries) == 1
