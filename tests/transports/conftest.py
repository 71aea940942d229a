"""Fixtures of the conformance suite: every test here runs once per backend, `[memory]` and `[rabbitmq]`.

The backend-specific options live in `BACKEND_OPTIONS`, in this one place;
the tests pass only what the contract names for every backend (`prefetch`,
`confirm_window`). The `rabbitmq_url` and `own_rabbitmq_node` fixtures and
the `rabbitmq` and `slow` markers come from `tests/conftest.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from transports import Transport

from .sandbox import Sandbox

MEMORY_URL = "memory://"

BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    "memory": {},
    # Reconnect fast: the fault tests measure recovery, not patience.
    "rabbitmq": {"reconnect_delay": 0.2, "reconnect_max_delay": 2.0},
}
"""Options given to `transports.connect` on each backend, beyond those a test asks for."""

SHARED_BROKER: dict[str, bool] = {"memory": False, "rabbitmq": True}
"""Whether transports opened with the same URL share one broker that outlives them."""

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("rabbitmq", id="rabbitmq", marks=pytest.mark.rabbitmq),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    name: str = request.param
    return name


@pytest.fixture
def broker_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The URL of the broker the test runs against."""
    if backend == "rabbitmq":
        url: str = request.getfixturevalue("rabbitmq_url")
        return url
    return MEMORY_URL


@pytest.fixture
def sandbox(backend: str, broker_url: str) -> Iterator[Sandbox]:
    """This test's corner of the broker; its transports are closed and its topology deleted after."""
    box = Sandbox(broker_url, BACKEND_OPTIONS[backend], shared_broker=SHARED_BROKER[backend])
    yield box
    box.close()


@pytest.fixture
def transport(sandbox: Sandbox) -> Transport:
    """A transport with default options on the backend under test."""
    return sandbox.transport
