"""Requests and replies between the gateway and the services, as transport messages.

A request body is one JSON object::

    {"type": "PlaceOrder", "request_id": "...", "idempotency_key": "...",
     "correlation_id": "...", "sent_at": "2024-05-01T12:00:00Z",
     "actor_id": "..." | null, "payload": {...}}

and a reply body ``{"type": "OrderView", "payload": {...}}``. Fields are
converted by the same per-class conversion as events (`marketplace.codec`),
with the same policy: unknown fields are ignored, a missing or invalid field
is refused naming it, and a body over the size limit is refused before it is
parsed. A request that cannot be decoded is dead-lettered by the transport
and its caller gets an `undecodable` error.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from transports import Message

from . import codec
from .codec import DecodeError, Reason
from .commands import Command, Query, Reply, Request
from .validation import ValidationError

CONTENT_TYPE = codec.CONTENT_TYPE
REQUEST_TYPE_HEADER = "x-request-type"


def _subclasses(base: type[Any]) -> Iterator[type[Any]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@cache
def request_types() -> dict[str, type[Any]]:
    """Every command and query, by wire name (the class name)."""
    from .commands import registry  # noqa: F401  (imports every service's commands)

    return {cls.__name__: cls for base in (Command, Query) for cls in _subclasses(base)}


@cache
def reply_types() -> dict[str, type[Any]]:
    """Every reply, by wire name (the class name)."""
    from .commands import registry  # noqa: F401

    return {cls.__name__: cls for cls in _subclasses(Reply)}


_SCHEMAS: dict[type[Any], codec.Schema] = {}


def _schema(cls: type[Any]) -> codec.Schema:
    """The field conversion of `cls`, built once."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        schema = _SCHEMAS[cls] = codec.Schema(cls)
    return schema


def request_message(request: Request, *, max_size: int = codec.DEFAULT_MAX_SIZE) -> Message:
    """`request` as a transport message."""
    document = {
        "type": request.type,
        "request_id": request.request_id,
        "idempotency_key": request.idempotency_key,
        "correlation_id": request.correlation_id,
        "sent_at": codec.format_datetime(request.sent_at),
        "actor_id": request.actor_id,
        "payload": _schema(type(request.body)).encode(request.body),
    }
    return Message(
        codec.dump(document, max_size=max_size),
        headers={REQUEST_TYPE_HEADER: request.type},
        message_id=request.request_id,
        correlation_id=request.correlation_id,
        content_type=CONTENT_TYPE,
    )


def decode_request(message: Message, *, max_size: int = codec.DEFAULT_MAX_SIZE) -> Request:
    """The request in a transport message (a `transports.Decoder`); `DecodeError` if there is none."""
    if message.content_type is not None and message.content_type != CONTENT_TYPE:
        raise DecodeError(Reason.WRONG_CONTENT_TYPE, f"content type {message.content_type!r}")
    document = codec.load(message.body, max_size=max_size)
    kind = codec.document_field(document, "type", codec.decode_str)
    cls = request_types().get(kind)
    if cls is None:
        raise DecodeError(Reason.UNKNOWN_TYPE, f"unknown request type {kind!r}", "type")
    body = codec.document_field(document, "payload", _schema(cls).decode, path="payload")
    try:
        return Request(
            body,
            request_id=codec.document_field(document, "request_id", codec.decode_str),
            idempotency_key=codec.document_field(document, "idempotency_key", codec.decode_str),
            correlation_id=codec.document_field(document, "correlation_id", codec.decode_str),
            sent_at=codec.document_field(document, "sent_at", codec.decode_datetime),
            actor_id=codec.document_field(document, "actor_id", codec.decode_optional_str),
        )
    except ValidationError as error:
        raise DecodeError(Reason.INVALID_VALUE, error.message, error.field) from None


def encode_reply(reply: Any, *, max_size: int = codec.DEFAULT_MAX_SIZE) -> bytes:
    """A service's reply as a body."""
    document = {"type": type(reply).__name__, "payload": _schema(type(reply)).encode(reply)}
    return codec.dump(document, max_size=max_size)


def decode_reply(body: bytes, *, max_size: int = codec.DEFAULT_MAX_SIZE) -> Any:
    """The reply in a body; `DecodeError` if there is none."""
    document = codec.load(body, max_size=max_size)
    kind = codec.document_field(document, "type", codec.decode_str)
    cls = reply_types().get(kind)
    if cls is None:
        raise DecodeError(Reason.UNKNOWN_TYPE, f"unknown reply type {kind!r}", "type")
    return codec.document_field(document, "payload", _schema(cls).decode, path="payload")
