"""Bad input: whatever a service cannot read, or refuses, ends in its queue's dead-letter queue with why.

Each test runs the whole marketplace (`[memory]` and `[rabbitmq]`) and
publishes raw messages, bypassing the marketplace's own publishers, straight
onto every queue a service consumes: on RabbitMQ the queues are found on the
broker (`rabbitmqctl list_queues`: those of this run's prefix with a consumer)
and published to with pika; in memory, where there is no broker to ask, they
are the declared topology's. Each bad body is spoilt from a valid message
meant for its queue (an envelope of an event the service consumes, or a
request for a query it answers), so that exactly one thing is wrong with it.
Every one must land in `<queue>.dlq`, body intact, on its first attempt,
with reason `undecodable` and the decode error (its reason and field) in
`x-error`; afterwards every service still answers and nothing else was
dead-lettered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import pika
import pytest
from attrs import frozen

from marketplace import protocol
from marketplace.bootstrap import App
from marketplace.codec import (
    CONTENT_TYPE,
    DEFAULT_MAX_SIZE,
    EVENT_TYPE_HEADER,
    Envelope,
    Reason,
    encode,
    to_message,
)
from marketplace.commands import Command, Query, Request
from marketplace.commands.auth import SignIn
from marketplace.commands.chat import GetOffer
from marketplace.commands.gig import GetGig, GigCategory
from marketplace.commands.order import GetOrder
from marketplace.commands.review import ListReviewsByGig
from marketplace.commands.users import GetUser
from marketplace.events import (
    GigCreated,
    GigReviewed,
    PasswordChanged,
    PasswordChangeReason,
    ReviewAdded,
    ReviewKind,
)
from marketplace.wiring import Wiring
from tests.marketplace.apps import (  # noqa: F401  (fixtures: marketplace_app, marketplace_backend)
    MEMORY_URL,
    PATIENCE,
    fixture_marketplace_app,
    fixture_marketplace_backend,
    signed_in,
)
from tests.transports.sandbox import Inbox, wait_until
from transports import Message, dead_letter_queue_name
from transports import message as headers
from transports.rabbitmq_node import ThrowawayNode
from transports.topology import is_derived_queue

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(name="marketplace_url")
def fixture_marketplace_url_on_the_session_node(
    marketplace_backend: str, request: pytest.FixtureRequest
) -> str:
    """Memory, or the session's own RabbitMQ node, whose queues `rabbitmqctl` can list."""
    if marketplace_backend == "rabbitmq":
        node: ThrowawayNode = request.getfixturevalue("rabbitmq_node")
        return node.url
    return MEMORY_URL


# What the tests need of a broker beyond the transport: a listing, raw publishing, draining a queue.


class Broker(Protocol):
    """The marketplace's broker, reached around the transport the services use."""

    def consuming_queues(self) -> set[str]:
        """The queues of this run that a service consumes."""

    def publish(self, queue: str, message: Message) -> None:
        """Put `message` onto `queue` through the default exchange, as is."""

    def take(self, queue: str) -> list[Message]:
        """Every message waiting on `queue`, removed from it."""


class MemoryBroker:
    """The memory transport's broker: the declared topology, and the transport itself."""

    def __init__(self, app: App) -> None:
        self._app = app

    def consuming_queues(self) -> set[str]:
        """The queues of the declared topology (memory has no listing of its own)."""
        return {queue.name for queue in self._app.wiring.topology().queues}

    def publish(self, queue: str, message: Message) -> None:
        """Publish through the app's transport."""
        self._app.transport.publish("", queue, message).result(timeout=PATIENCE)

    def take(self, queue: str) -> list[Message]:
        """Consume `queue` until it is empty."""
        waiting = self._app.transport.queue_size(queue)
        inbox = Inbox()
        consumer = self._app.transport.consume(queue, inbox)
        try:
            return [delivery.message for delivery in inbox.wait_for(waiting)]
        finally:
            consumer.cancel(PATIENCE)


class RabbitMQBroker:
    """A RabbitMQ node: listed with `rabbitmqctl`, published to and drained with plain pika."""

    def __init__(self, node: ThrowawayNode, prefix: str) -> None:
        self._node = node
        self._prefix = prefix
        self._connection = pika.BlockingConnection(pika.URLParameters(node.url))
        self._channel = self._connection.channel()
        self._channel.confirm_delivery()

    def consuming_queues(self) -> set[str]:
        """The queues of this run's prefix, neither dead-letter nor retry queues, that have a consumer."""
        listing = self._node.ctl("list_queues", "-p", "/", "--no-table-headers", "name", "consumers")
        found = set()
        for line in listing.splitlines():
            name, consumers = line.rsplit("\t", 1)
            if name.startswith(self._prefix) and not is_derived_queue(name) and int(consumers) > 0:
                found.add(name)
        return found

    def publish(self, queue: str, message: Message) -> None:
        """A persistent, mandatory publish, confirmed by the broker (pika raises otherwise)."""
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=dict(message.headers),
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
        )
        self._channel.basic_publish("", queue, message.body, properties, mandatory=True)

    def take(self, queue: str) -> list[Message]:
        """`basic_get` until the queue is empty."""
        taken: list[Message] = []
        while True:
            method, properties, body = self._channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append(
                Message(
                    body,
                    headers=properties.headers or {},
                    message_id=properties.message_id,
                    correlation_id=properties.correlation_id,
                    content_type=properties.content_type,
                )
            )

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


@pytest.fixture
def broker(
    marketplace_backend: str, marketplace_app: App, request: pytest.FixtureRequest
) -> Iterator[Broker]:
    """The broker under `marketplace_app`."""
    if marketplace_backend == "memory":
        yield MemoryBroker(marketplace_app)
        return
    node: ThrowawayNode = request.getfixturevalue("rabbitmq_node")
    rabbitmq = RabbitMQBroker(node, marketplace_app.wiring.prefix)
    try:
        yield rabbitmq
    finally:
        rabbitmq.close()


# Valid messages, one for each consuming queue, from which the bad ones are spoilt.

SAMPLE_EVENTS = (
    Envelope.start(
        GigCreated(gig_id="gig-1", seller_id="seller-1"),
        producer="gig",
        message_id="sample-gig-created",
        occurred_at=NOW,
    ),
    Envelope.start(
        GigReviewed(review_id="review-1", gig_id="gig-1", rating=5),
        producer="users",
        message_id="sample-gig-reviewed",
        occurred_at=NOW,
    ),
    Envelope.start(
        ReviewAdded(
            review_id="review-1",
            order_id="order-1",
            gig_id="gig-1",
            reviewer_id="buyer-1",
            reviewee_id="seller-1",
            kind=ReviewKind.BUYER,
            rating=5,
            comment="Great work",
            created_at=NOW,
        ),
        producer="review",
        message_id="sample-review-added",
        occurred_at=NOW,
    ),
    Envelope.start(
        PasswordChanged(
            user_id="user-1",
            username="alice",
            email="alice@example.com",
            reason=PasswordChangeReason.CHANGE,
            changed_at=NOW,
        ),
        producer="auth",
        message_id="sample-password-changed",
        occurred_at=NOW,
    ),
)
SAMPLE_REQUESTS: tuple[Command | Query, ...] = (
    SignIn(email="alice@example.com", password="correct horse battery"),
    GetUser("user-1"),
    GetGig("gig-1"),
    GetOffer("offer-1"),
    GetOrder("order-1"),
    ListReviewsByGig(gig_id="gig-1"),
)


@frozen
class Target:
    """A consuming queue, with a valid JSON document for it and the name of its id field."""

    queue: str
    document: Mapping[str, Any]
    id_field: str


def targets(wiring: Wiring) -> dict[str, Target]:
    """Every queue the wiring has services consume, with a valid document of what it is fed."""
    found = {}
    for service in wiring.services:
        if service.consumes():
            envelope = next((e for e in SAMPLE_EVENTS if type(e.event) in service.consumes()), None)
            assert envelope is not None, f"no sample event for {service.name}: add one it consumes"
            queue = wiring.events_queue(service.name)
            found[queue] = Target(queue, json.loads(encode(envelope)), "message_id")
        if service.answers():
            body = next((r for r in SAMPLE_REQUESTS if type(r) in service.answers()), None)
            assert body is not None, f"no sample request for {service.name}: add one it answers"
            request = Request(body, "sample-request", "sample-key", "sample-flow", NOW, actor_id="user-1")
            queue = wiring.commands_queue(service.name)
            found[queue] = Target(queue, json.loads(protocol.request_message(request).body), "request_id")
    return found


# The bad input: each spoils a valid document in one way.


def compact(document: Mapping[str, Any]) -> bytes:
    """A document as the marketplace writes it: compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


Spoiled = tuple[bytes, str | None]
"""A bad body, and the field its refusal names (None: the body as a whole)."""


def cut_short(target: Target) -> Spoiled:
    """JSON that stops before its closing brace."""
    return compact(target.document)[:-1], None


def not_utf8(target: Target) -> Spoiled:
    """A byte that is not UTF-8 at the start of the first string value."""
    body = compact(target.document)
    spoiled = body.replace(b'":"', b'":"\xff', 1)
    assert spoiled != body
    return spoiled, None


def in_an_array(target: Target) -> Spoiled:
    """The valid document, inside a JSON array."""
    return b"[" + compact(target.document) + b"]", None


def unknown_type(target: Target) -> Spoiled:
    """A type nobody defined."""
    return compact({**target.document, "type": "GigTeleported"}), "type"


def missing_payload_field(target: Target) -> Spoiled:
    """The payload without its first field (an id, required everywhere)."""
    payload = dict(target.document["payload"])
    name = next(iter(payload))
    del payload[name]
    return compact({**target.document, "payload": payload}), f"payload.{name}"


def numeric_id(target: Target) -> Spoiled:
    """A number where the message's (or request's) id string belongs."""
    return compact({**target.document, target.id_field: 42}), target.id_field


def oversized(target: Target) -> Spoiled:
    """The valid document with an unknown field that takes it past the 64 KiB limit."""
    body = compact({**target.document, "padding": "x" * DEFAULT_MAX_SIZE})
    assert len(body) > DEFAULT_MAX_SIZE
    return body, None


def as_is(target: Target) -> Spoiled:
    """The valid document, unchanged (for a case where something else is wrong)."""
    return compact(target.document), None


@frozen
class BadInput:
    """One kind of bad input: how a body is spoilt, its content type, and the reason it is refused for."""

    name: str
    spoil: Callable[[Target], Spoiled]
    reason: Reason
    content_type: str = CONTENT_TYPE


BAD_INPUTS = (
    BadInput("invalid-json", cut_short, Reason.INVALID_JSON),
    BadInput("invalid-utf8", not_utf8, Reason.INVALID_UTF8),
    BadInput("json-array", in_an_array, Reason.NOT_AN_OBJECT),
    BadInput("unknown-type", unknown_type, Reason.UNKNOWN_TYPE),
    BadInput("missing-field", missing_payload_field, Reason.MISSING_FIELD),
    BadInput("wrong-type", numeric_id, Reason.WRONG_TYPE),
    BadInput("too-large", oversized, Reason.TOO_LARGE),
    BadInput("wrong-content-type", as_is, Reason.WRONG_CONTENT_TYPE, content_type="text/plain"),
)


def consuming_queues(wiring: Wiring) -> set[str]:
    """The queues the wiring has services consume: events and commands."""
    return {wiring.events_queue(s.name) for s in wiring.services if s.consumes()} | {
        wiring.commands_queue(s.name) for s in wiring.services if s.answers()
    }


def sizes(app: App, queues: list[str]) -> dict[str, int]:
    """How many messages wait on each of `queues`."""
    return {queue: app.transport.queue_size(queue) for queue in queues}


def every_service_answers(app: App) -> None:
    """A short story that asks every service something and needs three of the events queues.

    The verification link is e-mailed (auth -> notification); the seller's two
    gigs, one created and one seeded, are counted in their profile (gig ->
    users); seeding asks users for sellers and hears back (gig -> users -> gig).
    """
    alice = signed_in(app, "alice")
    alice.profile.become_seller(full_name="Alice Example", description="Logos.", skills=("logo design",))
    gig = alice.gigs.create(
        title="I will design a logo",
        description="A clean logo with three revisions.",
        category=GigCategory.DESIGN,
        price_cents=4_000,
        delivery_days=3,
    )
    alice.gigs.seed(count=1)
    app.wait_until_quiet(PATIENCE)
    market = app.marketplace
    assert alice.account.account().email == "alice@example.com"
    assert market.profiles.seller(seller_id=alice.user_id).total_gigs == 2
    assert market.gigs.of_seller(seller_id=alice.user_id).total == 2
    assert market.gigs.get(gig_id=gig.gig_id).title == "I will design a logo"
    assert alice.chat.conversations().total == 0
    assert alice.orders.list().total == 0
    assert market.reviews.of_gig(gig_id=gig.gig_id).total == 0


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda bad: bad.name)
def test_bad_input_on_every_consuming_queue_is_dead_lettered_with_its_reason_and_the_services_still_answer(
    marketplace_app: App,
    broker: Broker,
    bad: BadInput,
) -> None:
    app = marketplace_app
    wiring = app.wiring
    queues = broker.consuming_queues()
    assert queues == consuming_queues(wiring)
    fed = targets(wiring)
    assert set(fed) == queues
    sent: dict[str, tuple[Message, str | None]] = {}
    for queue in sorted(queues):
        body, field = bad.spoil(fed[queue])
        message = Message(
            body,
            headers={"x-test-case": bad.name},
            message_id=f"bad-{bad.name}-{queue}",
            content_type=bad.content_type,
        )
        broker.publish(queue, message)
        sent[queue] = (message, field)
    dead_letter_queues = [dead_letter_queue_name(queue) for queue in sorted(queues)]

    wait_until(
        lambda: all(size >= 1 for size in sizes(app, dead_letter_queues).values()),
        "every bad message is dead-lettered",
        observe=lambda: sizes(app, dead_letter_queues),
    )
    every_service_answers(app)

    assert sizes(app, dead_letter_queues) == dict.fromkeys(dead_letter_queues, 1)
    assert sizes(app, sorted(queues)) == dict.fromkeys(sorted(queues), 0)
    stats = app.transport.stats()
    assert (stats.dead_lettered, stats.retried) == (len(queues), 0)
    for queue, (message, field) in sent.items():
        [letter] = broker.take(dead_letter_queue_name(queue))
        assert (letter.body, letter.message_id, letter.content_type) == (
            message.body,
            message.message_id,
            message.content_type,
        )
        assert letter.headers["x-test-case"] == bad.name
        assert letter.headers[headers.DEAD_LETTER_REASON] == "undecodable"
        assert letter.headers[headers.ATTEMPT] == 1
        assert letter.headers[headers.ORIGINAL_QUEUE] == queue
        error = letter.headers[headers.ERROR]
        named = f"{bad.reason}: {field}: " if field else f"{bad.reason}: "
        assert error.startswith(f"DecodeError: {named}"), (queue, error)


def test_an_event_its_consumer_refuses_is_dead_lettered_as_permanent_with_the_refusal(
    marketplace_app: App,
    broker: Broker,
) -> None:
    app = marketplace_app
    queue = app.wiring.events_queue("gig")
    envelope = Envelope.start(
        GigReviewed(review_id="review-1", gig_id="no-such-gig", rating=4),
        producer="users",
        message_id="review-of-nothing",
        occurred_at=NOW,
    )
    message = to_message(envelope)

    broker.publish(queue, message)

    dead_letter_queue = dead_letter_queue_name(queue)
    wait_until(
        lambda: app.transport.queue_size(dead_letter_queue) >= 1,
        "the refused event is dead-lettered",
        observe=lambda: app.transport.queue_size(dead_letter_queue),
    )
    every_service_answers(app)
    queues = broker.consuming_queues()
    assert queues == consuming_queues(app.wiring)
    dead_letter_queues = [dead_letter_queue_name(q) for q in sorted(queues)]
    assert sizes(app, dead_letter_queues) == {q: int(q == dead_letter_queue) for q in dead_letter_queues}
    [letter] = broker.take(dead_letter_queue)
    assert (letter.body, letter.message_id) == (message.body, "review-of-nothing")
    assert letter.headers[EVENT_TYPE_HEADER] == "GigReviewed"
    assert letter.headers[headers.DEAD_LETTER_REASON] == "permanent"
    assert letter.headers[headers.ATTEMPT] == 1
    error = letter.headers[headers.ERROR]
    assert error.startswith("PermanentError: not-found: gig not found") and "gig_id" in error, error
