"""Knowing when every event cascade has finished, without guessing with a timer.

Each envelope a service publishes is owed one handling by each consumer the
wiring routes it to. A handling counts once it ends for good: handled, or
dead-lettered (refused at once, or after its last retry). The marketplace is
quiet when nothing is owed.
"""

from __future__ import annotations

import threading

from transports import PermanentError, RetryPolicy

from .codec import Envelope
from .wiring import Wiring


class FlowTracker:
    """Counts the handlings owed for published events; `wait_until_quiet` blocks until none is."""

    def __init__(self, wiring: Wiring) -> None:
        self._consumers: dict[tuple[str, str], tuple[str, ...]] = {}
        for edge in wiring.edges():
            key = (edge.producer, edge.event)
            self._consumers[key] = (*self._consumers.get(key, ()), edge.consumer)
        self._owed: set[tuple[str, str]] = set()
        self._done: set[tuple[str, str]] = set()
        self._changed = threading.Condition()

    def published(self, envelope: Envelope) -> None:
        """`envelope` was handed to the transport: each of its consumers owes one handling."""
        with self._changed:
            for consumer in self._consumers.get((envelope.producer, envelope.type), ()):
                key = (consumer, envelope.message_id)
                if key not in self._done:
                    self._owed.add(key)

    def handled(self, consumer: str, message_id: str) -> None:
        """`consumer` has finished with `message_id` for good."""
        with self._changed:
            key = (consumer, message_id)
            self._done.add(key)
            self._owed.discard(key)
            if not self._owed:
                self._changed.notify_all()

    def is_final(self, error: BaseException | None, attempt: int, policy: RetryPolicy) -> bool:
        """Whether a handling that ended with `error` on `attempt` will not be tried again."""
        return error is None or isinstance(error, PermanentError) or attempt >= policy.max_attempts

    @property
    def owed(self) -> int:
        """Handlings still owed."""
        with self._changed:
            return len(self._owed)

    def wait_until_quiet(self, timeout: float) -> None:
        """Block until no handling is owed; `TimeoutError` naming what is still owed otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: not self._owed, timeout):
                owed = ", ".join(f"{c}:{m}" for c, m in sorted(self._owed)[:10])
                raise TimeoutError(f"{len(self._owed)} handlings still owed after {timeout}s: {owed}")
