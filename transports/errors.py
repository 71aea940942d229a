"""Exceptions of the transport layer: what callers catch and what handlers raise."""

from __future__ import annotations

from collections.abc import Mapping


class TransportError(Exception):
    """Base class of every error the transport raises."""


class UnknownScheme(TransportError, ValueError):
    """The URL names a scheme no backend handles."""


class TopologyError(TransportError):
    """A declaration is invalid, conflicts with the broker, or names something undeclared."""


class Unroutable(TransportError):
    """A published message matched no queue (it was returned, not dropped)."""

    def __init__(self, exchange: str, routing_key: str) -> None:
        super().__init__(f"unroutable: exchange {exchange!r}, routing key {routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key


class NotConfirmed(TransportError):
    """The broker refused (nacked) a published message."""


class TransportClosed(TransportError):
    """The transport was closed before the operation could complete."""


class RequestTimeout(TransportError, TimeoutError):
    """No reply came within the timeout: the outcome of the request is unknown."""


class RemoteError(TransportError):
    """The responder of a request failed; carries its error code, message and details."""

    def __init__(self, code: str, message: str, details: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, str] = dict(details or {})


class ReplyError(Exception):
    """Raised by a responder to answer a request with an error instead of a result.

    The request counts as handled (it is acknowledged, not retried); the caller
    receives a `RemoteError` with the same code, message and details.
    """

    def __init__(self, code: str, message: str, **details: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the message is dead-lettered at once."""


class Requeue(Exception):
    """Raised by a handler to put the message back on its queue, marked redelivered."""
