"""Failures: retried with a delay that never blocks the consumer, then dead-lettered with the reason why."""

from __future__ import annotations

import threading

from transports import (
    Binding,
    Delivery,
    Exchange,
    ExchangeType,
    Message,
    PermanentError,
    Queue,
    RetryPolicy,
    Topology,
    Transport,
    dead_letter_queue_name,
    dead_letter_reason,
)
from transports import message as headers

from .sandbox import PATIENCE, Inbox, Sandbox, wait_until

FAST_RETRIES = RetryPolicy(max_attempts=3, initial_delay=0.02, multiplier=2.0, max_delay=0.1)
"""Three attempts, 20 ms then 40 ms apart."""


def test_failing_handler_is_retried_then_dead_lettered(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")], retry=FAST_RETRIES))
    attempts = Inbox()

    def handler(delivery: Delivery) -> None:
        attempts(delivery)
        raise ValueError(f"boom {delivery.attempt}")

    transport.consume(sandbox.name("jobs"), handler)
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("jobs")), dead)
    sent = Message(b"job", headers={"trace": "t-1"}, message_id="m-1")

    transport.publish("", sandbox.name("jobs"), sent).result(timeout=PATIENCE)

    [dead_letter] = dead.wait_for(1)
    assert [d.attempt for d in attempts.deliveries] == [1, 2, 3]
    assert [d.headers.get(headers.ATTEMPT) for d in attempts.deliveries[1:]] == [2, 3]
    assert all((d.body, d.message.message_id) == (b"job", "m-1") for d in attempts.deliveries)
    letter = dead_letter.message
    assert (letter.body, letter.message_id, letter.headers["trace"]) == (b"job", "m-1", "t-1")
    assert dead_letter_reason(letter) == "retries-exhausted"
    assert letter.headers[headers.DEAD_LETTER_REASON] == "retries-exhausted"
    assert letter.headers[headers.ERROR] == "ValueError: boom 3"
    assert letter.headers[headers.ATTEMPT] == 3
    assert letter.headers[headers.ORIGINAL_EXCHANGE] == ""
    assert letter.headers[headers.ORIGINAL_ROUTING_KEY] == sandbox.name("jobs")
    assert letter.headers[headers.ORIGINAL_QUEUE] == sandbox.name("jobs")
    wait_until(lambda: transport.stats().acked == 4, "three attempts and the dead letter are acknowledged")
    stats = transport.stats()
    # Three attempts and the dead letter were delivered; two retries and the dead letter republished.
    assert (stats.published, stats.delivered, stats.retried, stats.dead_lettered) == (4, 4, 2, 1)


def test_retried_message_keeps_the_exchange_and_key_it_was_first_published_with(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(
        Topology(
            exchanges=[Exchange("orders", ExchangeType.TOPIC)],
            queues=[Queue("billing", retry=RetryPolicy(max_attempts=2, initial_delay=0.02))],
            bindings=[Binding("orders", "billing", "order.*")],
        )
    )
    attempts = Inbox()

    def handler(delivery: Delivery) -> None:
        attempts(delivery)
        raise RuntimeError("ledger offline")

    transport.consume(sandbox.name("billing"), handler)
    transport.publish(sandbox.name("orders"), "order.paid", Message(b"order-7")).result(timeout=PATIENCE)

    observer = sandbox.another()
    dead = Inbox()
    observer.consume(dead_letter_queue_name(sandbox.name("billing")), dead)
    [dead_letter] = dead.wait_for(1)
    assert [d.attempt for d in attempts.wait_for(2)] == [1, 2]
    assert dead_letter.headers[headers.ORIGINAL_EXCHANGE] == sandbox.name("orders")
    assert dead_letter.headers[headers.ORIGINAL_ROUTING_KEY] == "order.paid"
    assert dead_letter.headers[headers.ERROR] == "RuntimeError: ledger offline"
    assert dead_letter.body == b"order-7"


def test_other_messages_are_handled_while_one_waits_for_its_retry(sandbox: Sandbox) -> None:
    # One delivery at a time: if waiting for the retry held the consumer, B could not overtake A.
    transport = sandbox.open(prefetch=1)
    sandbox.declare(
        Topology(queues=[Queue("jobs")], retry=RetryPolicy(max_attempts=2, initial_delay=1.0, multiplier=1.0))
    )
    handled = Inbox()
    a_failed_once = threading.Event()

    def handler(delivery: Delivery) -> None:
        handled(delivery)
        if delivery.body == b"A" and delivery.attempt == 1:
            a_failed_once.set()
            raise ValueError("try again later")

    transport.consume(sandbox.name("jobs"), handler)
    transport.publish("", sandbox.name("jobs"), Message(b"A")).result(timeout=PATIENCE)
    assert a_failed_once.wait(PATIENCE)

    transport.publish("", sandbox.name("jobs"), Message(b"B")).result(timeout=PATIENCE)

    deliveries = handled.wait_for(3)
    assert [(d.body, d.attempt) for d in deliveries] == [(b"A", 1), (b"B", 1), (b"A", 2)]


def test_permanent_error_dead_letters_at_once_without_retry(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")], retry=FAST_RETRIES))
    attempts = Inbox()

    def handler(delivery: Delivery) -> None:
        attempts(delivery)
        raise PermanentError("no such gig")

    transport.consume(sandbox.name("jobs"), handler)
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("jobs")), dead)

    transport.publish("", sandbox.name("jobs"), Message(b"job")).result(timeout=PATIENCE)

    [dead_letter] = dead.wait_for(1)
    assert dead_letter_reason(dead_letter.message) == "permanent"
    assert dead_letter.headers[headers.ERROR] == "PermanentError: no such gig"
    assert dead_letter.headers[headers.ATTEMPT] == 1
    wait_until(lambda: transport.stats().dead_lettered == 1, "the dead letter is counted")
    assert len(attempts.deliveries) == 1
    assert transport.stats().retried == 0


def test_a_queue_retry_policy_overrides_the_topology_default(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(
        Topology(queues=[Queue("once", retry=RetryPolicy(max_attempts=1))], retry=FAST_RETRIES),
    )
    attempts = Inbox()

    def handler(delivery: Delivery) -> None:
        attempts(delivery)
        raise ValueError("boom")

    transport.consume(sandbox.name("once"), handler)
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("once")), dead)

    transport.publish("", sandbox.name("once"), Message(b"job")).result(timeout=PATIENCE)

    [dead_letter] = dead.wait_for(1)
    assert dead_letter_reason(dead_letter.message) == "retries-exhausted"
    assert dead_letter.headers[headers.ATTEMPT] == 1
    assert len(attempts.deliveries) == 1


def test_undecodable_message_is_dead_lettered_and_never_handled(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")], retry=FAST_RETRIES))
    handled = Inbox()

    def decode(message: Message) -> object:
        raise ValueError(f"not JSON: {message.body!r}")

    transport.consume(sandbox.name("jobs"), handled, decode=decode)
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("jobs")), dead)

    transport.publish("", sandbox.name("jobs"), Message(b"{oops", message_id="m-1")).result(timeout=PATIENCE)

    [dead_letter] = dead.wait_for(1)
    assert dead_letter_reason(dead_letter.message) == "undecodable"
    assert dead_letter.headers[headers.ERROR].startswith("ValueError: not JSON")
    assert (dead_letter.body, dead_letter.message.message_id) == (b"{oops", "m-1")
    wait_until(lambda: transport.stats().dead_lettered == 1, "the dead letter is counted")
    assert handled.deliveries == []
    assert transport.stats().retried == 0


def test_a_dead_letter_can_be_consumed_from_the_dead_letter_queue_with_its_body_intact(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs")]))
    body = bytes(range(256)) * 4

    def handler(delivery: Delivery) -> None:
        raise PermanentError("refused")

    transport.consume(sandbox.name("jobs"), handler)
    transport.publish(
        "", sandbox.name("jobs"), Message(body, headers={"k": "v"}, message_id="m-1", content_type="x/bin")
    ).result(timeout=PATIENCE)
    dlq = dead_letter_queue_name(sandbox.name("jobs"))
    wait_until(lambda: transport.queue_size(dlq) == 1, "the message waits in the dead-letter queue")

    # Read by another transport, as an operator's tool would.
    dead = Inbox()
    sandbox.another().consume(dlq, dead)

    [dead_letter] = dead.wait_for(1)
    assert dead_letter.queue == dlq
    assert (dead_letter.body, dead_letter.message.message_id) == (body, "m-1")
    assert (dead_letter.message.content_type, dead_letter.headers["k"]) == ("x/bin", "v")
