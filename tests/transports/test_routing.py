"""Routing: which queues a published message reaches, for each kind of exchange."""

from __future__ import annotations

from transports import Binding, Exchange, ExchangeType, Message, Queue, Topology, Transport, Unroutable

from .sandbox import PATIENCE, Inbox, Sandbox


def publish_all(transport: Transport, exchange: str, routing_keys: list[str]) -> None:
    """Publish one message per routing key (its body is the key) and wait until the broker has them."""
    futures = [transport.publish(exchange, key, Message(key.encode())) for key in routing_keys]
    for future in futures:
        future.result(timeout=PATIENCE)


def test_direct_exchange_routes_by_exact_key(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(
        Topology(
            exchanges=[Exchange("orders", ExchangeType.DIRECT)],
            queues=[Queue("paid"), Queue("shipped")],
            bindings=[Binding("orders", "paid", "order.paid"), Binding("orders", "shipped", "order.shipped")],
        )
    )

    publish_all(transport, sandbox.name("orders"), ["order.paid", "order.paid", "order.shipped"])

    assert transport.queue_size(sandbox.name("paid")) == 2
    assert transport.queue_size(sandbox.name("shipped")) == 1


def test_fanout_exchange_delivers_to_every_bound_queue_whatever_the_key(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(
        Topology(
            exchanges=[Exchange("news", ExchangeType.FANOUT)],
            queues=[Queue("a"), Queue("b"), Queue("c"), Queue("unbound")],
            bindings=[Binding("news", "a", "ignored"), Binding("news", "b"), Binding("news", "c", "x.y")],
        )
    )

    publish_all(transport, sandbox.name("news"), ["anything", ""])

    assert [transport.queue_size(sandbox.name(q)) for q in ("a", "b", "c", "unbound")] == [2, 2, 2, 0]


def test_topic_star_matches_exactly_one_word(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(
        Topology(
            exchanges=[Exchange("events", ExchangeType.TOPIC)],
            queues=[Queue("orders")],
            bindings=[Binding("events", "orders", "order.*")],
        )
    )
    inbox = Inbox()
    transport.consume(sandbox.name("orders"), inbox)

    # Only the keys with exactly one word after "order." match; the others are unroutable.
    keys = ["order.paid", "order", "order.paid.late", "order.shipped", "gig.paid"]
    futures = {key: transport.publish(sandbox.name("events"), key, Message(key.encode())) for key in keys}
    errors = {key: future.exception(timeout=PATIENCE) for key, future in futures.items()}

    assert [key for key, error in errors.items() if error is None] == ["order.paid", "order.shipped"]
    assert all(isinstance(error, Unroutable) for error in errors.values() if error is not None)
    assert sorted(d.routing_key for d in inbox.wait_for(2)) == ["order.paid", "order.shipped"]


def test_topic_hash_matches_zero_or_more_words(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(
        Topology(
            exchanges=[Exchange("events", ExchangeType.TOPIC)],
            queues=[Queue("orders"), Queue("everything"), Queue("paid")],
            bindings=[
                Binding("events", "orders", "order.#"),
                Binding("events", "everything", "#"),
                Binding("events", "paid", "#.paid"),
            ],
        )
    )

    publish_all(transport, sandbox.name("events"), ["order", "order.paid", "order.paid.late", "gig.paid"])

    assert transport.queue_size(sandbox.name("orders")) == 3
    assert transport.queue_size(sandbox.name("everything")) == 4
    assert transport.queue_size(sandbox.name("paid")) == 2


def test_default_exchange_routes_to_the_queue_named_by_the_key(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("jobs"), Queue("other")]))
    inbox = Inbox()
    transport.consume(sandbox.name("jobs"), inbox)

    transport.publish("", sandbox.name("jobs"), Message(b"job-1")).result(timeout=PATIENCE)

    [delivery] = inbox.wait_for(1)
    assert delivery.body == b"job-1"
    assert (delivery.queue, delivery.exchange, delivery.routing_key) == (
        sandbox.name("jobs"),
        "",
        sandbox.name("jobs"),
    )
    assert transport.queue_size(sandbox.name("other")) == 0


def test_one_message_fans_out_to_several_queues_bound_with_the_same_key(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(
        Topology(
            exchanges=[Exchange("orders", ExchangeType.DIRECT)],
            queues=[Queue("billing"), Queue("shipping"), Queue("mail")],
            bindings=[
                Binding("orders", "billing", "order.paid"),
                Binding("orders", "shipping", "order.paid"),
                Binding("orders", "mail", "order.paid"),
            ],
        )
    )
    inboxes = {name: Inbox() for name in ("billing", "shipping", "mail")}
    for name, inbox in inboxes.items():
        transport.consume(sandbox.name(name), inbox)

    transport.publish(sandbox.name("orders"), "order.paid", Message(b"order-7")).result(timeout=PATIENCE)

    for name, inbox in inboxes.items():
        [delivery] = inbox.wait_for(1)
        assert (delivery.body, delivery.queue) == (b"order-7", sandbox.name(name))
        assert (delivery.exchange, delivery.routing_key) == (sandbox.name("orders"), "order.paid")
