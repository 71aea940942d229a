"""Request/reply: a call gets its server's answer, an error as an error, or a timeout, never a hang."""

from __future__ import annotations

import threading
import time

import pytest

from transports import (
    Delivery,
    Message,
    PermanentError,
    Queue,
    RemoteError,
    ReplyError,
    RequestTimeout,
    Topology,
    Transport,
    dead_letter_queue_name,
    dead_letter_reason,
)

from .sandbox import PATIENCE, Inbox, Sandbox

FAST_TIMEOUT = 0.3
"""Seconds a call waits when nobody is expected to answer."""


def echo(delivery: Delivery) -> bytes:
    """A responder that answers with the request's body, marked as answered."""
    return b"answer to " + delivery.body


def test_a_call_returns_the_reply_of_the_server(sandbox: Sandbox) -> None:
    server = sandbox.open()
    sandbox.declare(Topology(queues=[Queue("users")]), on=server)
    server.serve(sandbox.name("users"), echo)
    client = sandbox.another()

    reply = client.call("", sandbox.name("users"), Message(b"who is 7?"), timeout=PATIENCE)

    assert reply.body == b"answer to who is 7?"


def test_a_responder_can_answer_with_a_whole_message(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("users")]))

    def responder(delivery: Delivery) -> Message:
        return Message(b'{"id": 7}', headers={"version": 2}, content_type="application/json")

    transport.serve(sandbox.name("users"), responder)

    reply = transport.call("", sandbox.name("users"), Message(b"get 7"), timeout=PATIENCE)

    assert (reply.body, reply.message.content_type, reply.headers["version"]) == (
        b'{"id": 7}',
        "application/json",
        2,
    )


def test_concurrent_calls_each_get_their_own_reply(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("users")]))
    transport.serve(sandbox.name("users"), echo)
    replies: dict[int, bytes] = {}
    failures: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            replies[n] = transport.call("", sandbox.name("users"), Message(b"%d" % n), timeout=PATIENCE).body
        except BaseException as e:  # reported by the test thread
            failures.append(e)

    callers = [threading.Thread(target=ask, args=(n,), name=f"caller-{n}") for n in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(PATIENCE * 2)

    assert failures == []
    assert replies == {n: b"answer to %d" % n for n in range(8)}


def test_a_reply_error_surfaces_as_remote_error_with_code_message_and_details(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("gigs")]))
    requests = Inbox()

    def responder(delivery: Delivery) -> bytes:
        requests(delivery)
        raise ReplyError("not-found", "no gig 7", field="gig_id", value="7")

    transport.serve(sandbox.name("gigs"), responder)

    with pytest.raises(RemoteError) as raised:
        transport.call("", sandbox.name("gigs"), Message(b"get 7"), timeout=PATIENCE)

    assert (raised.value.code, raised.value.message) == ("not-found", "no gig 7")
    assert raised.value.details == {"field": "gig_id", "value": "7"}
    # Answered, so handled: neither retried nor dead-lettered.
    assert len(requests.deliveries) == 1
    assert transport.queue_size(dead_letter_queue_name(sandbox.name("gigs"))) == 0


def test_a_request_the_responder_rejects_surfaces_as_remote_error_and_is_dead_lettered(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("gigs")]))

    def responder(delivery: Delivery) -> bytes:
        raise PermanentError("gig 7 never existed")

    transport.serve(sandbox.name("gigs"), responder)

    with pytest.raises(RemoteError) as raised:
        transport.call("", sandbox.name("gigs"), Message(b"get 7"), timeout=PATIENCE)

    assert raised.value.code == "rejected"
    assert "gig 7 never existed" in raised.value.message
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("gigs")), dead)
    [dead_letter] = dead.wait_for(1)
    assert (dead_letter.body, dead_letter_reason(dead_letter.message)) == (b"get 7", "permanent")


def test_a_call_nobody_serves_times_out(sandbox: Sandbox, transport: Transport) -> None:
    sandbox.declare(Topology(queues=[Queue("idle")]))

    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        transport.call("", sandbox.name("idle"), Message(b"anyone?"), timeout=FAST_TIMEOUT)

    assert FAST_TIMEOUT <= time.monotonic() - started < FAST_TIMEOUT + 2.0


def test_a_timed_out_request_is_not_run_later_but_dead_lettered_as_expired(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("idle")]))
    with pytest.raises(RequestTimeout):
        transport.call("", sandbox.name("idle"), Message(b"too late"), timeout=FAST_TIMEOUT)
    requests = Inbox()

    def responder(delivery: Delivery) -> bytes:
        requests(delivery)
        return echo(delivery)

    transport.serve(sandbox.name("idle"), responder)
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("idle")), dead)

    [dead_letter] = dead.wait_for(1)
    assert (dead_letter.body, dead_letter_reason(dead_letter.message)) == (b"too late", "expired")
    # The server is up and answers a fresh request: only that one was ever run.
    assert (
        transport.call("", sandbox.name("idle"), Message(b"in time"), timeout=PATIENCE).body
        == b"answer to in time"
    )
    assert requests.bodies == [b"in time"]


def test_an_undecodable_request_gets_remote_error_undecodable_and_lands_in_the_dead_letter_queue(
    sandbox: Sandbox, transport: Transport
) -> None:
    sandbox.declare(Topology(queues=[Queue("users")]))
    requests = Inbox()

    def decode(message: Message) -> object:
        raise ValueError("not a user query")

    def responder(delivery: Delivery) -> bytes:
        requests(delivery)
        return b"never"

    transport.serve(sandbox.name("users"), responder, decode=decode)

    with pytest.raises(RemoteError) as raised:
        transport.call("", sandbox.name("users"), Message(b"\xff\xfe"), timeout=PATIENCE)

    assert raised.value.code == "undecodable"
    assert "not a user query" in raised.value.message
    dead = Inbox()
    transport.consume(dead_letter_queue_name(sandbox.name("users")), dead)
    [dead_letter] = dead.wait_for(1)
    assert (dead_letter.body, dead_letter_reason(dead_letter.message)) == (b"\xff\xfe", "undecodable")
    assert requests.deliveries == []
