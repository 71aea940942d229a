"""What the conformance suite needs around a transport: isolation, collecting deliveries, waiting.

A `Sandbox` is one test's own corner of a broker: a unique name prefix for
everything it declares, the transports it opened (all closed after the test)
and the topology it declared (deleted after the test, so that tests sharing a
RabbitMQ node leave nothing behind). `Inbox` collects what a handler was given
and lets the test wait for it; `wait_until` waits for any other condition.
Every wait has a timeout and fails with a message that says what was awaited.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import transports
from transports import Delivery, Topology, Transport

PATIENCE = 10.0
"""Seconds a test waits for something the broker should do promptly before it fails."""


def wait_until(
    predicate: Callable[[], bool],
    what: str,
    timeout: float = PATIENCE,
    observe: Callable[[], object] | None = None,
) -> None:
    """Wait until `predicate()` holds, checking every few milliseconds; fail after `timeout` seconds.

    The failure names `what` was awaited and, given `observe`, what it returned last.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a wait that can only time out
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            seen = f"; last seen: {observe()!r}" if observe is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting until {what}{seen}")
        pause.wait(min(0.005, remaining))


def in_background(action: Callable[[], None], name: str) -> tuple[threading.Thread, list[BaseException]]:
    """Start `action` on a thread of its own; the list receives what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as e:  # handed to the test thread
            errors.append(e)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, errors


class Inbox:
    """A handler that keeps every delivery it is given, in order, for the test to wait on."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._deliveries: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        """Keep `delivery` (this is the handler)."""
        with self._changed:
            self._deliveries.append(delivery)
            self._changed.notify_all()

    @property
    def deliveries(self) -> list[Delivery]:
        """The deliveries received so far."""
        with self._changed:
            return list(self._deliveries)

    @property
    def bodies(self) -> list[bytes]:
        """The bodies received so far, in arrival order."""
        return [d.body for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = PATIENCE) -> list[Delivery]:
        """The deliveries received, once there are at least `count` of them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._deliveries) >= count, timeout):
                pytest.fail(
                    f"expected {count} deliveries within {timeout} s, got {len(self._deliveries)}: "
                    f"{[d.body for d in self._deliveries][:20]}"
                )
            return list(self._deliveries)


class Sandbox:
    """One test's corner of a broker: a unique name prefix, its transports and its declared topology."""

    def __init__(self, url: str, options: Mapping[str, Any], *, shared_broker: bool) -> None:
        """Prepare a sandbox on `url`; `options` go to every `transports.connect` it makes.

        `shared_broker` says whether transports opened with the same URL share one
        broker that outlives them (RabbitMQ), or each is a broker of its own (memory).
        """
        self.url = url
        self.shared_broker = shared_broker
        self.prefix = f"conformance-{uuid.uuid4().hex[:12]}-"
        self._options = dict(options)
        self._transports: list[Transport] = []
        self._declared: list[Topology] = []

    def name(self, name: str) -> str:
        """`name` as declared in this sandbox (with its prefix)."""
        return self.prefix + name

    def open(self, **options: Any) -> Transport:
        """A new transport on this sandbox's broker, closed after the test."""
        transport = transports.connect(self.url, **{**self._options, **options})
        self._transports.append(transport)
        return transport

    def another(self) -> Transport:
        """Another view of this sandbox's broker, as another process would have it.

        Where transports share a broker, a new transport that declared everything
        declared here so far; where each transport is its own broker, the first
        transport (which must still be open).
        """
        if not self.shared_broker:
            return self.transport
        transport = self.open()
        for topology in self._declared:
            transport.declare(topology)
        return transport

    @property
    def transport(self) -> Transport:
        """The first transport opened here (opened now with default options if there is none)."""
        return self._transports[0] if self._transports else self.open()

    def declare(self, topology: Topology, on: Transport | None = None) -> Topology:
        """Declare `topology` under this sandbox's prefix (on `on` or `self.transport`)."""
        prefixed = topology.prefixed(self.prefix)
        (on or self.transport).declare(prefixed)
        if prefixed not in self._declared:
            self._declared.append(prefixed)
        return prefixed

    def close(self) -> None:
        """Close every transport opened here, then delete what was declared."""
        errors: list[BaseException] = []
        for transport in reversed(self._transports):
            try:
                transport.close(timeout=PATIENCE)
            except Exception as e:  # close all of them, then report
                errors.append(e)
        if self._declared and self.shared_broker:
            # A fresh transport: the test may have closed or broken its own.
            with transports.connect(self.url, **self._options) as cleaner:
                for topology in reversed(self._declared):
                    cleaner.delete(topology)
        self._transports.clear()
        if errors:
            raise errors[0]
