"""Runs one service actor for a test: send it events and requests, see what it publishes.

The actor is the real one (pykka, its own thread, its own store); the
transport is replaced by a list that records every envelope the service
publishes, confirmed at once. Time and ids come from deterministic factories.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import pykka

from marketplace.codec import Envelope
from marketplace.commands import Command, Query, Request
from marketplace.events import Event
from marketplace.service import Context, HandleEvent, HandleRequest, Service
from marketplace.store import MemoryStore

TIMEOUT = 10.0
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward by `timedelta(**delta)`."""
        self.now += timedelta(**delta)


def sequential_ids(prefix: str = "id") -> Callable[[], str]:
    """Ids `id0001`, `id0002`, ... (deterministic, valid identifiers)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):04d}"


class ServiceHarness:
    """One running service actor with a recording publisher."""

    def __init__(
        self,
        service: type[Service],
        *,
        clock: FakeClock | None = None,
        new_id: Callable[[], str] | None = None,
        **dependencies: Any,
    ) -> None:
        self.clock = clock or FakeClock()
        self.new_id = new_id or sequential_ids()
        self.store = MemoryStore()
        self.published: list[Envelope] = []
        self.service = service
        self.context = Context(store=self.store, publish=self._publish, clock=self.clock)
        self.ref: pykka.ActorRef[Service] = service.start(self.context, None, **dependencies)
        self._event_ids = sequential_ids("msg")

    def _publish(self, envelope: Envelope) -> Future[None]:
        self.published.append(envelope)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def deliver(
        self, event: Event, *, producer: str = "test", message_id: str | None = None
    ) -> list[Envelope]:
        """Hand `event` to the service; return what it published while handling it.

        Raises what the handling raised (a dead-lettered event raises `PermanentError`).
        """
        envelope = Envelope.start(
            event, producer=producer, message_id=message_id or self._event_ids(), occurred_at=self.clock()
        )
        return self.deliver_envelope(envelope)

    def deliver_envelope(self, envelope: Envelope) -> list[Envelope]:
        """Hand a ready envelope to the service (to test duplicates: send the same one twice)."""
        before = len(self.published)
        done: Future[None] = Future()
        self.ref.tell(HandleEvent(envelope, done))
        done.result(TIMEOUT)
        return self.published[before:]

    def request(self, body: Command | Query, *, actor_id: str | None = None, key: str | None = None) -> Any:
        """Send a command or query as `actor_id`; return the reply (or raise its `DomainError`)."""
        request_id = self.new_id()
        request = Request(
            body,
            request_id=request_id,
            idempotency_key=key or request_id,
            correlation_id=request_id,
            sent_at=self.clock(),
            actor_id=actor_id,
        )
        done: Future[Any] = Future()
        self.ref.tell(HandleRequest(request, done))
        return done.result(TIMEOUT)

    def events(self, kind: type[Event]) -> list[Any]:
        """The events of type `kind` published so far."""
        return [e.event for e in self.published if isinstance(e.event, kind)]

    def stop(self) -> None:
        """Stop the actor."""
        self.ref.stop(timeout=TIMEOUT)


def running(service: type[Service], **kwargs: Any) -> Iterator[ServiceHarness]:
    """A generator for fixtures: yields a running harness and stops it afterwards."""
    harness = ServiceHarness(service, **kwargs)
    try:
        yield harness
    finally:
        harness.stop()
