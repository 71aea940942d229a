"""`python -m marketplace serve`: some of the services in a process of their own, until a signal."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest

import transports
from marketplace.bootstrap import bootstrap
from marketplace.config import Settings
from marketplace.services import SERVICES
from marketplace.wiring import Wiring
from transports import mask_password

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = secrets.token_urlsafe(32)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without its MARKETPLACE_ settings, with `settings` instead."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("MARKETPLACE_")}
    return {**clean, **settings}


class Served:
    """A running `python -m marketplace serve` process whose output lines are read as they come."""

    def __init__(self, arguments: list[str], env: dict[str, str], stderr: Path) -> None:
        self.stderr = stderr
        with stderr.open("wb") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "marketplace", "serve", *arguments],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = START_TIMEOUT) -> str:
        """The next line it prints; fails the test if it exits or says nothing in time."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"serve printed nothing in {timeout} s; stderr:\n{self.stderr.read_text()}")
        if line is None:
            pytest.fail(f"serve exited with {self.process.wait()}; stderr:\n{self.stderr.read_text()}")
        return line

    def remaining_lines(self) -> list[str]:
        """What it printed after the lines already read, once it has exited."""
        lines = []
        while (line := self._lines.get(timeout=STOP_TIMEOUT)) is not None:
            lines.append(line)
        return lines

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def consumers(url: str, queue_name: str) -> int:
    """How many consumers `queue_name` has on the broker."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(connection.channel().queue_declare(queue_name, passive=True).method.consumer_count)
    finally:
        connection.close()


@pytest.fixture
def wiring(rabbitmq_url: str) -> Iterator[Wiring]:
    """Names of this test's own on the session's broker, removed after the test."""
    wiring = Wiring(SERVICES, prefix=f"serve-{secrets.token_hex(4)}.")
    yield wiring
    with transports.connect(rabbitmq_url) as transport:
        transport.delete(wiring.topology())


@pytest.fixture
def serve(rabbitmq_url: str, wiring: Wiring, tmp_path: Path) -> Iterator[Callable[[str], Served]]:
    """Starts `serve --services <names>` on the session's broker; kills what is left after the test."""
    started: list[Served] = []

    def start(services: str) -> Served:
        env = environment(
            MARKETPLACE_TRANSPORT_URL=rabbitmq_url,
            MARKETPLACE_PREFIX=wiring.prefix,
            MARKETPLACE_SECRET_KEY=SECRET_KEY,
            MARKETPLACE_MAILER="recording",
        )
        served = Served(["--services", services], env, tmp_path / f"stderr-{len(started)}.txt")
        started.append(served)
        return served

    yield start
    for served in started:
        served.kill()


def run_serve(*arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `serve` to its end (for the cases that stop before serving)."""
    return subprocess.run(
        [sys.executable, "-m", "marketplace", "serve", *arguments],
        cwd=ROOT,
        env=environment(**settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )


# Serving.


def test_serve_says_it_is_ready_with_its_services_and_pid_once_it_consumes(
    serve: Callable[[str], Served], rabbitmq_url: str, wiring: Wiring
) -> None:
    served = serve("users,gig")
    assert served.next_line() == (
        f"ready: users, gig (pid {served.process.pid}) on transport {mask_password(rabbitmq_url)}, "
        "mailer recording"
    )
    assert consumers(rabbitmq_url, wiring.events_queue("users")) == 1
    assert consumers(rabbitmq_url, wiring.commands_queue("gig")) == 1
    assert consumers(rabbitmq_url, wiring.commands_queue("order")) == 0


def test_served_services_answer_the_gateway_of_another_process(
    serve: Callable[[str], Served], rabbitmq_url: str, wiring: Wiring
) -> None:
    served = serve("auth,gig")
    assert served.next_line().startswith("ready: auth, gig ")
    settings = Settings(transport_url=rabbitmq_url, prefix=wiring.prefix, secret_key=SECRET_KEY)
    with bootstrap(settings, services=[], gateway=True) as gateway:
        market = gateway.marketplace
        signed_up = market.accounts.sign_up(
            username="ann", email="ann@example.com", password="correct horse battery", country="Spain"
        )
        page = market.gigs.search(text="logo")
    assert signed_up.user_id
    assert page.total == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_it_promptly_with_status_0_leaving_nothing_consuming(
    serve: Callable[[str], Served], rabbitmq_url: str, wiring: Wiring, stop_signal: signal.Signals
) -> None:
    served = serve("users,gig")
    assert served.next_line().startswith("ready: ")
    served.process.send_signal(stop_signal)
    assert served.process.wait(STOP_TIMEOUT) == 0
    assert served.remaining_lines() == ["stopping", "stopped"]
    assert consumers(rabbitmq_url, wiring.events_queue("users")) == 0
    assert consumers(rabbitmq_url, wiring.commands_queue("gig")) == 0


# Refusing to start. These stop before connecting to a broker, so memory:// will do.


def test_an_unknown_service_is_refused_with_status_2_naming_the_known_ones() -> None:
    result = run_serve("--services", "users,payments", "--transport", "memory://")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: unknown service 'payments' (known: auth, chat, gig, notification, order, review, users)\n"
    )


def test_no_service_at_all_is_refused_with_status_2() -> None:
    result = run_serve("--services", " , ", "--transport", "memory://")
    assert result.returncode == 2
    assert result.stderr == "error: --services names no service\n"


def test_the_auth_service_without_a_secret_key_is_refused_with_status_2() -> None:
    result = run_serve("--services", "auth", "--transport", "memory://")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "error: no token signing key is configured: one is required outside the demo\n"


def test_a_secret_key_shorter_than_32_bytes_is_refused_with_status_2() -> None:
    result = run_serve(
        "--services", "auth", "--transport", "memory://", MARKETPLACE_SECRET_KEY="hunter2hunter2"
    )
    assert result.returncode == 2
    assert "at least 32 bytes" in result.stderr
    assert "hunter2" not in result.stderr
