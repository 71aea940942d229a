"""Publishing: confirms, errors the caller sees, many messages in flight, properties kept on the way."""

from __future__ import annotations

from collections import Counter

import pytest

from transports import Message, Queue, Topology, Transport, Unroutable

from .sandbox import PATIENCE, Inbox, Sandbox, wait_until


def test_publish_to_a_key_no_queue_is_bound_to_fails_with_unroutable(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))

    future = transport.publish("", sandbox.name("nobody-listens"), Message(b"lost?"))

    with pytest.raises(Unroutable) as raised:
        future.result(timeout=PATIENCE)
    assert (raised.value.exchange, raised.value.routing_key) == ("", sandbox.name("nobody-listens"))
    assert transport.stats().unroutable == 1
    assert transport.queue_size(sandbox.name("jobs")) == 0


def test_many_publishes_outstanding_at_once_are_all_delivered_exactly_once(
    sandbox: Sandbox, transport: Transport
) -> None:
    count = 2000
    sandbox.declare(Topology(queues=[Queue("bulk")]))
    queue = sandbox.name("bulk")

    futures = [transport.publish("", queue, Message(b"%d" % i, message_id=str(i))) for i in range(count)]
    for future in futures:
        future.result(timeout=PATIENCE * 3)
    assert transport.stats().published == count

    inbox = Inbox()
    transport.consume(queue, inbox)
    inbox.wait_for(count, timeout=PATIENCE * 3)
    wait_until(lambda: transport.stats().acked == count, f"all {count} deliveries are acknowledged")

    received = Counter(d.message.message_id for d in inbox.deliveries)
    assert set(received) == {str(i) for i in range(count)}
    assert [mid for mid, n in received.items() if n > 1] == []
    assert transport.queue_size(queue) == 0


def test_message_properties_survive_the_trip(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    inbox = Inbox()
    transport.consume(sandbox.name("jobs"), inbox)
    sent = Message(
        body=bytes(range(256)),
        headers={
            "text": "grüße",
            "count": 42,
            "big": -(2**40),
            "flag": True,
            "raw": b"\x00\xff",
            "nothing": None,
        },
        message_id="msg-1",
        correlation_id="corr-1",
        content_type="application/octet-stream",
    )

    transport.publish("", sandbox.name("jobs"), sent).result(timeout=PATIENCE)

    [delivery] = inbox.wait_for(1)
    received = delivery.message
    assert received.body == sent.body
    assert {k: received.headers.get(k) for k in sent.headers} == sent.headers
    assert (received.message_id, received.correlation_id, received.content_type) == (
        "msg-1",
        "corr-1",
        "application/octet-stream",
    )
    assert delivery.payload == sent.body  # no decoder: the payload is the body
    assert (delivery.attempt, delivery.redelivered) == (1, False)


def test_messages_published_before_any_consumer_are_delivered_once_it_starts(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("early")]))
    for i in range(5):
        transport.publish("", sandbox.name("early"), Message(b"%d" % i)).result(timeout=PATIENCE)
    assert transport.queue_size(sandbox.name("early")) == 5

    inbox = Inbox()
    transport.consume(sandbox.name("early"), inbox)

    assert sorted(d.body for d in inbox.wait_for(5)) == [b"0", b"1", b"2", b"3", b"4"]
    wait_until(lambda: transport.queue_size(sandbox.name("early")) == 0, "the queue is empty")


def test_a_decoder_turns_the_body_into_the_payload_the_handler_gets(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    inbox = Inbox()
    transport.consume(sandbox.name("jobs"), inbox, decode=lambda message: message.body.decode().upper())

    transport.publish("", sandbox.name("jobs"), Message(b"hello")).result(timeout=PATIENCE)

    [delivery] = inbox.wait_for(1)
    assert (delivery.payload, delivery.body) == ("HELLO", b"hello")


def test_a_header_value_not_every_backend_can_carry_is_refused(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))

    with pytest.raises(TypeError):
        transport.publish("", sandbox.name("jobs"), Message(b"x", headers={"ratio": 0.25})).result(
            timeout=PATIENCE
        )

    assert transport.queue_size(sandbox.name("jobs")) == 0
