"""Running a service on a transport: its queues feed its actor, and a supervisor restarts it.

`ServiceRunner` subscribes a service's actor to the service's queues: events
are handed over with a future that settles the delivery once the actor's
effects are safe (so the consumer thread never waits on the actor), requests
are answered with the actor's reply. `Supervisor` keeps one actor running:
when the actor crashes on a message, it starts a new one on the same store
and hands it the messages still waiting in the dead actor's mailbox; the
message that crashed it is retried by the transport's retry policy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import pykka

from transports import Consumer, Delivery, ReplyError, Transport
from transports import message as transport_message

from . import codec, protocol
from .errors import DomainError
from .flows import FlowTracker
from .service import Context, HandleEvent, HandleRequest, Service
from .wiring import Wiring

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT = 10.0


class Supervisor:
    """Keeps one actor of a service running, restarting it after a crash."""

    def __init__(self, service: type[Service], context: Context, dependencies: Mapping[str, Any]) -> None:
        self._service = service
        self._context = context
        self._dependencies = dict(dependencies)
        self._lock = threading.Lock()
        self._waiting: list[Any] = []
        self._stopped = False
        self.restarts = 0
        self._ref = self._start()

    def tell(self, message: Any) -> None:
        """Send `message` to the current actor (to its successor if it just crashed)."""
        with self._lock:
            if self._stopped:
                raise pykka.ActorDeadError(f"{self._service.name} is stopped")
            try:
                self._ref.tell(message)
            except pykka.ActorDeadError:
                self._waiting.append(message)  # the restart hands it over

    def ask(self, message: Any, timeout: float) -> Any:
        """Ask the current actor directly (tests and diagnostics only)."""
        return self._ref.ask(message, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the actor after the messages already in its mailbox."""
        with self._lock:
            self._stopped = True
            ref = self._ref
        with contextlib.suppress(pykka.ActorDeadError):
            ref.stop(block=True, timeout=timeout)

    def _start(self) -> pykka.ActorRef[Service]:
        return self._service.start(self._context, self._restart, **self._dependencies)

    def _restart(self, dead: Service) -> None:
        """Called on the dead actor's thread: start a successor and hand it the mailbox."""
        with self._lock:
            pending = []
            while not dead.actor_inbox.empty():
                envelope = dead.actor_inbox.get()
                pending.append(envelope.message)
            if self._stopped:
                return
            self.restarts += 1
            log.warning("%s crashed; restarted (%d restarts)", self._service.name, self.restarts)
            self._ref = self._start()
            for message in [*pending, *self._waiting]:
                self._ref.tell(message)
            self._waiting.clear()


class ServiceRunner:
    """One service on a transport: its actor, its consumers, its publisher."""

    def __init__(
        self,
        service: type[Service],
        context: Context,
        transport: Transport,
        wiring: Wiring,
        *,
        dependencies: Mapping[str, Any] | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        flows: FlowTracker | None = None,
    ) -> None:
        self.service = service
        self._dependencies = dict(dependencies or {})
        self._context = context
        self._transport = transport
        self._wiring = wiring
        self._request_timeout = request_timeout
        self._consumers: list[Consumer] = []
        self._flows = flows
        self._policy = wiring.retry
        self.supervisor: Supervisor | None = None

    @property
    def name(self) -> str:
        """The service's name."""
        return self.service.name

    def start(self) -> None:
        """Start the actor, then consume the service's queues."""
        self.supervisor = Supervisor(self.service, self._context, self._dependencies)
        if self.service.consumes():
            self._consumers.append(
                self._transport.consume(
                    self._wiring.events_queue(self.name), self._on_event, decode=codec.message_decoder()
                )
            )
        if self.service.answers():
            self._consumers.append(
                self._transport.serve(
                    self._wiring.commands_queue(self.name), self._on_request, decode=protocol.decode_request
                )
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming (in-flight messages finish), then stop the actor."""
        for consumer in self._consumers:
            consumer.cancel(timeout)
        self._consumers.clear()
        if self.supervisor is not None:
            self.supervisor.stop(timeout)

    def _on_event(self, delivery: Delivery) -> Future[None]:
        assert self.supervisor is not None
        done: Future[None] = Future()
        if self._flows is not None:
            done.add_done_callback(lambda f: self._count_handling(delivery, f.exception()))
        self.supervisor.tell(HandleEvent(delivery.payload, done))
        return done

    def _count_handling(self, delivery: Delivery, error: BaseException | None) -> None:
        assert self._flows is not None
        if self._flows.is_final(error, delivery.attempt, self._policy):
            self._flows.handled(self.name, delivery.payload.message_id)

    def _on_request(self, delivery: Delivery) -> bytes:
        assert self.supervisor is not None
        done: Future[Any] = Future()
        self.supervisor.tell(HandleRequest(delivery.payload, done))
        try:
            reply = done.result(self._time_left(delivery))
        except DomainError as error:
            raise ReplyError(error.code, error.message, field=error.field or "") from None
        return protocol.encode_reply(reply)

    def _time_left(self, delivery: Delivery) -> float:
        deadline = delivery.headers.get(transport_message.DEADLINE)
        if isinstance(deadline, int) and not isinstance(deadline, bool):
            return max(0.0, deadline / 1000 - time.time())
        return self._request_timeout
