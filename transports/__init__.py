"""A small messaging library: one contract, an in-memory broker and a RabbitMQ backend.

    >>> import transports
    >>> with transports.connect("memory://") as t:
    ...     t.declare(transports.Topology(queues=[transports.Queue("jobs")]))
    ...     t.publish("", "jobs", transports.Message(b"hello")).result(timeout=5)

A backend is chosen by the URL's scheme through `BACKENDS`, a table of
`"module:Class"` strings imported only when used, so that pika is imported
only when a RabbitMQ URL is opened. The contract is in `transports.base`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import Consumer, Decoder, Handler, Responder, Transport, TransportStats
from .errors import (
    NotConfirmed,
    PermanentError,
    RemoteError,
    ReplyError,
    RequestTimeout,
    Requeue,
    TopologyError,
    TransportClosed,
    TransportError,
    UnknownScheme,
    Unroutable,
)
from .message import Delivery, Message, dead_letter_reason
from .topology import (
    Binding,
    Exchange,
    ExchangeType,
    Queue,
    RetryPolicy,
    Topology,
    dead_letter_queue_name,
    retry_queue_name,
)
from .url import mask_password

__all__ = [
    "BACKENDS",
    "Binding",
    "Consumer",
    "Decoder",
    "Delivery",
    "Exchange",
    "ExchangeType",
    "Handler",
    "Message",
    "NotConfirmed",
    "PermanentError",
    "Queue",
    "RemoteError",
    "ReplyError",
    "RequestTimeout",
    "Requeue",
    "Responder",
    "RetryPolicy",
    "Topology",
    "TopologyError",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportStats",
    "UnknownScheme",
    "Unroutable",
    "connect",
    "dead_letter_queue_name",
    "dead_letter_reason",
    "mask_password",
    "retry_queue_name",
]

BACKENDS: dict[str, str] = {
    "memory": "transports.memory:Transport",
    "amqp": "transports.rabbitmq:Transport",
    "amqps": "transports.rabbitmq:Transport",
}
"""URL scheme -> `"module:Class"` of the backend that serves it."""


def backend_for(url: str) -> type[Transport]:
    """The backend class for `url`'s scheme, imported on first use."""
    from .url import scheme_of

    scheme = scheme_of(url)
    try:
        target = BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in sorted(BACKENDS))
        raise UnknownScheme(
            f"no transport for {mask_password(url)!r}: unknown scheme {scheme!r} (known: {known})"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls: type[Transport] = getattr(import_module(module_name), class_name)
    return cls


def connect(url: str = "memory://", **options: Any) -> Transport:
    """Open a transport for `url`; `options` go to the backend (see its docstring)."""
    return backend_for(url)(url, **options)  # type: ignore[call-arg]
