"""Fixtures and settings shared by the whole suite: RabbitMQ brokers and Hypothesis profiles.

Brokers
    `rabbitmq_url` (session): the URL of a broker shared by the session. It is
    `MARKETPLACE_AMQP_URL` when set, otherwise that of `rabbitmq_node`.
    `rabbitmq_node` (session): a `ThrowawayNode` shared by the session, started
    on first use and removed at the end, for tests that need `rabbitmqctl`
    (their own vhost, say) on a broker that others use too.
    `own_rabbitmq_node` (function): a fresh node of the test's own, for tests
    that stop, restart, kill or disconnect a broker; cleaned up after the test.

    Without the `rabbitmq-server` package (and, for `rabbitmq_url`, without
    `MARKETPLACE_AMQP_URL`) the node fixtures skip the test on a developer's
    machine and fail it in CI (env `CI` set to anything but
    ``""``, ``"0"`` or ``"false"``), so that CI never passes by skipping.

The `rabbitmq` marker
    Every test that uses one of these fixtures carries the `rabbitmq` marker,
    so that ``-m "not rabbitmq"`` leaves out exactly the tests needing a broker.
    A test that names a fixture (directly or through other fixtures) is
    marked automatically at collection. A test that reaches one at run time
    through ``request.getfixturevalue`` cannot be seen at collection: it must
    carry the marker itself (on its parameter, with
    ``pytest.param(..., marks=pytest.mark.rabbitmq)``), and is reported as an
    error when it does not.

Hypothesis
    Profiles `dev` (few examples, for quick local runs) and `ci` (many); `ci`
    is loaded when CI is set, `dev` otherwise; `HYPOTHESIS_PROFILE` overrides.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from transports.rabbitmq_node import ThrowawayNode, missing_requirements

BROKER_FIXTURES = frozenset({"rabbitmq_url", "rabbitmq_node", "own_rabbitmq_node"})
"""Fixtures that need a RabbitMQ broker: tests using them are marked `rabbitmq`."""

# No deadline in either profile: examples that start threads or talk to a broker
# take uneven time on a loaded two-core machine, and a deadline would make them flaky.
settings.register_profile("dev", max_examples=20, deadline=None)
# CI, as Hypothesis itself does there, draws the same examples on every run of the same code
# and keeps no database: a red build is red again when rerun, and its printed example replays.
settings.register_profile(
    "ci", max_examples=200, deadline=None, print_blob=True, derandomize=True, database=None
)


def in_ci() -> bool:
    """Whether this run is CI's, where a missing broker is a failure rather than a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if in_ci() else "dev"))


def pytest_report_header() -> str:
    """Say, at the top of every run, which Hypothesis profile runs and what a missing broker means."""
    profile = settings.default
    assert profile is not None
    name = settings.get_current_profile_name()
    broker = "a failure (CI)" if in_ci() else "a skip"
    return f"hypothesis profile: {name} ({profile.max_examples} examples); missing broker: {broker}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `rabbitmq` every test that uses a broker fixture, directly or through other fixtures."""
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())) and not item.get_closest_marker(
            "rabbitmq"
        ):
            item.add_marker(pytest.mark.rabbitmq)


@pytest.fixture(autouse=True)
def _broker_fixtures_need_the_rabbitmq_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Report a test that reached a broker fixture at run time without the `rabbitmq` marker."""
    yield
    used = BROKER_FIXTURES.intersection(request.fixturenames)
    if used and request.node.get_closest_marker("rabbitmq") is None:
        pytest.fail(
            f"{request.node.nodeid} used {', '.join(sorted(used))} without the rabbitmq marker: "
            "mark it (or its parameter: pytest.param(..., marks=pytest.mark.rabbitmq))",
            pytrace=False,
        )


def _require_rabbitmq_server() -> None:
    reason = missing_requirements()
    if reason is None:
        return
    hint = "tests needing only rabbitmq_url can use a broker named by MARKETPLACE_AMQP_URL instead"
    if in_ci():
        pytest.fail(f"CI needs a RabbitMQ broker: {reason}; {hint}", pytrace=False)
    pytest.skip(f"no RabbitMQ broker: {reason}; {hint}")


@pytest.fixture(scope="session")
def rabbitmq_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's broker: `MARKETPLACE_AMQP_URL`, or the session's throwaway node's."""
    external = os.environ.get("MARKETPLACE_AMQP_URL")
    if external:
        return external
    node: ThrowawayNode = request.getfixturevalue("rabbitmq_node")
    return node.url


@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[ThrowawayNode]:
    """The session's shared throwaway node (always local, even with `MARKETPLACE_AMQP_URL` set).

    Other tests use it too: change only what is yours on it (a vhost of your own),
    and take `own_rabbitmq_node` to stop, restart or disconnect a broker.
    """
    _require_rabbitmq_server()
    with ThrowawayNode() as node:
        yield node


@pytest.fixture
def own_rabbitmq_node() -> Iterator[ThrowawayNode]:
    """A running throwaway node of this test's own, free to stop, restart or kill; removed after."""
    _require_rabbitmq_server()
    with ThrowawayNode() as node:
        yield node
