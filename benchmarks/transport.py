"""Publish->consume throughput and latency of both transports, each beside its baseline.

    python benchmarks/transport.py [--rounds 5] [--messages 100000] [--amqp-url URL]

Throughput: one thread publishes N messages of 200 bytes while a consumer
takes them; the figure is N divided by the time from the first publish until
the last message was consumed and every publish confirmed. Each round runs
every workload once, in an order that alternates between rounds; the figure
reported is the median over the rounds, and each backend's ratio is the
median of its per-round ratios to the baseline measured in the same round.

- RabbitMQ baseline: raw pika, one `SelectConnection` publishing persistent
  messages to a classic durable queue with up to 1,000 confirms outstanding,
  another consuming with prefetch 1,000 and acknowledging each message.
- RabbitMQ backend: `transports.connect(url)` with its defaults (the ones the
  services use), `publish` without waiting, a `consume` handler that counts.
- memory baseline: one thread putting N items into a `queue.Queue`, another
  taking them.
- memory backend: `transports.connect("memory://")`, same as for RabbitMQ.

Latency: messages published at a steady 1,000 per second; the time from
`publish` to the start of the handler, p50 and p99 over all rounds.

Without `--amqp-url` (or `MARKETPLACE_AMQP_URL`), a throwaway RabbitMQ node
is started for the run and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pika

import transports
from transports.rabbitmq_node import ThrowawayNode

BODY = b"x" * 200
RAW_CONFIRMS_OUTSTANDING = 1000
RAW_PREFETCH = 1000
LATENCY_RATE = 1000  # messages per second
TIMEOUT = 600.0


def queue_baseline(count: int) -> float:
    """Messages per second handed from one thread to another through `queue.Queue`."""
    handoff: queue.Queue[bytes | None] = queue.Queue()

    def take() -> None:
        while handoff.get() is not None:
            pass

    taker = threading.Thread(target=take)
    start = time.perf_counter()
    taker.start()
    for _ in range(count):
        handoff.put(BODY)
    handoff.put(None)
    taker.join()
    return count / (time.perf_counter() - start)


def raw_pika_baseline(url: str, count: int) -> float:
    """Messages per second through a durable classic queue with raw pika `SelectConnection`s."""
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    params = pika.URLParameters(url)
    admin = pika.BlockingConnection(params)
    admin.channel().queue_declare(name, durable=True, arguments={"x-queue-type": "classic"})
    consumed = threading.Event()
    published = threading.Event()

    def consume() -> None:
        received = 0

        def on_message(channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
            nonlocal received
            channel.basic_ack(method.delivery_tag)
            received += 1
            if received == count:
                consumed.set()
                channel.connection.close()

        def on_channel(channel: Any) -> None:
            channel.basic_qos(
                prefetch_count=RAW_PREFETCH, callback=lambda _f: channel.basic_consume(name, on_message)
            )

        connection = pika.SelectConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
            on_close_callback=lambda c, _r: c.ioloop.stop(),
        )
        connection.ioloop.start()

    def publish() -> None:
        sent = confirmed = 0
        properties = pika.BasicProperties(delivery_mode=2)
        unconfirmed: set[int] = set()

        def fill(channel: Any) -> None:
            nonlocal sent
            while sent < count and len(unconfirmed) < RAW_CONFIRMS_OUTSTANDING:
                channel.basic_publish("", name, BODY, properties)
                sent += 1
                unconfirmed.add(sent)

        def on_confirm(channel: Any, frame: Any) -> None:
            nonlocal confirmed
            tag, multiple = frame.method.delivery_tag, frame.method.multiple
            done = [t for t in unconfirmed if t <= tag] if multiple else [tag]
            unconfirmed.difference_update(done)
            confirmed += len(done)
            if confirmed == count:
                published.set()
                channel.connection.close()
            else:
                fill(channel)

        def on_channel(channel: Any) -> None:
            channel.confirm_delivery(lambda f: on_confirm(channel, f), callback=lambda _f: fill(channel))

        connection = pika.SelectConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
            on_close_callback=lambda c, _r: c.ioloop.stop(),
        )
        connection.ioloop.start()

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.2)  # let the consumer subscribe before the clock starts (benchmark setup, not a test)
    start = time.perf_counter()
    publisher = threading.Thread(target=publish)
    publisher.start()
    finished = consumed.wait(TIMEOUT) and published.wait(TIMEOUT)
    elapsed = time.perf_counter() - start
    publisher.join(TIMEOUT)
    consumer.join(TIMEOUT)
    admin.channel().queue_delete(name)
    admin.close()
    if not finished:
        raise RuntimeError("raw pika baseline did not finish")
    return count / elapsed


def transport_throughput(transport: transports.Transport, count: int) -> float:
    """Messages per second published and consumed through `transport` with its defaults."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    topology = transports.Topology(queues=[transports.Queue(name)])
    transport.declare(topology)
    consumed = threading.Event()
    received = 0

    def handle(_delivery: transports.Delivery) -> None:
        nonlocal received
        received += 1
        if received == count:
            consumed.set()

    consumer = transport.consume(name, handle)
    message = transports.Message(BODY)
    start = time.perf_counter()
    futures = [transport.publish("", name, message) for _ in range(count)]
    for future in futures:
        future.result(TIMEOUT)
    finished = consumed.wait(TIMEOUT)
    elapsed = time.perf_counter() - start
    consumer.cancel()
    transport.delete(topology)
    if not finished:
        raise RuntimeError(f"{transport.url}: only {received} of {count} consumed")
    return count / elapsed


def transport_latencies(transport: transports.Transport, count: int) -> list[float]:
    """Seconds from publish to handler for `count` messages paced at `LATENCY_RATE` per second."""
    name = f"bench-latency-{uuid.uuid4().hex[:8]}"
    topology = transports.Topology(queues=[transports.Queue(name)])
    transport.declare(topology)
    latencies: list[float] = []
    consumed = threading.Event()

    def handle(delivery: transports.Delivery) -> None:
        latencies.append((time.perf_counter_ns() - int(delivery.headers["x-sent-ns"])) / 1e9)
        if len(latencies) == count:
            consumed.set()

    consumer = transport.consume(name, handle)
    futures: list[Future[None]] = []
    start = time.perf_counter()
    for i in range(count):
        pause = start + i / LATENCY_RATE - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing the publisher is the point of this measurement
        headers = {"x-sent-ns": time.perf_counter_ns()}
        futures.append(transport.publish("", name, transports.Message(BODY, headers=headers)))
    for future in futures:
        future.result(TIMEOUT)
    consumed.wait(TIMEOUT)
    consumer.cancel()
    transport.delete(topology)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its settings and figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--latency-messages", type=int, default=2_000)
    parser.add_argument("--amqp-url", default=os.environ.get("MARKETPLACE_AMQP_URL"))
    parser.add_argument("--skip-rabbitmq", action="store_true")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        url = args.amqp_url
        if url is None and not args.skip_rabbitmq:
            node = stack.enter_context(ThrowawayNode())
            node.start()
            url = node.url
        memory = stack.enter_context(transports.connect("memory://"))
        rabbit = None if args.skip_rabbitmq else stack.enter_context(transports.connect(url))
        print("settings:")
        print(f"  python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
        print(f"  rounds {args.rounds} (interleaved, order alternating)")
        print(f"  {args.messages} messages of {len(BODY)} bytes per workload and round")
        if rabbit is not None:
            print(
                f"  broker {transports.mask_password(url or '')}, classic durable queues, persistent messages"
            )
            print(
                f"  raw pika baseline: SelectConnection, {RAW_CONFIRMS_OUTSTANDING} confirms outstanding, "
                f"consumer prefetch {RAW_PREFETCH}, ack per message"
            )
            print(
                f"  rabbitmq backend: defaults (prefetch {transports.base.DEFAULT_PREFETCH}, "
                f"confirm window {transports.base.DEFAULT_CONFIRM_WINDOW})"
            )
        print(f"  latency: {args.latency_messages} messages per round at {LATENCY_RATE}/s")
        workloads: dict[str, Callable[[], float]] = {
            "queue.Queue baseline": lambda: queue_baseline(args.messages),
            "memory backend": lambda: transport_throughput(memory, args.messages),
        }
        if rabbit is not None:
            assert url is not None
            workloads["raw pika baseline"] = lambda: raw_pika_baseline(url, args.messages)
            workloads["rabbitmq backend"] = lambda: transport_throughput(rabbit, args.messages)
        results: dict[str, list[float]] = {name: [] for name in workloads}
        latencies: dict[str, list[float]] = {"memory backend": []}
        if rabbit is not None:
            latencies["rabbitmq backend"] = []
        for round_number in range(args.rounds):
            order = list(workloads) if round_number % 2 == 0 else list(reversed(workloads))
            for name in order:
                results[name].append(workloads[name]())
            latencies["memory backend"] += transport_latencies(memory, args.latency_messages)
            if rabbit is not None:
                latencies["rabbitmq backend"] += transport_latencies(rabbit, args.latency_messages)
            print(
                f"round {round_number + 1}: "
                + ", ".join(f"{name} {results[name][-1]:,.0f}/s" for name in workloads),
                flush=True,
            )
        print("\nthroughput, publish->consume (median of rounds):")
        pairs = [("memory backend", "queue.Queue baseline")]
        if rabbit is not None:
            pairs.append(("rabbitmq backend", "raw pika baseline"))
        for backend, baseline in pairs:
            ratios = [b / a for b, a in zip(results[backend], results[baseline], strict=True)]
            print(
                f"  {backend:17} {statistics.median(results[backend]):>10,.0f} msg/s   "
                f"{baseline:21} {statistics.median(results[baseline]):>10,.0f} msg/s   "
                f"ratio {statistics.median(ratios):.2f}x"
            )
        print(f"\nlatency at {LATENCY_RATE} msg/s, publish -> handler:")
        for backend, values in latencies.items():
            print(
                f"  {backend:17} p50 {percentile(values, 0.5) * 1e3:7.3f} ms   "
                f"p99 {percentile(values, 0.99) * 1e3:7.3f} ms   ({len(values)} messages)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
