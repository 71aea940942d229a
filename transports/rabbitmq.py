"""RabbitMQ backend, on pika.

URL: ``amqp://user:password@host:port/vhost`` (``amqps://`` for TLS), with
pika's query options, e.g. ``?heartbeat=30&connection_attempts=3``. The vhost
is URL-quoted (``%2F`` for ``/``).

Supports the whole contract of `transports.base`:

- declared topology: durable exchanges, durable classic queues, each with a
  `<queue>.dlq` (the queue's dead-letter target) and retry queues
  `<queue>.retry.<n>` whose message TTL is the retry delay and which
  dead-letter back into the queue, so that a waiting retry never blocks the
  consumer;
- persistent, mandatory publishing with publisher confirms, up to
  `confirm_window` unconfirmed at once; a returned message fails its future
  with `Unroutable`;
- manual acknowledgement after the handler, `prefetch` per consumer;
- request/reply over RabbitMQ's direct reply-to;
- reconnection: after the broker closes a connection or restarts, the
  transport reconnects with backoff, resumes every consumer, republishes
  every message not yet confirmed and re-sends requests still waiting for
  their reply. Delivery is at least once: a message whose acknowledgement was
  lost with the connection is delivered again, with `redelivered` set.

Threads: each connection (one for publishing and replies, one for
consuming) is owned by one I/O thread running pika's `SelectConnection`;
other threads reach it only through `add_callback_threadsafe`. Handlers run
on one worker thread per consumer, so a slow handler never delays
heartbeats. Declaring, deleting and counting messages use a separate
blocking connection, one call at a time.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from queue import SimpleQueue
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.select_connection import IOLoop

from . import _settlement as settle
from . import base
from . import message as m
from .errors import (
    NotConfirmed,
    ReplyError,
    RequestTimeout,
    TopologyError,
    TransportClosed,
    TransportError,
    Unroutable,
)
from .message import Delivery, Message
from .topology import Topology, dead_letter_queue_name, is_derived_queue
from .url import mask_password, scheme_of

log = logging.getLogger(__name__)

REPLY_TO = "amq.rabbitmq.reply-to"
PERSISTENT = 2
TRANSIENT = 1


def queue_arguments(queue: str) -> dict[str, Any]:
    """The arguments `queue` is declared with; the one place they are written."""
    return {
        "x-queue-type": "classic",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_letter_queue_name(queue),
    }


def retry_queue_arguments(queue: str, delay: float) -> dict[str, Any]:
    """The arguments of a retry queue of `queue`: wait `delay` seconds, then go back."""
    return {
        "x-queue-type": "classic",
        "x-message-ttl": max(1, round(delay * 1000)),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
    }


DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "classic"}


class _IOThread:
    """One thread running pika's I/O loop, shared by the transport's connections."""

    def __init__(self, name: str) -> None:
        self.loop = IOLoop()
        self._thread = threading.Thread(target=self.loop.start, name=name, daemon=True)

    def start(self) -> None:
        """Start the loop's thread (once)."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the I/O thread (thread-safe)."""
        self.loop.add_callback_threadsafe(callback)

    def stop(self, timeout: float) -> None:
        """Stop the loop and its thread, once every connection on it is closed."""
        if self._thread.is_alive():
            self.call_soon(self.loop.stop)
            self._thread.join(timeout)
        self.loop.close()


class _Link:
    """One pika `SelectConnection` on the shared I/O thread, reconnecting by itself."""

    def __init__(
        self,
        name: str,
        params: pika.URLParameters,
        stats: base.StatsCounter,
        reconnect_delay: float,
        reconnect_max_delay: float,
        io: _IOThread,
    ) -> None:
        self.name = name
        self._params = params
        self._stats = stats
        self._reconnect_delay = reconnect_delay
        self._reconnect_max_delay = reconnect_max_delay
        self._io = io
        self._ioloop = io.loop
        self._sessions: list[Any] = []
        self.connection: pika.SelectConnection | None = None
        self._open = threading.Event()
        self._closed = threading.Event()
        self._closing = False
        self._failures = 0
        self._opened_once = False
        self._last_error: BaseException | None = None

    def add_session(self, session: Any) -> None:
        """Call `session.on_open(connection)` on every (re)connection, from the I/O thread."""
        self._sessions.append(session)
        if self.connection is not None and self.connection.is_open:
            session.on_open(self.connection)

    def remove_session(self, session: Any) -> None:
        """Stop telling `session` about reconnections (I/O thread)."""
        if session in self._sessions:
            self._sessions.remove(session)

    def start(self, timeout: float) -> None:
        """Connect, and wait for the first connection."""
        self._io.start()
        self.call_soon(self._connect)
        if not self._open.wait(timeout):
            self.close(timeout=5)
            raise TransportError(f"could not connect ({self.name}): {self._last_error!r}")

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the I/O thread (thread-safe)."""
        self._io.call_soon(callback)

    @property
    def is_open(self) -> bool:
        """Whether the connection is open now."""
        return self.connection is not None and self.connection.is_open

    @property
    def heartbeat(self) -> int | None:
        """The heartbeat interval negotiated for the current connection."""
        if self.connection is None or not self._open.is_set():
            return None
        value = self.connection.params.heartbeat
        return int(value) if isinstance(value, int) else None

    def close(self, timeout: float) -> None:
        """Close the connection (the I/O thread goes on for the other connections)."""
        self._closing = True
        self.call_soon(self._close_connection)
        if not self._closed.wait(timeout):
            log.warning("%s: connection did not close in %.1fs", self.name, timeout)

    def _connect(self) -> None:
        if self._closing:
            self._closed.set()
            return
        self.connection = pika.SelectConnection(
            self._params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_close,
            custom_ioloop=self._ioloop,
        )

    def _on_open(self, connection: pika.SelectConnection) -> None:
        if self._opened_once:
            self._stats.add("reconnects")
            log.warning("%s: reconnected", self.name)
        self._opened_once = True
        self._failures = 0
        self._open.set()
        for session in list(self._sessions):
            session.on_open(connection)

    def _on_open_error(self, _connection: pika.SelectConnection, error: BaseException) -> None:
        self._last_error = error
        self._retry_later(error)

    def _on_close(self, _connection: pika.SelectConnection, reason: BaseException) -> None:
        self._open.clear()
        for session in list(self._sessions):
            session.on_lost()
        if self._closing:
            self._closed.set()
            return
        log.warning("%s: connection lost (%s); reconnecting", self.name, reason)
        self._retry_later(reason)

    def _retry_later(self, reason: BaseException) -> None:
        if self._closing:
            self._closed.set()
            return
        delay = min(self._reconnect_delay * 2**self._failures, self._reconnect_max_delay)
        self._failures += 1
        log.info("%s: connecting again in %.2fs after %r", self.name, delay, reason)
        self._ioloop.call_later(delay, self._connect)

    def _close_connection(self) -> None:
        if self.connection is not None and not (self.connection.is_closed or self.connection.is_closing):
            self.connection.close()
        elif self.connection is None or self.connection.is_closed:
            self._closed.set()


class _Wakeup:
    """Schedules `callback` on a link's I/O thread at most once until it has run."""

    def __init__(self, link: _Link, callback: Callable[[], None]) -> None:
        self._link = link
        self._callback = callback
        self._pending = False

    def request(self) -> None:
        """Ask for `callback` to run soon; repeated requests before it runs coalesce."""
        if not self._pending:
            self._pending = True
            self._link.call_soon(self._run)

    def _run(self) -> None:
        self._pending = False  # cleared first: a request made while running schedules another run
        self._callback()


class _Outgoing:
    """A message on its way to the broker, with the future its publisher waits on."""

    __slots__ = ("exchange", "future", "is_reply", "message", "properties", "returned", "routing_key")

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        message: Message,
        is_reply: bool = False,
        message_id: str | None = None,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.message = message
        self.is_reply = is_reply
        self.returned = False
        self.future: Future[None] = Future()
        self.properties = pika.BasicProperties(
            delivery_mode=TRANSIENT if is_reply else PERSISTENT,
            headers=dict(message.headers) if message.headers else None,
            message_id=message.message_id or message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            reply_to=message.reply_to,
            expiration=None if message.expiration is None else str(max(0, round(message.expiration * 1000))),
        )


class _Window:
    """How many publishes may await their confirm at once; publishers wait while it is full."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._used = 0
        self._waiting = 0
        self._freed = threading.Condition(threading.Lock())

    def take(self, closed: Callable[[], bool]) -> None:
        """Take a place, waiting while none is free; `TransportClosed` once `closed()`."""
        with self._freed:
            while self._used >= self._size and not closed():
                self._waiting += 1
                self._freed.wait(0.1)  # wakes early when a place frees; looks at `closed` meanwhile
                self._waiting -= 1
            if closed():
                raise TransportClosed("transport is closed")
            self._used += 1

    def try_take(self) -> bool:
        """Take a place if one is free, without waiting."""
        with self._freed:
            if self._used >= self._size:
                return False
            self._used += 1
            return True

    def give(self, count: int) -> None:
        """Free `count` places."""
        with self._freed:
            self._used -= count
            if self._waiting:
                self._freed.notify(count)


class _Call:
    """A request waiting for its reply."""

    __slots__ = ("exchange", "message", "reply", "routing_key", "sent")

    def __init__(self, exchange: str, routing_key: str, message: Message) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.message = message
        self.reply: Future[Delivery] = Future()
        self.sent: Future[None] | None = None


class _Publisher:
    """The publishing channel: confirms, returns, and the direct reply-to consumer."""

    def __init__(self, link: _Link, stats: base.StatsCounter, confirm_window: int) -> None:
        self._link = link
        self._stats = stats
        self._window = _Window(confirm_window)
        self._pending: deque[_Outgoing] = deque()
        self._unconfirmed: dict[int, _Outgoing] = {}
        self._seq = 0
        self._channel: Any = None
        self._calls: dict[str, _Call] = {}
        self._flush = _Wakeup(link, self._publish_pending)
        self._closed = False
        self._ready_once = False
        self.idle = threading.Condition()

    # caller threads

    def publish(self, item: _Outgoing) -> Future[None]:
        """Queue `item` for publishing; blocks while the confirm window is full."""
        self._window.take(lambda: self._closed)
        self._pending.append(item)
        self._flush.request()
        return item.future

    def call(self, call: _Call) -> None:
        """Register `call` and send its request."""
        assert call.message.correlation_id is not None
        self._calls[call.message.correlation_id] = call
        self._send_request(call)

    def forget(self, call: _Call) -> None:
        """Stop waiting for the reply of `call`."""
        self._calls.pop(call.message.correlation_id or "", None)

    def outstanding(self) -> int:
        """Messages not yet confirmed."""
        return len(self._pending) + len(self._unconfirmed)

    def waiting_calls(self) -> int:
        """Requests waiting for their reply."""
        return len(self._calls)

    def close(self) -> None:
        """Refuse new publishes; fail what is still unconfirmed and every waiting call."""
        self._closed = True
        for item in [*self._pending, *self._unconfirmed.values()]:
            self._complete(item, TransportClosed("transport closed before the broker confirmed"))
        self._pending.clear()
        self._unconfirmed.clear()
        for call in list(self._calls.values()):
            if not call.reply.done():
                call.reply.set_exception(TransportClosed("transport closed while waiting for the reply"))
        self._calls.clear()

    def _send_request(self, call: _Call) -> None:
        item = _Outgoing(call.exchange, call.routing_key, call.message)
        call.sent = item.future
        item.future.add_done_callback(lambda f: self._request_sent(call, f))
        self.publish(item)

    def _request_sent(self, call: _Call, sent: Future[None]) -> None:
        error = sent.exception()
        if error is not None and not call.reply.done():
            call.reply.set_exception(error)

    # I/O thread

    def on_open(self, connection: pika.SelectConnection) -> None:
        """Open the channel: confirm mode, returns, reply consumer; then publish what waits."""
        connection.channel(on_open_callback=self._on_channel_open)

    def on_lost(self) -> None:
        """The connection is gone: what was unconfirmed will be published again."""
        self._channel = None
        self._requeue_unconfirmed()

    def _on_channel_open(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._on_confirm_mode(channel))

    def _on_confirm_mode(self, channel: Any) -> None:
        channel.basic_consume(
            REPLY_TO, self._on_reply, auto_ack=True, callback=lambda _frame: self._on_ready(channel)
        )

    def _on_ready(self, channel: Any) -> None:
        self._channel = channel
        self._seq = 0
        if self._ready_once:
            # Replies to requests sent before the connection was lost went to a reply
            # address that no longer exists: ask again (commands carry idempotency keys).
            for call in list(self._calls.values()):
                if call.sent is not None and call.sent.done() and not call.reply.done():
                    self._resend(call)
        self._ready_once = True
        self._publish_pending()

    def _resend(self, call: _Call) -> None:
        item = _Outgoing(call.exchange, call.routing_key, call.message)
        call.sent = item.future
        item.future.add_done_callback(lambda f: self._request_sent(call, f))
        if self._window.try_take():
            self._pending.append(item)
        else:  # never block the I/O thread: hand the wait to a thread of its own
            threading.Thread(target=self.publish, args=(item,), daemon=True).start()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self._channel and self._channel is not None:
            return
        self._channel = None
        missing_exchange = _missing_exchange(reason)
        if missing_exchange is not None:
            for seq, item in list(self._unconfirmed.items()):
                if item.exchange == missing_exchange:
                    del self._unconfirmed[seq]
                    self._complete(item, TopologyError(f"exchange {missing_exchange!r} does not exist"))
        self._requeue_unconfirmed()
        if self._link.is_open and not self._closed:
            log.warning("publishing channel closed (%s); opening another", reason)
            assert self._link.connection is not None
            self.on_open(self._link.connection)

    def _requeue_unconfirmed(self) -> None:
        # Replies are not sent again: their reply address died with the old connection.
        again = []
        for item in self._unconfirmed.values():
            if item.is_reply:
                self._complete(item, None)
            else:
                again.append(item)
        self._unconfirmed.clear()
        self._pending.extendleft(reversed(again))

    def _publish_pending(self) -> None:
        channel = self._channel
        pending = self._pending
        unconfirmed = self._unconfirmed
        while pending and channel is not None and channel.is_open:
            item = pending.popleft()
            try:
                channel.basic_publish(
                    item.exchange,
                    item.routing_key,
                    item.message.body,
                    item.properties,
                    mandatory=not item.is_reply,
                )
            except (pika.exceptions.AMQPError, OSError) as error:
                if isinstance(error, pika.exceptions.UnsupportedAMQPFieldException):
                    self._complete(item, TypeError(f"cannot encode the message: {error}"))
                    continue
                pending.appendleft(item)  # the channel went away under us: publish again later
                log.debug("publish failed; will retry on the next channel", exc_info=True)
                return
            self._seq += 1
            unconfirmed[self._seq] = item

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        error: BaseException | None = None
        if isinstance(method, pika.spec.Basic.Nack):
            error = NotConfirmed("the broker refused the message (nack)")
        unconfirmed = self._unconfirmed
        if method.multiple:
            tag = method.delivery_tag
            done = []
            while unconfirmed:
                seq = next(iter(unconfirmed))
                if seq > tag:
                    break
                done.append(unconfirmed.pop(seq))
            self._complete_all(done, error)
        else:
            item = unconfirmed.pop(method.delivery_tag, None)
            if item is not None:
                self._complete(item, error)

    def _on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        for item in self._unconfirmed.values():
            if (
                not item.returned
                and item.properties.message_id == properties.message_id
                and item.exchange == method.exchange
                and item.routing_key == method.routing_key
            ):
                item.returned = True
                return

    def _on_reply(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        call = self._calls.get(properties.correlation_id or "")
        if call is None or call.reply.done():
            return  # a late or duplicate reply: its caller has given up or already has it
        call.reply.set_result(_delivery(REPLY_TO, method, properties, body))

    def _complete(self, item: _Outgoing, error: BaseException | None) -> None:
        self._complete_all([item], error)

    def _complete_all(self, items: list[_Outgoing], error: BaseException | None) -> None:
        """Settle the futures of `items`, confirmed together (or all refused with `error`)."""
        self._window.give(len(items))
        published = 0
        for item in items:
            if item.future.done():
                continue
            failure = (
                Unroutable(item.exchange, item.routing_key) if error is None and item.returned else error
            )
            if failure is None:
                published += not item.is_reply
                item.future.set_result(None)
            else:
                if isinstance(failure, Unroutable):
                    self._stats.add("unroutable")
                item.future.set_exception(failure)
        if published:
            self._stats.add("published", published)
        if not self._pending and not self._unconfirmed:
            with self.idle:
                self.idle.notify_all()


def _missing_exchange(reason: BaseException) -> str | None:
    text = str(reason)
    if "NOT_FOUND" in text and "no exchange" in text:
        start = text.find("'")
        end = text.find("'", start + 1)
        if 0 <= start < end:
            return text[start + 1 : end]
    return None


def _delivery(queue: str, method: Any, properties: Any, body: bytes) -> Delivery:
    headers = properties.headers or {}
    expiration = properties.expiration
    message = Message(
        body,
        headers=headers,
        message_id=properties.message_id,
        correlation_id=properties.correlation_id,
        content_type=properties.content_type,
        expiration=None if expiration is None else int(expiration) / 1000,
        reply_to=properties.reply_to,
    )
    return Delivery(
        message,
        queue=queue,
        exchange=str(headers.get(m.ORIGINAL_EXCHANGE, method.exchange)),
        routing_key=str(headers.get(m.ORIGINAL_ROUTING_KEY, method.routing_key)),
        redelivered=bool(getattr(method, "redelivered", False)),
        attempt=settle.attempt_of(headers),
        payload=body,
    )


_STOP = object()
_WAKE = object()


class Consumer(base.Consumer):
    """A subscription: a channel on the consuming connection and a worker thread for the handler."""

    def __init__(
        self,
        transport: Transport,
        queue: str,
        handler: Callable[[Delivery], Any],
        *,
        decode: base.Decoder | None,
        prefetch: int,
        replying: bool,
    ) -> None:
        self.queue = queue
        self._transport = transport
        self._link = transport._consume_link
        self._stats = transport._counter
        self._handler = handler
        self._decode = decode
        self._prefetch = prefetch
        self._replying = replying
        self._policy = None if is_derived_queue(queue) else transport._topology.retry_policy(queue)
        self._channel: Any = None
        self._generation = 0
        self._cancelled = False
        self._started = threading.Event()
        self._cancel_ok = threading.Event()
        self._failure: BaseException | None = None
        self._work: SimpleQueue[Any] = SimpleQueue()
        self._ops: deque[tuple[int, bool, int]] = deque()
        self._flush_ops = _Wakeup(self._link, self._send_ops)
        self._acked_upto = 0
        self._finished: set[int] = set()  # settled tags above _acked_upto (I/O thread)
        self._acks_sent = threading.Event()
        self._unsettled = 0
        self._settled = threading.Lock()  # guards _unsettled
        self._worker = threading.Thread(
            target=self._work_loop, name=f"transports-consumer-{queue}", daemon=True
        )

    @property
    def unsettled(self) -> int:
        """Deliveries received and not yet settled."""
        return self._unsettled

    def start(self, timeout: float) -> None:
        """Start the worker, subscribe, and wait until the broker confirmed the subscription."""
        self._worker.start()
        self._link.call_soon(lambda: self._link.add_session(self))
        if not self._started.wait(timeout) or self._failure is not None:
            self.cancel(timeout=1)
            raise TopologyError(f"could not consume from {self.queue!r}: {self._failure!r}")

    def cancel(self, timeout: float = 10.0) -> None:
        """Stop receiving; handle and settle what was already received; close the channel."""
        if self._cancelled:
            return
        self._cancelled = True
        self._cancel_ok.clear()
        self._link.call_soon(self._basic_cancel)
        deadline = time.monotonic() + timeout
        self._cancel_ok.wait(max(0.0, deadline - time.monotonic()))
        # After every delivery received before the broker confirmed the cancel; the worker
        # handles those, then waits for the settlement of any still in progress.
        self._work.put(_STOP)
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive():
            log.warning(
                "consumer of %r: %d deliveries still unsettled after %.1fs",
                self.queue,
                self._unsettled,
                timeout,
            )
        self._ops.append((-1, False, 0))  # close the channel after the last acknowledgements
        self._flush_ops.request()
        if not self._acks_sent.wait(max(0.0, deadline - time.monotonic())):
            log.warning("consumer of %r: last acknowledgements not sent within %.1fs", self.queue, timeout)
        self._transport._forget_consumer(self)

    # I/O thread

    def on_open(self, connection: pika.SelectConnection) -> None:
        """Open a channel, set the prefetch, subscribe."""
        if not self._cancelled:
            connection.channel(on_open_callback=self._on_channel_open)

    def on_lost(self) -> None:
        """The connection is gone: acknowledgements of what it delivered can no longer be sent."""
        self._channel = None
        self._generation += 1

    def _on_channel_open(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.basic_qos(prefetch_count=self._prefetch, callback=lambda _f: self._subscribe(channel))

    def _subscribe(self, channel: Any) -> None:
        self._generation += 1
        generation = self._generation

        def on_message(_ch: Any, method: Any, properties: Any, body: bytes) -> None:
            with self._settled:
                self._unsettled += 1  # counted from receipt, so in_flight never misses it
            self._work.put((generation, method, properties, body))

        channel.basic_consume(self.queue, on_message, callback=lambda _f: self._subscribed(channel))

    def _subscribed(self, channel: Any) -> None:
        self._channel = channel
        self._acked_upto = 0  # tags start again at 1 on a new channel
        self._finished.clear()
        self._started.set()
        if self._cancelled:
            self._basic_cancel()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if channel is not self._channel and self._channel is not None:
            return
        self._channel = None
        self._generation += 1
        self._cancel_ok.set()
        if self._cancelled or not self._link.is_open:
            return
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker) and reason.reply_code in (404, 403):
            self._failure = reason  # the queue is gone or forbidden: subscribing again cannot help
            self._started.set()
            log.error("consumer of %r stopped: %s", self.queue, reason)
            return
        log.warning("consumer channel of %r closed (%s); subscribing again", self.queue, reason)
        assert self._link.connection is not None
        self.on_open(self._link.connection)

    def _basic_cancel(self) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            self._cancel_ok.set()
            return
        tag = next(iter(channel.consumer_tags), None)
        if tag is None:
            self._cancel_ok.set()
            return
        channel.basic_cancel(tag, callback=lambda _f: self._cancel_ok.set())

    def _send_ops(self) -> None:
        """Send the settlements gathered since the last call, acknowledging in as few frames as possible.

        Delivery tags of one channel count up from 1; when every tag up to T is
        settled, one `basic.ack(T, multiple=True)` acknowledges them all.
        """
        channel = self._channel
        usable = channel is not None and channel.is_open
        to_ack: list[int] = []
        closing = False
        while self._ops:
            generation, requeue, tag = self._ops.popleft()
            if generation == -1:
                closing = True
            elif generation != self._generation or not usable:
                continue  # delivered by a connection that is gone: the broker delivers it again
            elif requeue:
                channel.basic_nack(tag, requeue=True)
                self._finished.add(tag)
                self._stats.add("requeued")
            else:
                to_ack.append(tag)
        if to_ack:
            self._acknowledge(channel, to_ack)
        if closing:
            self._link.remove_session(self)
            if usable:
                channel.close()
            self._acks_sent.set()

    def _acknowledge(self, channel: Any, tags: list[int]) -> None:
        settled = self._finished
        settled.update(tags)
        upto = self._acked_upto
        while upto + 1 in settled:
            upto += 1
        contiguous = [t for t in tags if t <= upto]
        if contiguous:
            channel.basic_ack(max(contiguous), multiple=True)
        for tag in tags:
            if tag > upto:
                channel.basic_ack(tag)  # a gap below it is still in a handler
        settled.difference_update(range(self._acked_upto + 1, upto + 1))
        self._acked_upto = upto
        self._stats.add("acked", len(tags))

    # worker thread

    def _work_loop(self) -> None:
        work = self._work
        stopping = False
        while not (stopping and self._unsettled == 0):
            item = work.get()
            if item is _STOP:
                stopping = True
            elif item is _WAKE:
                continue
            elif isinstance(item, tuple):
                generation, method, properties, body = item
                if generation != self._generation:
                    self._forget_delivery()  # its connection is gone; the broker redelivers it
                    continue
                self._run(generation, method.delivery_tag, _delivery(self.queue, method, properties, body))
            else:
                item()

    def _run(self, generation: int, tag: int, delivery: Delivery) -> None:
        self._stats.add("delivered")
        if delivery.redelivered:
            self._stats.add("redelivered")
        if self._replying and settle.is_past_deadline(delivery.headers):
            expired = settle.dead_letter(delivery, m.REASON_EXPIRED, "the caller's deadline passed")
            self._apply(generation, tag, delivery, expired)
            return
        if self._decode is not None:
            try:
                payload = self._decode(delivery.message)
            except Exception as error:
                if self._replying:
                    self._reply(delivery, settle.undecodable_reply(delivery, error))
                undecodable = settle.dead_letter(delivery, m.REASON_UNDECODABLE, error)
                self._apply(generation, tag, delivery, undecodable)
                return
            delivery = Delivery(
                delivery.message,
                delivery.queue,
                delivery.exchange,
                delivery.routing_key,
                delivery.redelivered,
                delivery.attempt,
                payload,
            )
        try:
            result = self._handler(delivery)
        except Exception as error:
            self._finish(generation, tag, delivery, error)
            return
        if self._replying:
            self._reply(delivery, settle.reply_message(delivery, result))
            self._finish(generation, tag, delivery, None)
        elif isinstance(result, Future):
            result.add_done_callback(
                lambda f: self._work.put(lambda: self._finish(generation, tag, delivery, f.exception()))
            )
        else:
            self._finish(generation, tag, delivery, None)

    def _finish(self, generation: int, tag: int, delivery: Delivery, error: BaseException | None) -> None:
        if self._replying and isinstance(error, ReplyError):
            self._reply(delivery, settle.error_reply(delivery, error))
            self._apply(generation, tag, delivery, settle.ACK)
            return
        if self._policy is None:
            outcome: settle.Settlement = settle.ACK if error is None else settle.PUT_BACK
        else:
            outcome = settle.decide(delivery, error, self._policy)
        if self._replying and error is not None and isinstance(outcome, settle.DeadLetter):
            self._reply(delivery, settle.error_reply(delivery, error))
        self._apply(generation, tag, delivery, outcome)

    def _apply(self, generation: int, tag: int, delivery: Delivery, outcome: settle.Settlement) -> None:
        if isinstance(outcome, settle.Ack | settle.PutBack):
            self._settle(generation, tag, requeue=isinstance(outcome, settle.PutBack))
            return
        self._stats.add("retried" if isinstance(outcome, settle.Retry) else "dead_lettered")
        try:
            sent = self._transport._publisher.publish(_Outgoing("", outcome.queue, outcome.message))
        except TransportClosed:
            self._settle(generation, tag, requeue=True)
            return
        # Acknowledge only once the copy is safe on the broker; if it is not, the original stays.
        sent.add_done_callback(lambda f: self._settle(generation, tag, requeue=f.exception() is not None))

    def _settle(self, generation: int, tag: int, *, requeue: bool) -> None:
        self._ops.append((generation, requeue, tag))
        self._flush_ops.request()
        self._forget_delivery()

    def _forget_delivery(self) -> None:
        with self._settled:
            self._unsettled -= 1
            if self._unsettled == 0 and self._cancelled:  # the worker may be waiting for this to stop
                self._work.put(_WAKE)

    def _reply(self, request: Delivery, reply: Message) -> None:
        reply_to = request.message.reply_to
        if not reply_to:
            return
        try:
            self._transport._publisher.publish(_Outgoing("", reply_to, reply, is_reply=True))
        except TransportClosed:
            log.warning("reply to %s dropped: transport closed", reply_to)


class Transport(base.Transport):
    """The RabbitMQ transport: see the module docstring for what it does and how.

    Options: `prefetch` (per consumer), `confirm_window` (unconfirmed
    publishes at once), `reconnect_delay` and `reconnect_max_delay` (seconds,
    doubling backoff between connection attempts), `connect_timeout` (seconds
    to wait for the first connection).
    """

    def __init__(
        self,
        url: str,
        *,
        prefetch: int = base.DEFAULT_PREFETCH,
        confirm_window: int = base.DEFAULT_CONFIRM_WINDOW,
        reconnect_delay: float = 0.2,
        reconnect_max_delay: float = 5.0,
        connect_timeout: float = 30.0,
    ) -> None:
        if scheme_of(url) not in ("amqp", "amqps"):
            raise ValueError(f"not a RabbitMQ URL: {mask_password(url)!r}")
        self.url = mask_password(url)
        self._raw_url = url
        self._prefetch = prefetch
        self._counter = base.StatsCounter()
        self._topology = Topology()
        self._exchanges: frozenset[str] = frozenset()  # declared exchange names, for publish's check
        self._topology_lock = threading.Lock()
        self._consumers: list[Consumer] = []
        self._closed = False
        # Ids for messages published without one: unique per transport, cheaper than uuid4 each.
        self._id_prefix = uuid.uuid4().hex[:16] + "-"
        self._id_counter = itertools.count(1)
        self._admin = _Admin(url)
        self._io = _IOThread("transports-rabbitmq-io")
        self._publish_link = _Link(
            "publish", pika.URLParameters(url), self._counter, reconnect_delay, reconnect_max_delay, self._io
        )
        self._consume_link = _Link(
            "consume", pika.URLParameters(url), self._counter, reconnect_delay, reconnect_max_delay, self._io
        )
        self._publisher = _Publisher(self._publish_link, self._counter, confirm_window)
        self._publish_link.add_session(self._publisher)
        try:
            self._publish_link.start(connect_timeout)
            self._consume_link.start(connect_timeout)
        except BaseException:
            self._publish_link.close(timeout=5)
            self._consume_link.close(timeout=5)
            self._io.stop(timeout=5)
            raise

    @property
    def heartbeat(self) -> int | None:
        """The heartbeat interval (seconds) negotiated with the broker; the smallest of both links."""
        values = [v for v in (self._publish_link.heartbeat, self._consume_link.heartbeat) if v is not None]
        return min(values) if values else None

    def declare(self, topology: Topology) -> None:
        """Declare `topology` on the broker (idempotent; a conflict raises `TopologyError`)."""
        self._check_open()
        with self._topology_lock:
            try:
                merged = self._topology.merged(topology)
            except ValueError as error:
                raise TopologyError(str(error)) from None
            self._admin.declare(topology)
            self._topology = merged
            self._exchanges = frozenset(e.name for e in merged.exchanges)

    def delete(self, topology: Topology) -> None:
        """Delete the exchanges and queues of `topology` (with their derived queues)."""
        with self._topology_lock:
            self._admin.delete(topology)
            self._topology = self._topology.without(topology)
            self._exchanges = frozenset(e.name for e in self._topology.exchanges)

    def publish(self, exchange: str, routing_key: str, message: Message) -> Future[None]:
        """Publish persistently with a confirm; see `transports.base`."""
        self._check_open()
        if message.headers:
            settle.check_headers(message.headers)
        if exchange and exchange not in self._exchanges:
            raise TopologyError(f"exchange {exchange!r} is not declared")
        # Every message gets an id: a returned message is matched by it.
        message_id = None if message.message_id else f"{self._id_prefix}{next(self._id_counter):x}"
        return self._publisher.publish(_Outgoing(exchange, routing_key, message, message_id=message_id))

    def consume(
        self,
        queue: str,
        handler: base.Handler,
        *,
        decode: base.Decoder | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        """Start consuming `queue`; see `transports.base`."""
        return self._subscribe(queue, handler, decode, prefetch, replying=False)

    def serve(
        self,
        queue: str,
        responder: base.Responder,
        *,
        decode: base.Decoder | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        """Answer requests arriving on `queue`; see `transports.base`."""
        return self._subscribe(queue, responder, decode, prefetch, replying=True)

    def call(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Delivery:
        """Send a request over direct reply-to and wait for its reply; see `transports.base`."""
        self._check_open()
        if exchange and exchange not in self._exchanges:
            raise TopologyError(f"exchange {exchange!r} is not declared")
        headers = dict(message.headers)
        headers[m.DEADLINE] = settle.deadline_after(timeout)
        request = Message(
            message.body,
            headers,
            message.message_id or uuid.uuid4().hex,
            message.correlation_id or uuid.uuid4().hex,
            message.content_type,
            timeout,
            REPLY_TO,
        )
        call = _Call(exchange, routing_key, request)
        self._publisher.call(call)
        try:
            reply = call.reply.result(timeout)
        except TimeoutError:
            raise RequestTimeout(f"no reply from {exchange!r}/{routing_key!r} within {timeout}s") from None
        finally:
            self._publisher.forget(call)
        return settle.raise_if_error(reply)

    def queue_size(self, queue: str) -> int:
        """Messages ready on `queue`."""
        return self._admin.queue_size(queue)

    def stats(self) -> base.TransportStats:
        """A snapshot of the counters."""
        return self._counter.snapshot()

    def in_flight(self) -> int:
        """Unconfirmed publishes, unsettled deliveries and unanswered requests of this transport."""
        return (
            self._publisher.outstanding()
            + self._publisher.waiting_calls()
            + sum(consumer.unsettled for consumer in list(self._consumers))
        )

    def close(self, timeout: float = 10.0) -> None:
        """Cancel consumers (draining in-flight work), wait for confirms, close connections."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        for consumer in list(self._consumers):
            consumer.cancel(max(0.1, deadline - time.monotonic()))
        with self._publisher.idle:
            self._publisher.idle.wait_for(
                lambda: self._publisher.outstanding() == 0, max(0.0, deadline - time.monotonic())
            )
        self._publisher.close()
        self._consume_link.close(max(1.0, deadline - time.monotonic()))
        self._publish_link.close(max(1.0, deadline - time.monotonic()))
        self._io.stop(max(1.0, deadline - time.monotonic()))
        self._admin.close()

    def _subscribe(
        self,
        queue: str,
        handler: Callable[[Delivery], Any],
        decode: base.Decoder | None,
        prefetch: int | None,
        replying: bool,
    ) -> Consumer:
        self._check_open()
        if not self._topology.has_queue(queue):
            raise TopologyError(f"queue {queue!r} is not declared")
        if replying and is_derived_queue(queue):
            raise TopologyError(f"queue {queue!r} is a dead-letter or retry queue: it cannot serve requests")
        consumer = Consumer(
            self,
            queue,
            handler,
            decode=decode,
            prefetch=self._prefetch if prefetch is None else prefetch,
            replying=replying,
        )
        self._consumers.append(consumer)
        consumer.start(timeout=30)
        return consumer

    def _forget_consumer(self, consumer: Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed("transport is closed")


class _Admin:
    """A blocking connection for declaring, deleting and counting, one call at a time."""

    def __init__(self, url: str) -> None:
        self._params = pika.URLParameters(url)
        self._params.heartbeat = 0  # idle between calls; TCP keepalive is enough
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None

    def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues with their dead-letter and retry queues, and bindings."""

        def run(channel: Any) -> None:
            for exchange in topology.exchanges:
                channel.exchange_declare(exchange.name, exchange.type.value, durable=True)
            for queue in topology.queues:
                channel.queue_declare(
                    dead_letter_queue_name(queue.name), durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
                )
                for name, delay in topology.retry_queues(queue.name):
                    channel.queue_declare(
                        name, durable=True, arguments=retry_queue_arguments(queue.name, delay)
                    )
                channel.queue_declare(queue.name, durable=True, arguments=queue_arguments(queue.name))
            for binding in topology.bindings:
                channel.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)

        self._run(run)

    def delete(self, topology: Topology) -> None:
        """Delete the queues (derived ones included) and exchanges of `topology`."""

        def run(channel: Any) -> None:
            for queue in topology.queues:
                channel.queue_delete(queue.name)
                channel.queue_delete(dead_letter_queue_name(queue.name))
                for name, _delay in topology.retry_queues(queue.name):
                    channel.queue_delete(name)
            for exchange in topology.exchanges:
                channel.exchange_delete(exchange.name)

        self._run(run)

    def queue_size(self, queue: str) -> int:
        """Messages ready on `queue`."""
        count: list[int] = []
        self._run(
            lambda channel: count.append(channel.queue_declare(queue, passive=True).method.message_count)
        )
        return count[0]

    def close(self) -> None:
        """Close the blocking connection."""
        with self._lock:
            self._disconnect()

    def _run(self, action: Callable[[Any], None]) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._channel is None or not self._channel.is_open:
                        if self._connection is None or not self._connection.is_open:
                            self._connection = pika.BlockingConnection(self._params)
                        self._channel = self._connection.channel()
                    action(self._channel)
                    return
                except pika.exceptions.ChannelClosedByBroker as error:
                    self._channel = None
                    raise TopologyError(
                        f"the broker refused: {error.reply_code} {error.reply_text}"
                    ) from None
                except pika.exceptions.AMQPConnectionError as error:
                    self._disconnect()
                    if attempt == 2:
                        raise TransportError(f"broker unreachable: {error!r}") from None

    def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError:
                log.debug("closing the admin connection failed", exc_info=True)
