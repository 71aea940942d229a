"""Services on the memory transport: exactly-once effects, crashes, restarts and retries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

import transports
from marketplace import mail
from marketplace.bootstrap import App, bootstrap
from marketplace.config import Settings
from marketplace.errors import DomainError
from tests.marketplace.harness import FakeClock, sequential_ids
from transports import Delivery, Message, RequestTimeout, Transport

FAST = Settings(kdf_cost=2**4, retry_attempts=4, retry_delay=0.02, request_timeout=10.0)
PASSWORD = "correct horse battery"


class CrashOnce:
    """Crashes `service` once at `point` (before or after its commit), then lets everything through."""

    def __init__(self, service: str, point: str) -> None:
        self.service = service
        self.point = point
        self.crashed = threading.Event()

    def __call__(self, service: str, point: str) -> None:
        if service == self.service and point == self.point and not self.crashed.is_set():
            self.crashed.set()
            raise RuntimeError(f"injected crash in {service} {point}")


def start(faults: Callable[[str, str], None] | None = None) -> App:
    """The whole marketplace in memory, with a recording mailer and deterministic ids and time."""
    return bootstrap(
        FAST,
        mailer=mail.RecordingMailer(),
        clock=FakeClock(),
        new_id=sequential_ids(),
        faults=faults,
        demo=True,
    )


@pytest.fixture
def app() -> Iterator[App]:
    running = start()
    yield running
    running.stop()


def sign_up(app: App, name: str) -> str:
    """Sign `name` up and return their user id, once every event of it has been handled."""
    user_id = app.marketplace.accounts.sign_up(
        username=name, email=f"{name}@example.com", password=PASSWORD, country="Spain"
    ).user_id
    app.wait_until_quiet(10)
    return user_id


def test_signing_up_sends_one_verification_email_and_creates_one_buyer_profile(app: App) -> None:
    sign_up(app, "alice")
    mailer = app.mailer
    assert isinstance(mailer, mail.RecordingMailer)
    assert [e.to for e in mailer.sent] == ["alice@example.com"]


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
@pytest.mark.parametrize("service", ["users", "notification"])
def test_a_service_that_crashes_on_an_event_is_restarted_and_applies_it_exactly_once(
    service: str, point: str
) -> None:
    faults = CrashOnce(service, point)
    app = start(faults)
    try:
        sign_up(app, "alice")
        assert faults.crashed.is_set()
        runner = next(r for r in app.runners if r.name == service)
        assert runner.supervisor is not None and runner.supervisor.restarts == 1
        mailer = app.mailer
        assert isinstance(mailer, mail.RecordingMailer)
        assert [e.to for e in mailer.sent] == ["alice@example.com"]
        stats = app.transport.stats()
        assert stats.retried == 1 and stats.dead_lettered == 0
        # The users service still works, and holds exactly one profile for alice.
        token = _verify_and_sign_in(app, "alice")
        me = app.marketplace.session(token)
        assert me.profile.buyer().username == "alice"
    finally:
        app.stop()


def test_a_service_that_crashes_on_a_command_is_restarted_and_the_retried_command_applies_once() -> None:
    faults = CrashOnce("auth", "after-commit")
    app = start(faults)
    try:
        user_id = sign_up(app, "alice")
        assert faults.crashed.is_set()
        mailer = app.mailer
        assert isinstance(mailer, mail.RecordingMailer)
        assert [e.to for e in mailer.sent] == ["alice@example.com"]
        token = _verify_and_sign_in(app, "alice")
        assert app.marketplace.session(token).user_id == user_id
    finally:
        app.stop()


def _verify_and_sign_in(app: App, name: str) -> str:
    mailer = app.mailer
    assert isinstance(mailer, mail.RecordingMailer)
    body = next(e.body for e in mailer.sent if e.to == f"{name}@example.com")
    token = body.split("token=", 1)[1].split()[0]
    app.marketplace.accounts.verify_email(token=token)
    return app.marketplace.accounts.sign_in(email=f"{name}@example.com", password=PASSWORD).token


def test_stopping_the_app_leaves_no_thread_running() -> None:
    before = set(threading.enumerate())
    app = start()
    sign_up(app, "alice")
    app.stop()
    assert [t.name for t in set(threading.enumerate()) - before] == []


class CrashAlways:
    """Crashes `service` at `point` on every message, forever."""

    def __init__(self, service: str, point: str) -> None:
        self.service = service
        self.point = point
        self.crashes = 0

    def __call__(self, service: str, point: str) -> None:
        if service == self.service and point == self.point:
            self.crashes += 1
            raise RuntimeError(f"injected crash in {service} {point}")


def test_a_message_that_always_crashes_its_actor_is_dead_lettered_after_its_retries_not_lost() -> None:
    faults = CrashAlways("users", "before-commit")
    app = start(faults)
    try:
        app.marketplace.accounts.sign_up(
            username="alice", email="alice@example.com", password=PASSWORD, country="Spain"
        )
        app.wait_until_quiet(10)
        assert faults.crashes == FAST.retry_attempts
        stats = app.transport.stats()
        assert stats.dead_lettered == 1
        assert app.transport.queue_size(app.wiring.events_queue("users") + ".dlq") == 1
        # The restarted actor still answers (and once it has, its last restart is done).
        with pytest.raises(DomainError) as refused:
            app.marketplace.profiles.seller(seller_id="nobody")
        assert refused.value.code == "not-found"
        runner = next(r for r in app.runners if r.name == "users")
        assert runner.supervisor is not None and runner.supervisor.restarts == FAST.retry_attempts
    finally:
        app.stop()


class LosesFirstReply:
    """A transport whose first call of `command` reaches the service but loses the reply."""

    def __init__(self, transport: Transport, command: str) -> None:
        self._transport = transport
        self._command = command
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def call(self, exchange: str, routing_key: str, message: Message, *, timeout: float) -> Delivery:
        reply = self._transport.call(exchange, routing_key, message, timeout=timeout)
        if message.headers.get("x-request-type") == self._command and not self.lost:
            self.lost += 1
            raise RequestTimeout("the reply was lost on the way back")
        return reply


def test_the_gateway_retries_a_call_whose_reply_was_lost_and_the_service_applies_it_once() -> None:
    inner = transports.connect("memory://")
    lossy = LosesFirstReply(inner, "SignUp")
    app = bootstrap(
        FAST,
        transport=cast(Transport, lossy),
        mailer=mail.RecordingMailer(),
        clock=FakeClock(),
        new_id=sequential_ids(),
        demo=True,
    )
    try:
        user_id = sign_up(app, "alice")
        assert lossy.lost == 1
        mailer = app.mailer
        assert isinstance(mailer, mail.RecordingMailer)
        assert [e.to for e in mailer.sent] == ["alice@example.com"]  # one account, one e-mail
        token = _verify_and_sign_in(app, "alice")
        assert app.marketplace.session(token).user_id == user_id
    finally:
        app.stop()
        inner.close()
