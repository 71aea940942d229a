"""The messaging contract every backend implements, with identical observable behaviour.

Publishing
    `publish` returns a future that completes once the broker has taken
    responsibility for the message (on RabbitMQ: a publisher confirm), or fails
    with `Unroutable` when no queue matched, `NotConfirmed` when the broker
    refused it, or `TransportClosed`. Messages are persistent. Many publishes
    may be outstanding at once; `publish` blocks only when the configured
    window of unconfirmed messages is full (never, on the memory backend,
    which confirms at once). A message published without a `message_id` may
    be given one by the backend.

Consuming
    `consume` calls `handler(delivery)` for each message of a declared queue,
    at most `prefetch` unacknowledged at a time, and acknowledges the message
    once the handler returned. A handler may instead return a
    `concurrent.futures.Future`: the message is then settled when the future
    completes, so that work can be handed to another thread without blocking
    the consumer. Settlement follows the outcome:

    - success: acknowledged;
    - `Requeue`: put back on the queue, delivered again with `redelivered` set;
    - `PermanentError`, or the consumer's decoder failing: dead-lettered at once
      onto `<queue>.dlq` (reason `permanent` or `undecodable`);
    - any other exception: tried again after the queue's retry delay, without
      blocking the consumer, with the attempt count in the `x-attempt` header;
      once `max_attempts` is reached, dead-lettered (reason
      `retries-exhausted`).

    A dead-lettered message keeps its body and headers and gains the reason,
    the error and where it came from (see `transports.message`).

Request/reply
    `call` publishes a request and waits for the reply of the `serve`r of the
    queue the request is routed to (a declared queue, not a derived one). The
    request expires with the timeout; a reply that the responder produced by
    raising `ReplyError` (or a failure that dead-lettered the request)
    surfaces as `RemoteError`; no reply in time raises `RequestTimeout`.

Closing
    `close` stops consuming, lets in-flight handlers finish and settle,
    waits for outstanding confirms, then releases connections and threads.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from attrs import define

from .message import Delivery, Message
from .topology import Topology

Handler = Callable[[Delivery], "Future[Any] | None"]
"""Handles one delivery; returns None when done, or a future that settles it later."""
Responder = Callable[[Delivery], "bytes | Message"]
"""Answers one request with the reply's body (or a whole message)."""
Decoder = Callable[[Message], Any]
"""Turns a message into the payload handed to the handler; raising means undecodable."""

DEFAULT_PREFETCH = 1000
"""Unacknowledged deliveries per consumer. High, because handlers may hand deliveries on and
settle them later (futures): a small window starves a fast consumer. A consumer competing
with others for one queue may want less, for fairness."""
DEFAULT_CONFIRM_WINDOW = 1000


@define
class TransportStats:
    """Counters kept by a transport since it was opened.

    `published` counts messages the broker accepted from this transport
    (retries and dead letters it republished included, replies excluded);
    `acked` counts deliveries this transport finished with: acknowledged after
    success, after scheduling a retry, or after dead-lettering.
    """

    published: int = 0
    unroutable: int = 0
    delivered: int = 0
    redelivered: int = 0
    acked: int = 0
    requeued: int = 0
    retried: int = 0
    dead_lettered: int = 0
    reconnects: int = 0


class StatsCounter:
    """Thread-safe counters behind `Transport.stats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = TransportStats()

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter called `name`."""
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + amount)

    def snapshot(self) -> TransportStats:
        """A copy of the counters as they are now."""
        with self._lock:
            s = self._stats
            return TransportStats(
                s.published,
                s.unroutable,
                s.delivered,
                s.redelivered,
                s.acked,
                s.requeued,
                s.retried,
                s.dead_lettered,
                s.reconnects,
            )


class Consumer(ABC):
    """A running subscription to one queue."""

    queue: str

    @abstractmethod
    def cancel(self, timeout: float = 10.0) -> None:
        """Stop receiving; let deliveries already handed over finish and settle."""


class Transport(ABC):
    """A connection to a broker: declare, publish, consume, request/reply, close."""

    url: str
    """The URL this transport was opened with, password masked."""

    @abstractmethod
    def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues (each with its dead-letter and retry queues) and bindings."""

    @abstractmethod
    def delete(self, topology: Topology) -> None:
        """Remove what `declare(topology)` created, messages included."""

    @abstractmethod
    def publish(self, exchange: str, routing_key: str, message: Message) -> Future[None]:
        """Publish a persistent message; the future completes when the broker has it."""

    @abstractmethod
    def consume(
        self,
        queue: str,
        handler: Handler,
        *,
        decode: Decoder | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        """Call `handler` for each message of the declared queue `queue`."""

    @abstractmethod
    def call(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Delivery:
        """Send a request and wait at most `timeout` seconds for its reply."""

    @abstractmethod
    def serve(
        self,
        queue: str,
        responder: Responder,
        *,
        decode: Decoder | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        """Answer each request arriving on the declared queue `queue` with `responder`."""

    @abstractmethod
    def queue_size(self, queue: str) -> int:
        """Messages ready on `queue` (not counting those delivered and not yet settled)."""

    @abstractmethod
    def stats(self) -> TransportStats:
        """A snapshot of this transport's counters."""

    @abstractmethod
    def in_flight(self) -> int:
        """Work this transport has taken on and not finished: 0 once everything is settled.

        Publishes not yet confirmed, deliveries handed to handlers and not yet
        settled, requests waiting for their reply; the memory backend, being
        the broker too, also counts messages waiting in consumed queues and
        retry queues. (On RabbitMQ, messages waiting on the broker are seen
        with `queue_size`.)
        """

    @abstractmethod
    def close(self, timeout: float = 10.0) -> None:
        """Stop consuming, drain in-flight work, wait for confirms, release everything."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
