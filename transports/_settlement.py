"""What happens to a delivery once its handler has finished: one decision for every backend."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from attrs import evolve, frozen

from . import message as m
from .errors import PermanentError, RemoteError, ReplyError, Requeue
from .message import Delivery, Message
from .topology import RetryPolicy, dead_letter_queue_name, retry_queue_name


@frozen
class Ack:
    """The handler succeeded: acknowledge."""


@frozen
class PutBack:
    """The handler asked for the message to be requeued."""


@frozen
class Retry:
    """Publish `message` onto `queue` (a retry queue, via the default exchange), then ack."""

    queue: str
    message: Message
    delay: float


@frozen
class DeadLetter:
    """Publish `message` onto `queue` (the dead-letter queue, via the default exchange), then ack."""

    queue: str
    message: Message
    reason: str


Settlement = Ack | PutBack | Retry | DeadLetter

ACK = Ack()
PUT_BACK = PutBack()


def describe(error: BaseException) -> str:
    """An error as `Type: message`, the form written into the `x-error` header."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def dead_letter(delivery: Delivery, reason: str, error: BaseException | str) -> DeadLetter:
    """Dead-letter `delivery` with its reason and error, keeping where it came from."""
    headers = dict(delivery.message.headers)
    headers[m.DEAD_LETTER_REASON] = reason
    headers[m.ERROR] = error if isinstance(error, str) else describe(error)
    headers[m.ATTEMPT] = delivery.attempt
    headers[m.ORIGINAL_QUEUE] = delivery.queue
    headers.setdefault(m.ORIGINAL_EXCHANGE, delivery.exchange)
    headers.setdefault(m.ORIGINAL_ROUTING_KEY, delivery.routing_key)
    message = evolve(delivery.message, headers=headers, expiration=None)
    return DeadLetter(dead_letter_queue_name(delivery.queue), message, reason)


def decide(delivery: Delivery, error: BaseException | None, policy: RetryPolicy) -> Settlement:
    """The settlement of `delivery` after its handler ended with `error` (None: success)."""
    if error is None:
        return ACK
    if isinstance(error, Requeue):
        return PUT_BACK
    if isinstance(error, PermanentError):
        return dead_letter(delivery, m.REASON_PERMANENT, error)
    if delivery.attempt >= policy.max_attempts:
        return dead_letter(delivery, m.REASON_RETRIES_EXHAUSTED, error)
    headers = dict(delivery.message.headers)
    headers[m.ATTEMPT] = delivery.attempt + 1
    headers[m.ERROR] = describe(error)
    headers.setdefault(m.ORIGINAL_EXCHANGE, delivery.exchange)
    headers.setdefault(m.ORIGINAL_ROUTING_KEY, delivery.routing_key)
    return Retry(
        retry_queue_name(delivery.queue, delivery.attempt),
        evolve(delivery.message, headers=headers),
        policy.delay_after(delivery.attempt),
    )


def attempt_of(headers: Mapping[str, Any]) -> int:
    """The attempt number carried in `headers` (1 when absent or not a positive integer)."""
    value = headers.get(m.ATTEMPT)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def is_past_deadline(headers: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether a request carrying `headers` has outlived its caller's timeout."""
    deadline = headers.get(m.DEADLINE)
    if not isinstance(deadline, int) or isinstance(deadline, bool):
        return False
    return (time.time() if now is None else now) * 1000 > deadline


def deadline_after(timeout: float, now: float | None = None) -> int:
    """The `x-deadline` header value of a request sent now with `timeout` seconds to live."""
    return round(((time.time() if now is None else now) + timeout) * 1000)


def check_headers(headers: Mapping[str, Any]) -> None:
    """Refuse header values that not every backend can carry (floats, among others)."""
    for name, value in headers.items():
        if not isinstance(name, str):
            raise TypeError(f"header name {name!r} is not a string")
        if value is not None and not isinstance(value, str | int | bool | bytes):
            raise TypeError(
                f"header {name!r}: {type(value).__name__} values are not supported "
                "(use str, int, bool, bytes or None)"
            )


def error_reply(request: Delivery, error: BaseException) -> Message:
    """The reply that tells a caller its request failed."""
    if isinstance(error, ReplyError):
        code, text, details = error.code, error.message, dict(error.details)
    elif isinstance(error, PermanentError):
        code, text, details = "rejected", describe(error), {}
    else:
        code, text, details = "failed", describe(error), {}
    body = json.dumps({"code": code, "message": text, "details": details}).encode()
    return Message(
        body,
        headers={m.ERROR_CODE: code},
        correlation_id=request.message.correlation_id,
        content_type="application/json",
    )


def undecodable_reply(request: Delivery, error: BaseException) -> Message:
    """The reply to a request whose body could not be decoded."""
    return error_reply(request, ReplyError("undecodable", describe(error)))


def reply_message(request: Delivery, result: bytes | Message) -> Message:
    """The reply carrying a responder's result, correlated with its request."""
    if isinstance(result, Message):
        return evolve(result, correlation_id=request.message.correlation_id)
    return Message(result, correlation_id=request.message.correlation_id)


def raise_if_error(reply: Delivery) -> Delivery:
    """Return `reply`, or raise the `RemoteError` it carries."""
    code = reply.message.headers.get(m.ERROR_CODE)
    if code is None:
        return reply
    try:
        body = json.loads(reply.body)
        text, details = str(body.get("message", "")), body.get("details") or {}
    except (ValueError, AttributeError):
        text, details = reply.body.decode("utf-8", "replace"), {}
    raise RemoteError(str(code), text, {str(k): str(v) for k, v in dict(details).items()})
