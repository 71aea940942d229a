"""Messages as published, deliveries as consumed, and the headers the transport writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

# Headers written by the transport itself; every backend writes the same ones.
ATTEMPT = "x-attempt"
"""1-based delivery attempt, counted by the retry mechanism."""
DEADLINE = "x-deadline"
"""Unix time in milliseconds (an int) after which a request is no longer run (request/reply)."""
DEAD_LETTER_REASON = "x-dead-letter-reason"
"""Why a message was dead-lettered: one of the `REASON_*` values."""
ERROR = "x-error"
"""The error that dead-lettered the message, as `Type: message`."""
ORIGINAL_EXCHANGE = "x-original-exchange"
ORIGINAL_ROUTING_KEY = "x-original-routing-key"
ORIGINAL_QUEUE = "x-original-queue"
ERROR_CODE = "x-error-code"
"""On a reply: the responder's error code (the body holds message and details)."""

REASON_UNDECODABLE = "undecodable"
REASON_PERMANENT = "permanent"
REASON_RETRIES_EXHAUSTED = "retries-exhausted"
REASON_EXPIRED = "expired"
REASON_REJECTED = "rejected"

HeaderValue = str | int | bool | bytes | None
"""What a published header may hold on every backend (RabbitMQ via pika has no floats)."""


def _headers(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value) if value else {}


@frozen
class Message:
    """What is published: a body of bytes and its properties.

    `expiration` is a time to live in seconds; `None` means the message never
    expires. Published headers hold only `HeaderValue`s (no floats: pika cannot
    encode them); headers of a delivery may hold more (RabbitMQ's `x-death`).
    """

    body: bytes
    headers: Mapping[str, Any] = field(factory=dict, converter=_headers)
    message_id: str | None = None
    correlation_id: str | None = None
    content_type: str | None = None
    expiration: float | None = None
    reply_to: str | None = None


@frozen
class Delivery:
    """A message handed to a consumer, with where it came from and how often it was tried.

    `payload` is what the consumer's decoder made of the body (the body itself
    when the consumer has no decoder). `attempt` starts at 1 and grows with each
    retry; `redelivered` is set when the broker delivers the message again after
    it was requeued or its consumer went away before acknowledging it.
    """

    message: Message
    queue: str
    exchange: str
    routing_key: str
    redelivered: bool = False
    attempt: int = 1
    payload: Any = None

    @property
    def body(self) -> bytes:
        """The message body."""
        return self.message.body

    @property
    def headers(self) -> Mapping[str, Any]:
        """The message headers."""
        return self.message.headers


def dead_letter_reason(message: Message) -> str | None:
    """Why `message` was dead-lettered, whether the transport or the broker did it."""
    reason = message.headers.get(DEAD_LETTER_REASON)
    if reason is not None:
        return str(reason)
    deaths = message.headers.get("x-death")  # written by RabbitMQ itself
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return str(deaths[0].get("reason"))
    return None
