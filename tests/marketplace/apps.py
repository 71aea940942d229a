"""The whole marketplace for a test: bootstrapped on a transport with fast settings, stopped afterwards.

`running_marketplace(url)` is the context manager behind the fixtures:
`marketplace_backend` is parametrized (`[memory]`, `[rabbitmq]`, the latter
marked `rabbitmq`), `marketplace_url` names its broker (the session's
`rabbitmq_url` on RabbitMQ) and `marketplace_app` is the running app on it,
with its own name prefix (`isolate=True`, topology removed at stop) and a
`RecordingMailer`. The fixture functions are named `fixture_<name>`, so that a
test module (or a conftest) imports them without its test parameters
shadowing the import; a module may define its own `marketplace_url` to pick
another broker:

    from tests.marketplace.apps import fixture_marketplace_app, fixture_marketplace_backend  # noqa: F401

`signed_in` plays the first steps every flow starts with: sign up, verify the
address with the link from the e-mail, sign in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from marketplace import mail
from marketplace.bootstrap import App, bootstrap
from marketplace.config import Settings
from marketplace.gateway import Session

MEMORY_URL = "memory://"
FAST = Settings(kdf_cost=2**4, retry_attempts=3, retry_delay=0.05, request_timeout=5)
"""Cheap passwords, three attempts 50 ms apart, requests that give up after 5 s."""
PASSWORD = "correct horse battery"
PATIENCE = 10.0
"""Seconds a test waits for something the marketplace should do promptly."""

MARKETPLACE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("rabbitmq", id="rabbitmq", marks=pytest.mark.rabbitmq),
]


@contextmanager
def running_marketplace(url: str, *, mailer: mail.Mailer | None = None, **settings: Any) -> Iterator[App]:
    """The whole marketplace on `url` with `FAST` settings (`settings` override them), stopped after."""
    app = bootstrap(
        attrs.evolve(FAST, transport_url=url, **settings),
        mailer=mailer or mail.RecordingMailer(),
        demo=True,
        isolate=True,
    )
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(name="marketplace_backend", params=MARKETPLACE_BACKENDS)
def fixture_marketplace_backend(request: pytest.FixtureRequest) -> str:
    """The name of the transport backend the marketplace runs on."""
    name: str = request.param
    return name


@pytest.fixture(name="marketplace_url")
def fixture_marketplace_url(marketplace_backend: str, request: pytest.FixtureRequest) -> str:
    """The transport URL of the marketplace: `memory://`, or the session's RabbitMQ broker."""
    if marketplace_backend == "rabbitmq":
        url: str = request.getfixturevalue("rabbitmq_url")
        return url
    return MEMORY_URL


@pytest.fixture(name="marketplace_app")
def fixture_marketplace_app(marketplace_url: str) -> Iterator[App]:
    """The whole marketplace, running on `marketplace_url` with its own prefix; stopped after the test."""
    with running_marketplace(marketplace_url) as app:
        yield app


def mailbox(app: App) -> mail.RecordingMailer:
    """The app's recording mailer."""
    mailer = app.mailer
    assert isinstance(mailer, mail.RecordingMailer), f"the app sends e-mails with {mailer!r}"
    return mailer


def link_token(mailer: mail.RecordingMailer, to: str, path: str) -> str:
    """The token of the last link to `path` e-mailed to `to`, as the person clicking it would use it."""
    for email in reversed(mailer.sent_to(to)):
        match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_.\-]+)", email.body)
        if match:
            return match.group(1)
    raise LookupError(f"no {path} link e-mailed to {to}: {[e.subject for e in mailer.sent_to(to)]}")


def signed_in(app: App, name: str) -> Session:
    """`name` signs up, verifies `<name>@example.com` with the e-mailed link and signs in."""
    email = f"{name}@example.com"
    market = app.marketplace
    mailer = mailbox(app)
    before = len(mailer.sent)
    market.accounts.sign_up(username=name, email=email, password=PASSWORD, country="Spain")
    mailer.wait_for(before + 1, PATIENCE)
    market.accounts.verify_email(token=link_token(mailer, email, "/verify-email"))
    return market.session(market.accounts.sign_in(email=email, password=PASSWORD).token)
