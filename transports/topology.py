"""Declared topology: exchanges, queues, bindings and the retry policy of each queue.

The topology is data. Every process declares the whole topology it was given,
and everything a backend needs beyond it (the dead-letter queue `<queue>.dlq`
of every queue, the retry queues `<queue>.retry.<attempt>`) is derived here,
in one place, so that no two declarations ever disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from enum import StrEnum
from functools import lru_cache

from attrs import field, frozen, validators

DEAD_LETTER_SUFFIX = ".dlq"
RETRY_INFIX = ".retry."
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


def _valid_name(_instance: object, attribute: object, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(
            f"{getattr(attribute, 'name', 'name')}: {value!r} is not a valid name "
            "(1-200 characters of letters, digits, '_', '.', ':', '-')"
        )
    if value.startswith("amq."):
        raise ValueError(f"{value!r}: names starting with 'amq.' are reserved by the broker")


def _valid_queue_name(instance: object, attribute: object, value: str) -> None:
    _valid_name(instance, attribute, value)
    if value.endswith(DEAD_LETTER_SUFFIX) or RETRY_INFIX in value:
        raise ValueError(
            f"queue {value!r}: names ending in {DEAD_LETTER_SUFFIX!r} or containing "
            f"{RETRY_INFIX!r} are derived, not declared"
        )


class ExchangeType(StrEnum):
    """How an exchange routes: by exact key, to every bound queue, or by key pattern."""

    DIRECT = "direct"
    FANOUT = "fanout"
    TOPIC = "topic"


@frozen
class RetryPolicy:
    """How often a failing message is tried, and how long it waits between tries.

    `max_attempts` counts deliveries, the first one included: 1 means no retry.
    The wait before attempt n+1 is `initial_delay * multiplier**(n-1)`, capped at
    `max_delay` (seconds).
    """

    max_attempts: int = field(default=5, validator=validators.ge(1))
    initial_delay: float = field(default=1.0, validator=validators.gt(0))
    multiplier: float = field(default=2.0, validator=validators.ge(1))
    max_delay: float = field(default=60.0, validator=validators.gt(0))

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based) before the next one."""
        return min(self.initial_delay * self.multiplier ** (attempt - 1), self.max_delay)

    def delays(self) -> tuple[float, ...]:
        """The wait after each attempt that may still be retried."""
        return tuple(self.delay_after(n) for n in range(1, self.max_attempts))


@frozen
class Exchange:
    """A named, durable exchange."""

    name: str = field(validator=_valid_name)
    type: ExchangeType = field(default=ExchangeType.DIRECT, converter=ExchangeType)


@frozen
class Queue:
    """A named, durable queue; `retry` overrides the topology's retry policy for it."""

    name: str = field(validator=_valid_queue_name)
    retry: RetryPolicy | None = None


@frozen
class Binding:
    """Routes messages from an exchange to a queue (the key is ignored by fanout)."""

    exchange: str
    queue: str
    routing_key: str = ""


def _tuple(items: Iterable[object]) -> tuple[object, ...]:
    return tuple(items)


@frozen
class Topology:
    """Everything to declare: exchanges, queues, bindings, and the default retry policy."""

    exchanges: tuple[Exchange, ...] = field(default=(), converter=_tuple)
    queues: tuple[Queue, ...] = field(default=(), converter=_tuple)
    bindings: tuple[Binding, ...] = field(default=(), converter=_tuple)
    retry: RetryPolicy = RetryPolicy()

    def __attrs_post_init__(self) -> None:
        for kind, names in (
            ("exchange", [e.name for e in self.exchanges]),
            ("queue", [q.name for q in self.queues]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{kind} declared twice: {', '.join(duplicates)}")
        exchanges = {e.name for e in self.exchanges}
        queues = {q.name for q in self.queues}
        for b in self.bindings:
            if b.exchange not in exchanges:
                raise ValueError(f"binding {b}: exchange {b.exchange!r} is not declared")
            if b.queue not in queues:
                raise ValueError(f"binding {b}: queue {b.queue!r} is not declared")

    def exchange(self, name: str) -> Exchange:
        """The declared exchange called `name`."""
        for e in self.exchanges:
            if e.name == name:
                return e
        raise KeyError(name)

    def queue(self, name: str) -> Queue:
        """The declared queue called `name`."""
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)

    def has_queue(self, name: str) -> bool:
        """Whether `name` is a declared queue or one derived from it (its `.dlq` or a retry queue)."""
        if any(q.name == name for q in self.queues):
            return True
        return any(
            name == dead_letter_queue_name(q.name) or name in dict(self.retry_queues(q.name))
            for q in self.queues
        )

    def retry_policy(self, queue: str) -> RetryPolicy:
        """The retry policy that applies to `queue`."""
        return self.queue(queue).retry or self.retry

    def retry_queues(self, queue: str) -> Iterator[tuple[str, float]]:
        """Name and delay (seconds) of each retry queue derived for `queue`."""
        for attempt, delay in enumerate(self.retry_policy(queue).delays(), start=1):
            yield retry_queue_name(queue, attempt), delay

    def merged(self, other: Topology) -> Topology:
        """This topology and `other` together; a name declared in both must mean the same.

        Each queue keeps the retry policy it had in its own topology.
        """
        exchanges = {e.name: e for e in self.exchanges}
        queues = {q.name: q for q in self.resolved().queues}
        for e in other.exchanges:
            if exchanges.setdefault(e.name, e) != e:
                raise ValueError(f"exchange {e.name!r} declared twice, differently")
        for q in other.resolved().queues:
            if queues.setdefault(q.name, q) != q:
                raise ValueError(f"queue {q.name!r} declared twice, differently")
        bindings = list(dict.fromkeys((*self.bindings, *other.bindings)))
        return Topology(
            exchanges=exchanges.values(), queues=queues.values(), bindings=bindings, retry=self.retry
        )

    def resolved(self) -> Topology:
        """The same topology with every queue's retry policy written out."""
        queues = [Queue(q.name, q.retry or self.retry) for q in self.queues]
        return Topology(exchanges=self.exchanges, queues=queues, bindings=self.bindings, retry=self.retry)

    def without(self, other: Topology) -> Topology:
        """This topology less the exchanges, queues and bindings that `other` declares."""
        exchanges = {e.name for e in other.exchanges}
        queues = {q.name for q in other.queues}
        return Topology(
            exchanges=[e for e in self.exchanges if e.name not in exchanges],
            queues=[q for q in self.queues if q.name not in queues],
            bindings=[
                b
                for b in self.bindings
                if b not in other.bindings and b.exchange not in exchanges and b.queue not in queues
            ],
            retry=self.retry,
        )

    def prefixed(self, prefix: str) -> Topology:
        """The same topology with `prefix` before every name (to isolate runs on one broker)."""
        return Topology(
            exchanges=[Exchange(prefix + e.name, e.type) for e in self.exchanges],
            queues=[Queue(prefix + q.name, q.retry) for q in self.queues],
            bindings=[Binding(prefix + b.exchange, prefix + b.queue, b.routing_key) for b in self.bindings],
            retry=self.retry,
        )


def dead_letter_queue_name(queue: str) -> str:
    """The dead-letter queue of `queue`."""
    return queue + DEAD_LETTER_SUFFIX


def is_derived_queue(name: str) -> bool:
    """Whether `name` is a dead-letter or retry queue rather than a declared one."""
    return name.endswith(DEAD_LETTER_SUFFIX) or RETRY_INFIX in name


def retry_queue_name(queue: str, attempt: int) -> str:
    """The queue where a message of `queue` waits after failed attempt `attempt`."""
    return f"{queue}{RETRY_INFIX}{attempt}"


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether `routing_key` matches an AMQP topic binding `pattern` ('*' one word, '#' any)."""
    return _words_match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


@lru_cache(maxsize=4096)
def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":  # zero words, or one more word and still '#'
        return _words_match(rest, words) or (bool(words) and _words_match(pattern, words[1:]))
    return bool(words) and head in ("*", words[0]) and _words_match(rest, words[1:])
