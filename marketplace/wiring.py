"""Who publishes what to whom: the transport topology, derived from the services' declarations.

Each producing service has a topic exchange `events.<producer>`; an event is
published there with its wire name as routing key. Each consuming service
has one queue `<service>.events`, bound to the producers' exchanges by the
names of the events it handles. Each service that answers commands or
queries has a queue `<service>.commands`, bound to the direct exchange
`commands` by its name. Nothing else is declared: the event graph is exactly
the set of (producer, consumer) pairs these bindings connect, and a test
compares it with the specification's graph.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import field, frozen

from transports import Binding, Exchange, ExchangeType, Queue, RetryPolicy, Topology

from .codec import Envelope
from .service import Service, UndeclaredEvent

COMMANDS = "commands"


def _services(value: Iterable[type[Service]]) -> tuple[type[Service], ...]:
    return tuple(sorted(value, key=lambda s: s.name))


@frozen
class Edge:
    """One event type travelling from a producer to a consumer."""

    producer: str
    consumer: str
    event: str


@frozen
class Wiring:
    """The names and routes of a set of services; `prefix` isolates runs sharing one broker."""

    services: tuple[type[Service], ...] = field(converter=_services)
    prefix: str = ""
    retry: RetryPolicy = field(factory=RetryPolicy)

    def __attrs_post_init__(self) -> None:
        published = {event for service in self.services for event in service.publishes}
        consumed = {event for service in self.services for event in service.consumes()}
        if unconsumed := sorted(e.__name__ for e in published - consumed):
            raise ValueError(f"published but consumed by no service: {', '.join(unconsumed)}")
        if unproduced := sorted(e.__name__ for e in consumed - published):
            raise ValueError(f"consumed but published by no service: {', '.join(unproduced)}")

    def service(self, name: str) -> type[Service]:
        """The service class called `name`."""
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services)
        raise KeyError(f"no service {name!r} (known: {known})")

    def events_exchange(self, producer: str) -> str:
        """The exchange `producer` publishes its events to."""
        return f"{self.prefix}events.{producer}"

    def events_queue(self, consumer: str) -> str:
        """The queue `consumer` receives its events from."""
        return f"{self.prefix}{consumer}.events"

    @property
    def commands_exchange(self) -> str:
        """The exchange the gateway sends commands and queries to."""
        return f"{self.prefix}{COMMANDS}"

    def commands_queue(self, service: str) -> str:
        """The queue `service` receives its commands and queries from."""
        return f"{self.prefix}{service}.{COMMANDS}"

    def edges(self) -> frozenset[Edge]:
        """Every (producer, consumer, event) route."""
        return frozenset(
            Edge(producer.name, consumer.name, event.__name__)
            for consumer in self.services
            for event in consumer.consumes()
            for producer in self.services
            if event in producer.publishes
        )

    def graph(self) -> frozenset[tuple[str, str]]:
        """The event graph: which service sends events to which."""
        return frozenset((edge.producer, edge.consumer) for edge in self.edges())

    def topology(self) -> Topology:
        """Everything to declare on the transport."""
        producers = sorted({edge.producer for edge in self.edges()})
        consumers = sorted({edge.consumer for edge in self.edges()})
        answering = [s.name for s in self.services if s.answers()]
        return Topology(
            exchanges=[
                *(Exchange(self.events_exchange(p), ExchangeType.TOPIC) for p in producers),
                Exchange(self.commands_exchange, ExchangeType.DIRECT),
            ],
            queues=[
                *(Queue(self.events_queue(c)) for c in consumers),
                *(Queue(self.commands_queue(s)) for s in answering),
            ],
            bindings=[
                *(
                    Binding(self.events_exchange(e.producer), self.events_queue(e.consumer), e.event)
                    for e in sorted(self.edges(), key=lambda e: (e.producer, e.consumer, e.event))
                ),
                *(Binding(self.commands_exchange, self.commands_queue(s), s) for s in answering),
            ],
            retry=self.retry,
        )

    def route(self, envelope: Envelope) -> tuple[str, str]:
        """Exchange and routing key of `envelope`; refused unless its producer declared the event."""
        producer = self.service(envelope.producer)
        if type(envelope.event) not in producer.publishes:
            raise UndeclaredEvent(f"{producer.name} does not publish {envelope.type}")
        return self.events_exchange(producer.name), envelope.type
