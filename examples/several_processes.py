"""Each service in an OS process of its own, all on one RabbitMQ; the demo story told through a gateway.

    python examples/several_processes.py                    # on a throwaway RabbitMQ node of its own
    python examples/several_processes.py --amqp-url amqp://guest:guest@127.0.0.1:5672/%2F

What it does, in order:

1. Tells the demo story in this process on `memory://`, every service
   together, to know how the story must end.
2. Starts an SMTP sink in this process, so that the e-mails the notification
   service sends from its own process can be read here.
3. Starts seven processes, one per service (`python -m marketplace serve
   --services <name>`), configured through the environment: the same
   broker, name prefix, signing key and SMTP server for all. Each prints
   `ready: <name> (pid <pid>) ...` once it consumes its queues.
4. Builds only the gateway here (no service) and tells the story through it.
   Between steps it waits until no message of the run is waiting or being
   handled in any queue; the verification links come from the e-mails the
   sink received.
5. Checks that each service ran in a process of its own that consumes the
   service's queues, that nothing was dead-lettered, and that the story ended
   with the same figures as in step 1.
6. Stops every process with SIGTERM and checks that each exits with status 0,
   then removes the run's queues and exchanges.

The names of the run's queues and exchanges start with a prefix of their own,
so that runs can share a broker. Exit status: 0 when every check holds, 1 when
one fails (with what was seen), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pika
from attrs import frozen

import transports
from marketplace.bootstrap import bootstrap
from marketplace.config import Settings
from marketplace.demo import Figures, StoryPrinter, tell_story
from marketplace.mail import RecordingMailer
from marketplace.mail_sink import MailSink, Received
from marketplace.services import SERVICES
from marketplace.wiring import Wiring
from transports import Topology, dead_letter_queue_name, mask_password
from transports.rabbitmq_node import ThrowawayNode

READY_TIMEOUT = 60.0
"""Seconds for every service process to say it is ready."""
SETTLE_TIMEOUT = 30.0
"""Seconds for the messages of one step to be handled."""
STOP_TIMEOUT = 15.0
"""Seconds for a service process to exit after SIGTERM."""
POLL = 0.05
"""Seconds between two looks at a process's output or at the queues."""

READY = re.compile(r"^(ready: (?P<services>.+) \(pid (?P<pid>\d+)\) on .*)\n", re.MULTILINE)


class Failed(Exception):
    """A check of the example failed; the message says what was expected and what was seen."""


# -- The service processes ----------------------------------------------------------------


def service_environment(settings: Settings) -> dict[str, str]:
    """The environment that configures a service process like `settings` (and nothing else)."""
    assert settings.prefix is not None and settings.secret_key is not None
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("MARKETPLACE_")},
        "MARKETPLACE_TRANSPORT_URL": settings.transport_url,
        "MARKETPLACE_PREFIX": settings.prefix,
        "MARKETPLACE_SECRET_KEY": settings.secret_key,
        "MARKETPLACE_MAILER": settings.mailer,
        "MARKETPLACE_SMTP_HOST": settings.smtp_host,
        "MARKETPLACE_SMTP_PORT": str(settings.smtp_port),
    }


class ServiceProcess:
    """One `python -m marketplace serve --services <name>` process; its output goes to a file."""

    def __init__(self, name: str, environment: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "marketplace", "serve", "--services", name],
                env=dict(environment),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.ready_line = ""
        self.reported_pid: int | None = None
        """The process id the process gave in its ready line."""

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def wait_until_ready(self, deadline: float) -> None:
        """Wait for the ready line naming this service; `Failed` if the process exits or is late."""
        while (match := READY.search(self.output())) is None:
            self.check_running()
            if time.monotonic() > deadline:
                raise Failed(
                    f"{self.name} is not ready after {READY_TIMEOUT} s; it printed:\n{self.output()}"
                )
            time.sleep(POLL)
        if match["services"] != self.name:
            raise Failed(f"the process for {self.name} runs {match['services']}:\n{self.output()}")
        self.ready_line, self.reported_pid = match[1], int(match["pid"])

    def check_running(self) -> None:
        """`Failed`, with what the process printed, unless it is still running."""
        if self.process.poll() is not None:
            raise Failed(
                f"the {self.name} process exited with {self.process.returncode}; it printed:\n{self.output()}"
            )

    def terminate(self) -> None:
        """Ask the process to stop, as a service manager would: SIGTERM."""
        self.process.send_signal(signal.SIGTERM)

    def wait_for_exit(self, deadline: float) -> None:
        """Wait for exit status 0; `Failed` otherwise (the process is killed if still running)."""
        try:
            status = self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise Failed(
                f"{self.name} did not exit within {STOP_TIMEOUT} s of SIGTERM:\n{self.output()}"
            ) from None
        if status != 0:
            raise Failed(f"{self.name} exited with {status} after SIGTERM:\n{self.output()}")

    def kill(self) -> None:
        """Make sure the process is gone (the safety net when the example fails half-way)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def service_processes(settings: Settings, log_dir: Path) -> Iterator[list[ServiceProcess]]:
    """Start one process per service and wait until each is ready; none is left running afterwards."""
    environment = service_environment(settings)
    processes: list[ServiceProcess] = []
    try:
        for service in SERVICES:
            processes.append(ServiceProcess(service.name, environment, log_dir))
        deadline = time.monotonic() + READY_TIMEOUT
        for process in processes:
            process.wait_until_ready(deadline)
        yield processes
    finally:
        for process in processes:
            process.kill()


# -- Looking at the broker's queues -------------------------------------------------------


@frozen
class QueueState:
    """What the broker says about one queue."""

    messages: int
    consumers: int


class QueueProbe(Protocol):
    """Reads the run's queues; `quiet_reads` empty reads in a row mean nothing is in flight."""

    quiet_reads: int

    def read(self) -> dict[str, QueueState]:
        """The state of each of the run's queues, by name."""


class NodeQueues:
    """The run's queues as `rabbitmqctl` lists them: exact, ready and unacknowledged messages together.

    The queues are read one after another, not in one snapshot, so a message
    moving meanwhile from a queue not yet read to one already read escapes a
    read; a second empty read in a row catches it.
    """

    quiet_reads = 2

    def __init__(self, node: ThrowawayNode, prefix: str) -> None:
        self._node = node
        self._prefix = prefix

    def read(self) -> dict[str, QueueState]:
        """The state of each queue whose name starts with the run's prefix."""
        listing = self._node.ctl("list_queues", "--no-table-headers", "name", "messages", "consumers")
        states = {}
        for line in listing.splitlines():
            name, messages, consumers = line.rsplit("\t", 2)
            if name.startswith(self._prefix):
                states[name] = QueueState(int(messages), int(consumers))
        return states


class AmqpQueues:
    """The run's queues as passive declares over AMQP report them: works with any broker.

    AMQP counts only the messages ready for delivery, not those a consumer is
    handling, so a handler at work is invisible. Each handler here takes
    milliseconds; nothing ready for several reads in a row (a quarter of a
    second or more) means every cascade has ended.
    """

    quiet_reads = 5

    def __init__(self, url: str, topology: Topology) -> None:
        self._names = sorted(
            name
            for queue in topology.queues
            for name in (
                queue.name,
                dead_letter_queue_name(queue.name),
                *(retry for retry, _delay in topology.retry_queues(queue.name)),
            )
        )
        self._connection: Any = pika.BlockingConnection(pika.URLParameters(url))
        self._channel: Any = self._connection.channel()

    def read(self) -> dict[str, QueueState]:
        """The state of each queue of the run's topology (with its dead-letter and retry queues)."""
        states = {}
        for name in self._names:
            declared = self._channel.queue_declare(name, passive=True).method
            states[name] = QueueState(int(declared.message_count), int(declared.consumer_count))
        return states

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def settle(probe: QueueProbe, dead_letter_queues: set[str], processes: Sequence[ServiceProcess]) -> None:
    """Return once no message of the run is in flight: every queue but the dead-letter ones is empty."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    quiet = 0
    while True:
        for process in processes:
            process.check_running()
        busy = {
            name: state.messages
            for name, state in probe.read().items()
            if state.messages and name not in dead_letter_queues
        }
        quiet = 0 if busy else quiet + 1
        if quiet >= probe.quiet_reads:
            return
        if time.monotonic() > deadline:
            raise Failed(f"messages still in flight after {SETTLE_TIMEOUT} s: {busy}")
        time.sleep(POLL)


# -- The story and its figures ------------------------------------------------------------


def token_in(text: str, path: str) -> str | None:
    """The token of a link to `path` (`.../verify-email?token=...`) in `text`, if there is one."""
    match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_.\-]+)", text)
    return match.group(1) if match else None


def links_in_sink(sink: MailSink) -> Callable[[str, str], str]:
    """`link_token(to, path)` for `tell_story`: the token of the last such link the sink received for `to`."""

    def link_token(to: str, path: str) -> str:
        def has_link(received: Received) -> bool:
            return to in received.rcpt_to and token_in(received.body(), path) is not None

        latest = sink.wait_for(has_link, timeout=SETTLE_TIMEOUT)[-1]
        token = token_in(latest.body(), path)
        assert token is not None
        return token

    return link_token


def in_process_story() -> tuple[Figures, list[str]]:
    """The story told in this process on `memory://`, every service together: its figures and e-mails."""
    mailer = RecordingMailer()

    def link_token(to: str, path: str) -> str:
        tokens = [token for email in mailer.sent_to(to) if (token := token_in(email.body, path))]
        if not tokens:
            raise LookupError(f"no {path} link e-mailed to {to}")
        return tokens[-1]

    with bootstrap(Settings(), mailer=mailer, demo=True, isolate=True) as app:
        figures = tell_story(
            app.marketplace,
            settle=lambda: app.wait_until_quiet(SETTLE_TIMEOUT),
            link_token=link_token,
            printer=StoryPrinter(lambda _line: None),
        )
    return figures, sorted(f"{email.to}: {email.subject}" for email in mailer.sent)


def emails_in_sink(sink: MailSink) -> list[str]:
    """Recipient and subject of each e-mail the sink received, sorted."""
    return sorted(f"{r.message()['To']}: {r.message()['Subject']}" for r in sink.received)


def outcome(figures: Figures) -> dict[str, object]:
    """How the story ended, without what differs between runs (ids, times)."""
    seller, gig, order = figures.seller, figures.gig, figures.order
    return {
        "seller jobs (ongoing, completed, cancelled)": (
            seller.ongoing_jobs,
            seller.completed_jobs,
            seller.cancelled_jobs,
        ),
        "seller earnings (cents)": seller.total_earnings_cents,
        "seller gigs": seller.total_gigs,
        "seller ratings (count, sum, by stars)": (
            seller.ratings_count,
            seller.ratings_sum,
            seller.rating_categories,
        ),
        "gig ratings (count, sum, by stars)": (gig.ratings_count, gig.ratings_sum, gig.rating_categories),
        "order status": str(order.status),
        "order cents (price, fee, total, seller's)": (
            order.price_cents,
            order.service_fee_cents,
            order.total_cents,
            order.seller_earnings_cents,
        ),
        "order reviews (buyer's, seller's rating)": (
            order.buyer_review.rating if order.buyer_review else None,
            order.seller_review.rating if order.seller_review else None,
        ),
    }


# -- The checks ---------------------------------------------------------------------------


def check_one_process_per_service(processes: Sequence[ServiceProcess]) -> None:
    """Each service reported the pid of the process started for it, and no two share one."""
    for process in processes:
        if process.reported_pid != process.process.pid:
            raise Failed(f"{process.name} reports pid {process.reported_pid}, started {process.process.pid}")
    pids = {process.reported_pid for process in processes}
    if len(pids) != len(processes) or os.getpid() in pids:
        raise Failed(f"services share processes: {[p.ready_line for p in processes]}")


def check_consumers(states: Mapping[str, QueueState], wiring: Wiring) -> None:
    """Each service's queues have exactly one consumer: its own process (the gateway consumes none)."""
    expected = {}
    for service in wiring.services:
        if service.consumes():
            expected[wiring.events_queue(service.name)] = 1
        if service.answers():
            expected[wiring.commands_queue(service.name)] = 1
    seen = {name: states[name].consumers for name in expected}
    if seen != expected:
        raise Failed(f"consumers per queue: expected {expected}, saw {seen}")


def check_nothing_dead_lettered(states: Mapping[str, QueueState], dead_letter_queues: set[str]) -> None:
    """No message of the run ended in a dead-letter queue."""
    dead = {name: states[name].messages for name in dead_letter_queues if states[name].messages}
    if dead:
        raise Failed(f"messages were dead-lettered: {dead}")


def check_same_outcome(expected: Mapping[str, object], seen: Mapping[str, object]) -> None:
    """The story ended as it did in one process."""
    different = [
        f"  {key}: in one process {expected[key]!r}, here {seen[key]!r}"
        for key in expected
        if expected[key] != seen[key]
    ]
    if different:
        raise Failed("the final figures differ from the in-process demo's:\n" + "\n".join(different))


def check_same_emails(expected: Sequence[str], seen: Sequence[str]) -> None:
    """The same e-mails were sent as in one process (recipients and subjects)."""
    if list(expected) != list(seen):
        raise Failed(f"e-mails: in one process {expected}, here {seen}")


# -- The whole run ------------------------------------------------------------------------


def stop_all(processes: Sequence[ServiceProcess]) -> None:
    """SIGTERM to every process at once, then each must exit with status 0 within `STOP_TIMEOUT`."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        process.wait_for_exit(deadline)


def remove_topology(broker: transports.Transport, topology: Topology) -> None:
    """Delete the run's exchanges and queues (with their dead-letter and retry queues).

    A failure here is reported but not raised: it must not hide the failure
    that may have brought the run to an end.
    """
    try:
        broker.delete(topology)
    except transports.TransportError as error:
        print(f"warning: could not remove the run's queues and exchanges: {error}", file=sys.stderr)


def run(amqp_url: str | None, out: Callable[[str], None] = print) -> None:
    """Everything the module docstring describes; raises `Failed` when a check fails."""
    started = time.monotonic()
    in_process_figures, expected_emails = in_process_story()
    expected = outcome(in_process_figures)
    out(f"in-process demo on memory:// told in {time.monotonic() - started:.1f} s")

    with contextlib.ExitStack() as stack:
        node: ThrowawayNode | None = None
        if amqp_url is None:
            out("starting a throwaway RabbitMQ node")
            node = stack.enter_context(ThrowawayNode())
            url = node.url
        else:
            url = amqp_url
        prefix = f"several-{secrets.token_hex(4)}."
        sink = stack.enter_context(MailSink())
        settings = Settings(
            transport_url=url,
            prefix=prefix,
            secret_key=secrets.token_urlsafe(32),
            mailer="smtp",
            smtp_host=sink.host,
            smtp_port=sink.port,
        )
        wiring = Wiring(SERVICES, prefix=prefix, retry=settings.retry)
        topology = wiring.topology()
        dead_letter_queues = {dead_letter_queue_name(queue.name) for queue in topology.queues}
        try:
            broker = stack.enter_context(transports.connect(url))
        except transports.TransportError as error:
            raise Failed(f"cannot reach the broker at {mask_password(url)}: {error}") from None
        stack.callback(remove_topology, broker, topology)  # once every process has stopped

        out(f"starting {len(SERVICES)} service processes on {mask_password(url)}, prefix {prefix}")
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="several-processes-")))
        phase = time.monotonic()
        processes = stack.enter_context(service_processes(settings, log_dir))
        for process in processes:
            out(f"  {process.ready_line}")
        out(f"all ready in {time.monotonic() - phase:.1f} s")

        probe: QueueProbe
        if node is not None:
            probe = NodeQueues(node, prefix)
        else:
            probe = amqp_probe = AmqpQueues(url, topology)
            stack.callback(amqp_probe.close)
        check_one_process_per_service(processes)
        check_consumers(probe.read(), wiring)

        phase = time.monotonic()
        gateway = stack.enter_context(bootstrap(settings, services=[], gateway=True))
        figures = tell_story(
            gateway.marketplace,
            settle=lambda: settle(probe, dead_letter_queues, processes),
            link_token=links_in_sink(sink),
            printer=StoryPrinter(out),
        )
        story_time = time.monotonic() - phase
        gateway.stop()

        states = probe.read()
        check_consumers(states, wiring)
        check_nothing_dead_lettered(states, dead_letter_queues)
        check_same_outcome(expected, outcome(figures))
        check_same_emails(expected_emails, emails_in_sink(sink))

        phase = time.monotonic()
        stop_all(processes)
        stop_time = time.monotonic() - phase

        out("\nsummary")
        out(f"  {len(processes)} services in {len(processes)} processes, each consuming its own queues")
        out(f"  story told through the gateway in {story_time:.1f} s")
        out(f"  the same {len(expected_emails)} e-mails (recipients, subjects) as the in-process demo")
        out("  final figures match the in-process demo:")
        for key, value in expected.items():
            out(f"    {key}: {value}")
        out(f"  every service exited with status 0 within {stop_time:.1f} s of SIGTERM")
    out(f"  queues and exchanges {prefix}* removed; done in {time.monotonic() - started:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--amqp-url", help="a RabbitMQ broker to use (default: start a throwaway node of its own)"
    )
    args = parser.parse_args(argv)
    # SIGTERM, like Ctrl-C, unwinds `run`: the service processes and the node are stopped.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    try:
        run(args.amqp_url)
    except Failed as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
