"""The throwaway RabbitMQ node the suite, benchmarks and examples run against.

pika is used directly here, and only here outside `transports.rabbitmq`,
so that the node is tested independently of the transport built on it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pika
import pytest
from pika.exceptions import AMQPConnectionError

from transports.rabbitmq_node import NodeError, ThrowawayNode

pytestmark = pytest.mark.rabbitmq

QUEUE = "survivors"


def _connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url + "?connection_attempts=1&socket_timeout=5"))


def _processes_in_session(session_id: int) -> list[int]:
    """Pids of processes whose session is `session_id` (a node and its helpers share one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the parenthesised command: state, ppid, pgrp, session, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def test_a_started_node_answers_amqp_and_rabbitmqctl_on_loopback(rabbitmq_node: ThrowawayNode) -> None:
    node = rabbitmq_node

    assert node.url == f"amqp://guest:guest@127.0.0.1:{node.amqp_port}/%2F"
    connection = _connect(node.url)
    assert connection.is_open
    connection.close()
    assert node.name in node.ctl("status")


def test_a_vhost_added_for_guest_accepts_connections_until_it_is_deleted(
    rabbitmq_node: ThrowawayNode,
) -> None:
    url = rabbitmq_node.add_vhost("node-test/vhost")
    assert url.endswith("/node-test%2Fvhost")
    _connect(url).channel().queue_declare("jobs", durable=True)

    rabbitmq_node.delete_vhost("node-test/vhost")

    with pytest.raises(AMQPConnectionError):
        _connect(url)


def test_closing_the_connections_of_a_vhost_disconnects_its_clients(rabbitmq_node: ThrowawayNode) -> None:
    # Only this test's vhost: other tests share the session's node.
    url = rabbitmq_node.add_vhost("node-test/disconnect")
    connection = _connect(url)
    try:
        rabbitmq_node.close_all_connections("test", vhost="node-test/disconnect")

        with pytest.raises(AMQPConnectionError):
            # The broker's Connection.Close is read on the next call into the connection.
            connection.process_data_events(time_limit=5)
        assert connection.is_closed
    finally:
        rabbitmq_node.delete_vhost("node-test/disconnect")


def test_durable_queue_and_persistent_message_survive_a_restart_and_a_crash(
    own_rabbitmq_node: ThrowawayNode,
) -> None:
    node = own_rabbitmq_node
    connection = _connect(node.url)
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(QUEUE, durable=True)
    channel.basic_publish(
        "", QUEUE, b"still here", pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    )
    connection.close()
    ports = (node.amqp_port, node.dist_port, node.epmd_port)

    node.restart()
    node.kill()
    node.start()

    assert (node.amqp_port, node.dist_port, node.epmd_port) == ports
    connection = _connect(node.url)
    _, _, body = connection.channel().basic_get(QUEUE, auto_ack=True)
    connection.close()
    assert body == b"still here"


def test_cleanup_leaves_no_process_directory_or_listener_behind(own_rabbitmq_node: ThrowawayNode) -> None:
    node = own_rabbitmq_node
    sessions = node.pids  # each process the node started leads a session of its own
    assert len(sessions) == 2  # the node and its epmd
    assert all(_processes_in_session(s) for s in sessions)

    node.cleanup()

    assert [pid for s in sessions for pid in _processes_in_session(s)] == []
    assert not os.path.exists(node.data_dir)
    assert not _accepts(node.amqp_port)
    assert not _accepts(node.epmd_port)
    with pytest.raises(NodeError):
        node.ctl("status")
