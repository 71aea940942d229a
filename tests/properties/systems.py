"""The running marketplaces the state machine drives: on the stepping memory transport, or on RabbitMQ.

A `System` is one marketplace started by `bootstrap` with a recording mailer,
the machine's fake clock and sequential ids, plus what the machine needs
around it: its users' sessions, a way to settle every cascade (`settle`), to
put a message that nobody can decode on a queue, and to read what was
dead-lettered. `SteppedMemory` settles by draining the cascade step by step,
with the faults the drawn `Drain` asks for; `OnRabbitMQ` runs no faults and
waits until the app is settled (nothing owed, nothing in flight, every queue
empty). Each system is stopped, and its broker names removed, at teardown.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import attrs

import transports
from marketplace import mail
from marketplace.bootstrap import App, bootstrap
from marketplace.config import Settings
from marketplace.gateway import Marketplace, Session
from tests.marketplace.apps import link_token
from tests.marketplace.harness import FakeClock, sequential_ids
from transports import Message, dead_letter_queue_name
from transports.memory import Transport as MemoryTransport

from .drain import Action, ActorCrashes, Drainer, Move
from .model import User

FAST = Settings(kdf_cost=2**4, retry_attempts=5, retry_delay=0.02, request_timeout=10)
"""Cheap passwords; five attempts per message (the drain crashes a message at most four times)."""
PASSWORD = "correct horse battery"
PATIENCE = 30.0
"""Seconds to wait for what should happen promptly (settling on RabbitMQ, reading dead letters)."""


class System:
    """One running marketplace, its users' sessions, and how it settles."""

    name = "system"

    def __init__(self, app: App, clock: FakeClock) -> None:
        self.app = app
        self.clock = clock
        self.sessions: dict[User, Session] = {}

    def __repr__(self) -> str:
        return f"<{self.name}>"

    @property
    def market(self) -> Marketplace:
        """The gateway."""
        return self.app.marketplace

    @property
    def mailer(self) -> mail.RecordingMailer:
        """The mailer that recorded every e-mail sent."""
        mailer = self.app.mailer
        assert isinstance(mailer, mail.RecordingMailer)
        return mailer

    def session(self, user: User) -> Session:
        """The signed-in session of `user`."""
        return self.sessions[user]

    def settle(self, moves: list[Move], *, spare: frozenset[str] = frozenset()) -> None:
        """Run every cascade to its end (a stepped system takes its moves from the front of `moves`)."""
        raise NotImplementedError

    def sign_in(self, user: User) -> None:
        """Verify the user's address with the link e-mailed to them, and sign them in."""
        token = link_token(self.mailer, user.email, "/verify-email")
        self.market.accounts.verify_email(token=token)
        signed_in = self.market.accounts.sign_in(email=user.email, password=PASSWORD)
        self.sessions[user] = self.market.session(signed_in.token)

    def send_undecodable(self, consumer: str, message_id: str) -> None:
        """Put a message that is not an event onto `consumer`'s event queue."""
        queue = self.app.wiring.events_queue(consumer)
        message = Message(b"\x00 this is not an event", message_id=message_id, content_type="text/plain")
        self.app.transport.publish("", queue, message).result(timeout=PATIENCE)

    def take_dead_letters(self, consumer: str) -> list[Message]:
        """Every message waiting on the dead-letter queue of `consumer`'s event queue, removed from it."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the marketplace and release its broker."""
        raise NotImplementedError


def _start(
    settings: Settings,
    transport: transports.Transport,
    clock: FakeClock,
    faults: Callable[[str, str], None] | None = None,
) -> App:
    return bootstrap(
        settings,
        transport=transport,
        mailer=mail.RecordingMailer(),
        clock=clock,
        new_id=sequential_ids(),
        demo=True,
        faults=faults,
    )


class SteppedMemory(System):
    """The marketplace on a stepping memory transport: cascades drained as the drawn moves say."""

    name = "memory"

    def __init__(self, clock: FakeClock, *, record: Callable[[Action], None]) -> None:
        transport = MemoryTransport("memory://", stepping=True)
        crashes = ActorCrashes()
        try:
            app = _start(FAST, transport, clock, faults=crashes)
        except BaseException:
            transport.close()
            raise
        super().__init__(app, clock)
        self.transport = transport
        self.drainer = Drainer(app, transport, crashes, record=record)

    def settle(self, moves: list[Move], *, spare: frozenset[str] = frozenset()) -> None:
        """Drain every cascade, taking moves from the front of `moves`."""
        self.drainer.drain(moves, spare=spare)

    def take_dead_letters(self, consumer: str) -> list[Message]:
        """Consume the dead-letter queue, one step at a time, until it is empty."""
        queue = dead_letter_queue_name(self.app.wiring.events_queue(consumer))
        letters: list[Message] = []
        reader = self.transport.consume(queue, lambda delivery: letters.append(delivery.message))
        try:
            while steps := [step for step in self.transport.pending() if step.queue == queue]:
                self.transport.run(steps[0])
        finally:
            reader.cancel(PATIENCE)
        return letters

    def stop(self) -> None:
        """Stop the services, then the transport."""
        try:
            self.app.stop()
        finally:
            self.transport.close()


class OnRabbitMQ(System):
    """The marketplace on RabbitMQ under a name prefix of its own, removed at stop; no faults."""

    name = "rabbitmq"

    def __init__(self, url: str, clock: FakeClock) -> None:
        # A prefix of its own, given rather than made by `isolate`: that would take an id from the
        # sequence, and the ids would no longer match those of a memory run of the same operations.
        settings = attrs.evolve(FAST, transport_url=url, prefix=f"prop-{uuid.uuid4().hex[:12]}.")
        transport = transports.connect(url)
        try:
            app = _start(settings, transport, clock)
        except BaseException:
            transport.close()
            raise
        super().__init__(app, clock)
        self.transport = transport

    def settle(self, moves: list[Move], *, spare: frozenset[str] = frozenset()) -> None:
        """Wait until nothing is owed, in flight or waiting on a queue (the moves are for memory)."""
        self.app.wait_until_settled(PATIENCE)

    def take_dead_letters(self, consumer: str) -> list[Message]:
        """Consume the dead-letter queue until it is empty."""
        queue = dead_letter_queue_name(self.app.wiring.events_queue(consumer))
        waiting = self.transport.queue_size(queue)
        letters: list[Message] = []
        arrived = threading.Condition()

        def take(delivery: transports.Delivery) -> None:
            with arrived:
                letters.append(delivery.message)
                arrived.notify_all()

        reader = self.transport.consume(queue, take)
        try:
            with arrived:
                assert arrived.wait_for(lambda: len(letters) >= waiting, PATIENCE), (
                    f"{len(letters)} of {waiting} dead letters read from {queue}"
                )
        finally:
            reader.cancel(PATIENCE)
        return letters

    def stop(self) -> None:
        """Stop the services, remove this run's exchanges and queues, close the connections."""
        try:
            self.app.stop()
            self.transport.delete(self.app.wiring.topology())
        finally:
            self.transport.close()
