"""The service actor: handlers keyed by message class, all-or-nothing handling, exactly-once effects.

Each service is a pykka `ThreadingActor` that owns a store and handles one
message at a time: an event from the transport (`HandleEvent`) or a command
or query from the gateway (`HandleRequest`). A service declares what it
handles with `@handles(MessageClass)` on a method, and what it publishes in
`publishes`; the topology is derived from those declarations
(`marketplace.wiring`) and `Work.emit` refuses any event the service did not
declare.

Exactly-once effects on at-least-once delivery: handling runs in one store
transaction that also records the message id as processed (for events) or
the idempotency key with its reply (for commands), together with the events
the handling emitted. Those events are published only after the commit, and
the message is acknowledged only once the broker confirmed them. When a
message comes again (a redelivery, a duplicate, a retried command), the
service finds it recorded and publishes the recorded events again instead of
applying the change twice; consumers skip the ids they already processed.

Failures: a `DomainError` refuses the message (a command's caller gets the
error; an event is dead-lettered). Any other exception is a crash: the
message's future fails (so the transport retries it, then dead-letters it)
and the exception escapes the actor, which stops; its supervisor
(`marketplace.runtime`) starts a fresh actor on the same store.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, TypeVar, cast

import attrs
import pykka
from attrs import frozen

from transports import PermanentError

from .codec import Envelope
from .commands import Command, Query, Request
from .errors import DomainError
from .events import Event
from .store import Store, Transaction

PROCESSED = "_processed"
"""Collection of the ids of the messages handled, with the events their handling emitted."""
ANSWERED = "_answered"
"""Collection of the commands answered, by idempotency key, with their reply and events."""

M = TypeVar("M")
Publish = Callable[[Envelope], "Future[None]"]
"""Publishes one envelope; the future completes when the broker has it."""
Observer = Callable[[str, Envelope], None]
"""Told `(service name, envelope)` each time a service has handled an event."""


class UndeclaredEvent(Exception):
    """A service tried to publish an event it did not declare: a programming error."""


def handles(message_class: type[Any]) -> Callable[[M], M]:
    """Mark a method as the handler of `message_class` (an event, command or query)."""

    def mark(method: M) -> M:
        method.__handles__ = message_class  # type: ignore[attr-defined]
        return method

    return mark


@frozen
class Processed:
    """An event handled: the events its handling emitted, to publish again on redelivery."""

    outgoing: tuple[Envelope, ...]


@frozen
class Answered:
    """A command answered: a digest of the command, its reply and the events it emitted.

    Only a digest of the command is kept (commands may carry passwords), enough
    to notice an idempotency key reused for another command. The reply is None
    for commands whose replies are not kept (`Command.KEEPS_REPLY`).
    """

    command_digest: str
    reply: Any
    outgoing: tuple[Envelope, ...]


@frozen
class HandleEvent:
    """Actor message: handle `envelope`; complete `done` once its effects are safe."""

    envelope: Envelope
    done: Future[None]


@frozen
class HandleRequest:
    """Actor message: answer `request`; complete `done` with the reply."""

    request: Request
    done: Future[Any]


@frozen
class Context:
    """What every service gets from the composition root."""

    store: Store
    publish: Publish
    clock: Callable[[], datetime]
    observe: Observer | None = None
    faults: Callable[[str, str], None] | None = None
    """Called with (service, point) at 'before-commit' and 'after-commit': tests inject crashes."""


class Work:
    """One unit of work: the transaction, the time it happens at, and the events it emits."""

    def __init__(
        self,
        service: Service,
        tx: Transaction,
        now: datetime,
        cause: Envelope | Request,
    ) -> None:
        self._service = service
        self.tx = tx
        self.now = now
        self._cause = cause
        self._ids_made = 0
        self.outgoing: list[Envelope] = []

    @property
    def cause_id(self) -> str:
        """The id of the message being handled: the event's message id, or the request's id."""
        cause = self._cause
        return cause.message_id if isinstance(cause, Envelope) else cause.request_id

    @property
    def actor_id(self) -> str | None:
        """The authenticated user who sent the request (None for events and anonymous requests)."""
        return self._cause.actor_id if isinstance(self._cause, Request) else None

    def new_id(self) -> str:
        """A fresh id for a new thing, derived from the message being handled.

        The n-th id made while handling a message is the same every time that
        message is handled: a handling retried after a crash makes the same
        ids, and two runs fed the same messages (memory or RabbitMQ, in any
        interleaving) agree on every id.
        """
        self._ids_made += 1
        return derived_id(self.cause_id, self._ids_made)

    def emit(self, event: Event) -> None:
        """Publish `event` once this work commits; refused unless the service declared it."""
        service = self._service
        if type(event) not in service.publishes:
            raise UndeclaredEvent(f"{service.name} does not publish {type(event).__name__}")
        message_id = self.new_id()
        cause = self._cause
        if isinstance(cause, Envelope):
            envelope = Envelope.caused_by(
                cause, event, producer=service.name, message_id=message_id, occurred_at=self.now
            )
        else:
            envelope = Envelope(
                message_id, self.now, service.name, cause.correlation_id, cause.request_id, event
            )
        self.outgoing.append(envelope)

    # Reading and writing the service's records.

    def get(self, collection: str, key: str) -> Any | None:
        """The record `key` of `collection`, or None."""
        return self.tx.get(collection, key)

    def put(self, collection: str, key: str, record: Any) -> None:
        """Write `record` as `key` of `collection`."""
        self.tx.put(collection, key, record)

    def delete(self, collection: str, key: str) -> None:
        """Remove `key` from `collection` (no error when absent)."""
        self.tx.delete(collection, key)

    def values(self, collection: str) -> list[Any]:
        """Every record of `collection`, in key order."""
        return self.tx.values(collection)


class Service(pykka.ThreadingActor):
    """Base of the seven services: dispatch by message class, exactly-once handling."""

    name: ClassVar[str]
    publishes: ClassVar[frozenset[type[Event]]] = frozenset()
    handlers: ClassVar[dict[type[Any], Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                message_class = getattr(attribute, "__handles__", None)
                if message_class is not None:
                    cls.handlers[message_class] = attribute

    @classmethod
    def consumes(cls) -> frozenset[type[Event]]:
        """The events this service handles."""
        return frozenset(c for c in cls.handlers if issubclass(c, Event))

    @classmethod
    def answers(cls) -> frozenset[type[Command] | type[Query]]:
        """The commands and queries this service handles."""
        return frozenset(c for c in cls.handlers if issubclass(c, Command | Query))

    def __init__(self, context: Context, on_crash: Callable[[Service], None] | None = None) -> None:
        """Subclasses that need more (a mailer, a key) take it as keyword arguments after these."""
        super().__init__()
        self.context = context
        self._on_crash = on_crash

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """The actor crashed: let its supervisor start a successor."""
        if self._on_crash is not None:
            self._on_crash(self)

    def on_receive(self, message: Any) -> Any:
        """Dispatch an actor message; an unexpected exception escapes (the actor crashes)."""
        if isinstance(message, HandleEvent):
            self._handle_event(message)
        elif isinstance(message, HandleRequest):
            self._handle_request(message)
        else:
            raise TypeError(f"{self.name} cannot handle {message!r}")

    def after_commit(self) -> None:
        """Hook run after each command or event has been committed (or found already committed).

        The place for side effects outside the store, done from what the
        store records (the notification service sends its pending e-mails).
        """

    # Events.

    def _handle_event(self, message: HandleEvent) -> None:
        envelope = message.envelope
        handler = self.handlers.get(type(envelope.event))
        if handler is None:
            message.done.set_exception(PermanentError(f"{self.name} does not handle {envelope.type}"))
            return
        try:
            first_time = False
            with self.context.store.transaction() as tx:
                processed = tx.get(PROCESSED, envelope.message_id)
                if processed is None:
                    work = Work(self, tx, self.context.clock(), envelope)
                    handler(self, work, envelope.event)
                    processed = Processed(tuple(work.outgoing))
                    tx.put(PROCESSED, envelope.message_id, processed)
                    first_time = True
                    self._fault("before-commit")
            self._fault("after-commit")
            self.after_commit()
        except DomainError as error:
            message.done.set_exception(PermanentError(str(error)))
            return
        except Exception as error:
            message.done.set_exception(error)
            raise
        if first_time and self.context.observe is not None:
            self.context.observe(self.name, envelope)
        self._publish(processed.outgoing, message.done, None)

    # Commands and queries.

    def _handle_request(self, message: HandleRequest) -> None:
        request = message.request
        handler = self.handlers.get(type(request.body))
        if handler is None:
            message.done.set_exception(DomainError("unknown-command", f"{self.name} cannot {request.type}"))
            return
        try:
            if isinstance(request.body, Query):
                with self.context.store.transaction() as tx:
                    reply = handler(
                        self, Work(self, _ReadOnly(tx), self.context.clock(), request), request.body
                    )
                message.done.set_result(reply)
                return
            key = f"{request.type}:{request.idempotency_key}"
            digest = command_digest(request.body)
            with self.context.store.transaction() as tx:
                answered = tx.get(ANSWERED, key)
                if answered is None or answered.reply is None:
                    work = Work(self, tx, self.context.clock(), request)
                    reply = handler(self, work, request.body)
                    kept = reply if request.body.KEEPS_REPLY else None
                    answered = Answered(digest, kept, tuple(work.outgoing))
                    tx.put(ANSWERED, key, answered)
                    self._fault("before-commit")
                elif answered.command_digest != digest:
                    raise DomainError(
                        "idempotency-key-reused", "this key was used for another command", "idempotency_key"
                    )
                else:
                    reply = answered.reply
            self._fault("after-commit")
            self.after_commit()
        except DomainError as error:
            message.done.set_exception(error)
            return
        except Exception as error:
            message.done.set_exception(error)
            raise
        self._publish(answered.outgoing, message.done, reply)

    # Publishing what a unit of work emitted.

    def _publish(self, outgoing: Sequence[Envelope], done: Future[Any], result: Any) -> None:
        """Publish `outgoing`; complete `done` with `result` once the broker has them all."""
        if not outgoing:
            done.set_result(result)
            return
        remaining = [len(outgoing)]
        lock = threading.Lock()  # confirmations arrive on the publisher's thread and on ours

        def confirmed(sent: Future[None]) -> None:
            error = sent.exception()
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if error is not None:
                _settle(done, error=error)
            elif last:
                _settle(done, result=result)

        for envelope in outgoing:
            try:
                sent = self.context.publish(envelope)
            except Exception as error:
                _settle(done, error=error)
                return
            sent.add_done_callback(confirmed)

    def _fault(self, point: str) -> None:
        if self.context.faults is not None:
            self.context.faults(self.name, point)


def derived_id(cause_id: str, n: int) -> str:
    """The `n`-th id made because of message `cause_id`: 32 hex digits, unique as the cause is."""
    return hashlib.blake2b(f"{cause_id}/{n}".encode(), digest_size=16).hexdigest()


def command_digest(command: Command) -> str:
    """A digest of every field of `command`, secrets included, that reveals none of them."""
    fields = attrs.astuple(cast(Any, command))
    return hashlib.sha256(repr((type(command).__name__, fields)).encode()).hexdigest()


def _settle(done: Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    """Complete `done` unless something completed it first."""
    try:
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)
    except InvalidStateError:
        pass


class _ReadOnly:
    """A transaction that a query may read but never write."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def get(self, collection: str, key: str) -> Any | None:
        return self._tx.get(collection, key)

    def values(self, collection: str) -> list[Any]:
        return self._tx.values(collection)

    def put(self, collection: str, key: str, record: Any) -> None:
        raise TypeError("a query cannot change state")

    def delete(self, collection: str, key: str) -> None:
        raise TypeError("a query cannot change state")
