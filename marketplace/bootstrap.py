"""The composition root: builds the whole marketplace, or a part of it, from settings.

Tests, the demo and the per-service processes all go through `bootstrap`,
which takes every dependency as an overridable argument (the transport, the
clock, the id factory, the mailer, hooks), so that two runs can be made
identical but for the transport.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import transports
from transports import Transport

from . import mail, security
from .codec import Envelope
from .config import Settings
from .flows import FlowTracker
from .gateway import Marketplace
from .gateway.client import ServiceClient
from .runtime import ServiceRunner
from .service import Context, Observer, Service
from .services import SERVICES
from .store import MemoryStore
from .wiring import Wiring

log = logging.getLogger(__name__)

SETTLE_POLL = 0.01
"""Seconds between two looks at the broker's queues while waiting for them to empty."""


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def random_id() -> str:
    """A fresh uuid4 in hex."""
    return uuid.uuid4().hex


class App:
    """A running marketplace (or part of one): its transport, services and gateway."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        wiring: Wiring,
        runners: Sequence[ServiceRunner],
        marketplace: Marketplace | None,
        mailer: mail.Mailer,
        flows: FlowTracker,
        *,
        owns_transport: bool,
        removes_topology: bool,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.wiring = wiring
        self.runners = list(runners)
        self._marketplace = marketplace
        self.mailer = mailer
        self.flows = flows
        self._owns_transport = owns_transport
        self._removes_topology = removes_topology
        self._stopped = False
        self._pause = threading.Event()  # never set: a wait that cannot be cut short

    @property
    def marketplace(self) -> Marketplace:
        """The gateway: the client's API."""
        if self._marketplace is None:
            raise RuntimeError("this app was started without a gateway")
        return self._marketplace

    @property
    def services(self) -> list[str]:
        """Names of the services running here."""
        return [runner.name for runner in self.runners]

    def wait_until_quiet(self, timeout: float = 30.0) -> None:
        """Block until every event published here has been handled by each of its consumers."""
        self.flows.wait_until_quiet(timeout)

    def wait_until_settled(self, timeout: float = 30.0) -> None:
        """Block until nothing is left anywhere: stronger than `wait_until_quiet`, for tests.

        Every handling owed is done (`flows`), the transport has nothing in
        flight (no unconfirmed publish, no unsettled delivery, no waiting
        request), and every queue and retry queue reads empty, twice in a row.
        A dead-letter queue may hold messages: they are settled.
        """
        deadline = time.monotonic() + timeout
        self.flows.wait_until_quiet(timeout)
        topology = self.wiring.topology()
        queues = [q.name for q in topology.queues]
        queues += [name for q in topology.queues for name, _delay in topology.retry_queues(q.name)]
        calm = 0
        while calm < 2:
            busy = self._busy(queues)
            calm = 0 if busy else calm + 1
            if busy and time.monotonic() > deadline:
                raise TimeoutError(f"not settled after {timeout}s: {busy}")
            if calm < 2:
                self._pause.wait(SETTLE_POLL)

    def _busy(self, queues: list[str]) -> str:
        if self.flows.owed:
            return f"{self.flows.owed} handlings owed"
        if in_flight := self.transport.in_flight():
            return f"{in_flight} in flight on the transport"
        for queue in queues:
            if size := self.transport.queue_size(queue):
                return f"{size} messages on {queue}"
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the services (draining in-flight messages), then the transport."""
        if self._stopped:
            return
        self._stopped = True
        for runner in reversed(self.runners):
            runner.stop(timeout)
        if self._removes_topology:
            try:
                self.transport.delete(self.wiring.topology())
            except transports.TransportError as error:
                log.warning("could not remove the topology: %s", error)
        if self._owns_transport:
            self.transport.close(timeout)

    def __enter__(self) -> App:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def bootstrap(
    settings: Settings | None = None,
    *,
    services: Iterable[str] | None = None,
    transport: Transport | None = None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = random_id,
    mailer: mail.Mailer | None = None,
    observe: Observer | None = None,
    faults: Callable[[str, str], None] | None = None,
    demo: bool = False,
    isolate: bool = False,
    gateway: bool = True,
) -> App:
    """Build and start the marketplace.

    `services` names the services to run here (all by default). `demo` allows
    the built-in signing key. `isolate` gives this run its own name prefix on
    the broker (unless the settings name one) and removes its topology at stop.
    `gateway` builds the client API (a process that only serves needs none).
    """
    settings = settings or Settings()
    chosen = _chosen_services(services)
    prefix = settings.prefix
    removes_topology = False
    if prefix is None:
        prefix = f"run-{new_id()[:12]}." if isolate else ""
        removes_topology = isolate
    wiring = Wiring(SERVICES, prefix=prefix, retry=settings.retry)
    tokens = None
    if gateway or any(service.name == "auth" for service in chosen):
        key = security.signing_key(settings.secret_key.encode() if settings.secret_key else None, demo=demo)
        tokens = security.Tokens(key, clock)
    owns_transport = transport is None
    if transport is None:
        transport = transports.connect(settings.transport_url)
    flows = FlowTracker(wiring)
    mailer = mailer or _mailer(settings)
    runners: list[ServiceRunner] = []
    try:
        transport.declare(wiring.topology())
        publish = _publisher(transport, wiring, flows)
        for service in chosen:
            context = Context(
                store=MemoryStore(),
                publish=publish,
                clock=clock,
                observe=observe,
                faults=faults,
            )
            runner = ServiceRunner(
                service,
                context,
                transport,
                wiring,
                dependencies=_dependencies(service.name, settings, tokens, mailer),
                request_timeout=settings.request_timeout,
                flows=flows,
            )
            runner.start()
            runners.append(runner)
        marketplace = None
        if gateway:
            assert tokens is not None
            client = ServiceClient(
                transport, wiring, clock=clock, new_id=new_id, timeout=settings.request_timeout
            )
            marketplace = Marketplace(client, tokens)
    except BaseException:
        for runner in reversed(runners):
            runner.stop()
        if owns_transport:
            transport.close()
        raise
    return App(
        settings,
        transport,
        wiring,
        runners,
        marketplace,
        mailer,
        flows,
        owns_transport=owns_transport,
        removes_topology=removes_topology,
    )


def _chosen_services(names: Iterable[str] | None) -> list[type[Service]]:
    by_name = {service.name: service for service in SERVICES}
    if names is None:
        return list(SERVICES)
    chosen = []
    for name in names:
        if name not in by_name:
            raise ValueError(f"unknown service {name!r} (known: {', '.join(sorted(by_name))})")
        chosen.append(by_name[name])
    return chosen


def _publisher(transport: Transport, wiring: Wiring, flows: FlowTracker) -> Callable[[Envelope], Any]:
    from .codec import to_message

    def publish(envelope: Envelope) -> Any:
        exchange, routing_key = wiring.route(envelope)
        flows.published(envelope)
        return transport.publish(exchange, routing_key, to_message(envelope))

    return publish


def _dependencies(
    name: str, settings: Settings, tokens: security.Tokens | None, mailer: mail.Mailer
) -> dict[str, Any]:
    if name == "auth":
        return {
            "tokens": tokens,
            "passwords": security.PasswordHasher(cost=settings.kdf_cost),
            "public_url": settings.public_url,
        }
    if name == "notification":
        return {"mailer": mailer, "public_url": settings.public_url}
    if name == "chat":
        return {"public_url": settings.public_url}
    return {}


def _mailer(settings: Settings) -> mail.Mailer:
    if settings.mailer == "smtp":
        return mail.SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return mail.RecordingMailer(echo=print if settings.mailer == "console" else None)
