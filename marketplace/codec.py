"""The one codec of the marketplace: events in envelopes, to JSON bytes and back.

Wire format: one JSON object (UTF-8, compact separators)::

    {"message_id": "...", "type": "OrderPlaced", "version": 1,
     "occurred_at": "2024-05-01T12:00:00.250000Z", "producer": "order",
     "correlation_id": "...", "causation_id": "..." | null, "payload": {...}}

`payload` holds the event's fields under their own names. Values are converted
explicitly, field by field, from the event classes' type hints: datetimes are
ISO 8601 strings in UTC with a `Z` suffix, microseconds written when not zero
(`2024-05-01T12:00:00.250000Z`; on input any explicit offset is accepted and
converted to UTC, a timestamp without an offset is refused); enums travel as
their values, tuples and frozensets as lists, nested attrs classes as objects.
Every field is required on the wire (`null` where the type allows None); the
event is then built through its validators, so a message that decodes is a
valid event.

Versions: every event class has a `VERSION`, written next to its wire name. A
consumer accepts the versions it knows (today: exactly each class's
`VERSION`); a change that old consumers cannot read (a field removed, renamed
or retyped, a meaning changed) gets a new version number; a message of an
unknown type or version is refused (`unknown-type`, `unsupported-version`),
which the transport turns into a dead letter.

Unknown fields are tolerated and ignored, in the envelope and in the payload.
Adding a field is then the one change allowed within a version: producers can
be upgraded before their consumers, as a rolling deploy requires. To stay
readable by new consumers, such a field needs a default, used when it is
absent. Refusing unknown fields would catch a misspelt field, but the
validators already refuse a message whose required fields are missing.

The body is limited (`DEFAULT_MAX_SIZE`, 64 KiB), checked before parsing when
decoding and after serializing when encoding, so that an oversized event fails
at its producer rather than in a consumer's dead-letter queue. Duplicate keys
in a JSON object are not detected: the last one wins, as in `json.loads`.

Building blocks for other JSON documents (the gateway's requests and replies
use them, so that they follow the same rules): `Schema` converts one attrs
class, `load` and `dump` turn bodies into JSON objects and back under the size
limit, `document_field` reads one field of a loaded object, and the
`decode_*` functions convert one value, raising `FieldError`, which
`document_field` and `Schema` turn into a `DecodeError` naming the field.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Any, NamedTuple, TypeVar

import attrs
from attrs import field, frozen

from transports import Message

from .events import REGISTRY, Event
from .validation import ValidationError, identifier, optional, utc_datetime

DEFAULT_MAX_SIZE = 64 * 1024
"""The largest body, in bytes, that `encode` produces and `decode` accepts."""
CONTENT_TYPE = "application/json"
EVENT_TYPE_HEADER = "x-event-type"
"""Message header holding the event's wire name (for routing and diagnostics; the body decides)."""
EVENT_VERSION_HEADER = "x-event-version"

T = TypeVar("T")


class Reason(StrEnum):
    """Why a body could not be decoded."""

    TOO_LARGE = "too-large"
    INVALID_UTF8 = "invalid-utf8"
    INVALID_JSON = "invalid-json"
    NOT_AN_OBJECT = "not-an-object"
    WRONG_CONTENT_TYPE = "wrong-content-type"
    MISSING_FIELD = "missing-field"
    WRONG_TYPE = "wrong-type"
    INVALID_VALUE = "invalid-value"
    UNKNOWN_TYPE = "unknown-type"
    UNSUPPORTED_VERSION = "unsupported-version"


class DecodeError(ValueError):
    """A body that is not a valid envelope; `field` names the culprit, as in `payload.sellers[0].email`."""

    def __init__(self, reason: Reason, message: str, field: str | None = None) -> None:
        super().__init__(f"{reason}: {field}: {message}" if field else f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.field = field


class EncodeError(ValueError):
    """An envelope that cannot be sent: its body would exceed the size limit."""


def _registered_event(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if REGISTRY.get(type(value).__name__) is not type(value):
        raise ValidationError(attribute.name, f"{type(value).__name__} is not a registered event")


@frozen
class Envelope:
    """An event with the metadata it travels with: ids, time, producer, correlation and causation."""

    message_id: str = field(validator=identifier)
    occurred_at: datetime = field(validator=utc_datetime)
    producer: str = field(validator=identifier)
    correlation_id: str = field(validator=identifier)
    causation_id: str | None = field(validator=optional(identifier))
    event: Event = field(validator=_registered_event)

    @property
    def type(self) -> str:
        """The event's wire name."""
        return type(self.event).__name__

    @property
    def version(self) -> int:
        """The version of the event's shape."""
        return self.event.VERSION

    @classmethod
    def start(
        cls,
        event: Event,
        *,
        producer: str,
        message_id: str,
        occurred_at: datetime,
        correlation_id: str | None = None,
    ) -> Envelope:
        """The first message of a flow: correlated with `correlation_id` (or itself), caused by nothing."""
        correlation = message_id if correlation_id is None else correlation_id
        return cls(message_id, occurred_at, producer, correlation, None, event)

    @classmethod
    def caused_by(
        cls, cause: Envelope, event: Event, *, producer: str, message_id: str, occurred_at: datetime
    ) -> Envelope:
        """A message published because of `cause`: same correlation, `cause` as causation."""
        return cls(message_id, occurred_at, producer, cause.correlation_id, cause.message_id, event)


# Converting values. A decoder raises FieldError with a path relative to the value it
# was given; each enclosing level adds its own step in front, and the place that knows
# the document renders the whole path into DecodeError.field.


class FieldError(Exception):
    """A JSON value that does not convert; `path` leads to it from the value being decoded."""

    def __init__(self, reason: Reason, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path

    def decode_error(self, *prefix: str | int) -> DecodeError:
        """This error as a DecodeError whose field is `prefix` followed by the path."""
        steps = (*prefix, *self.path)
        field = "".join(f"[{step}]" if type(step) is int else f".{step}" for step in steps).lstrip(".")
        return DecodeError(self.reason, self.message, field or None)


FieldDecoder = Callable[[object], Any]
"""Converts one JSON value to a Python value, or raises FieldError."""
FieldEncoder = Callable[[Any], object]
"""Converts one Python value to its JSON form."""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}.get(
        type(value), "object"
    )


def decode_str(value: object) -> str:
    """A JSON string."""
    if type(value) is not str:
        raise FieldError(Reason.WRONG_TYPE, f"expected a string, got {_json_type(value)}")
    return value


def decode_int(value: object) -> int:
    """A JSON integer (not a boolean, not a number with a fraction or exponent)."""
    if type(value) is not int:
        raise FieldError(Reason.WRONG_TYPE, f"expected an integer, got {_json_type(value)}")
    return value


def decode_bool(value: object) -> bool:
    """A JSON boolean."""
    if type(value) is not bool:
        raise FieldError(Reason.WRONG_TYPE, f"expected a boolean, got {_json_type(value)}")
    return value


def decode_datetime(value: object) -> datetime:
    """An ISO 8601 timestamp with an explicit offset, as a datetime in UTC."""
    if type(value) is not str:
        raise FieldError(Reason.WRONG_TYPE, f"expected an ISO 8601 timestamp, got {_json_type(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(Reason.INVALID_VALUE, f"{value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is UTC:
        return parsed
    if parsed.utcoffset() is None:
        raise FieldError(Reason.INVALID_VALUE, f"{value!r} has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise FieldError(Reason.INVALID_VALUE, f"{value!r} is out of range in UTC") from None


def format_datetime(value: datetime) -> str:
    """A UTC datetime as the wire writes it: ISO 8601 with a `Z`."""
    # The validators guarantee a zero offset, which isoformat writes as "+00:00". The default
    # timespec (microseconds only when non-zero) is twice as fast as asking for them always.
    return value.isoformat()[:-6] + "Z"


def optional_decoder(inner: FieldDecoder) -> FieldDecoder:
    """A decoder that lets null through as None and hands anything else to `inner`."""

    def decode(value: object) -> Any:
        return None if value is None else inner(value)

    return decode


decode_optional_str = optional_decoder(decode_str)
"""A JSON string or null."""


def _enum_decoder(enum: type[Enum]) -> FieldDecoder:
    def decode(value: object) -> Enum:
        if type(value) is not str:
            raise FieldError(Reason.WRONG_TYPE, f"expected a string, got {_json_type(value)}")
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum)
            raise FieldError(Reason.INVALID_VALUE, f"{value!r} is not one of {allowed}") from None

    return decode


def _sequence_decoder(inner: FieldDecoder, collection: Callable[[list[Any]], Any]) -> FieldDecoder:
    def decode(value: object) -> Any:
        if type(value) is not list:
            raise FieldError(Reason.WRONG_TYPE, f"expected an array, got {_json_type(value)}")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(inner(item))
            except FieldError as error:
                error.path = (index, *error.path)
                raise
        return collection(items)

    return decode


def _enum_value(value: Enum) -> object:
    return value.value


def _optional_encoder(inner: FieldEncoder) -> FieldEncoder:
    return lambda value: None if value is None else inner(value)


def _list_encoder(inner: FieldEncoder | None, *, ordered: bool) -> FieldEncoder:
    def encode(value: Any) -> list[object]:
        items = value if ordered else sorted(value)  # sorted: the same set always has the same bytes
        return list(items) if inner is None else [inner(item) for item in items]

    return encode


def _converters(hint: Any) -> tuple[FieldDecoder, FieldEncoder | None]:
    """The decoder and encoder (None: the value is its own JSON form) for a field of type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is str:
        return decode_str, None
    if hint is int:
        return decode_int, None
    if hint is bool:
        return decode_bool, None
    if hint is datetime:
        return decode_datetime, format_datetime
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_decoder(hint), _enum_value
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        decode, encode = _converters(args[0] if args[1] is type(None) else args[1])
        return optional_decoder(decode), None if encode is None else _optional_encoder(encode)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        decode, encode = _converters(args[0])
        return _sequence_decoder(decode, tuple), _list_encoder(encode, ordered=True)
    if origin is frozenset and len(args) == 1:
        decode, encode = _converters(args[0])
        return _sequence_decoder(decode, frozenset), _list_encoder(encode, ordered=False)
    if isinstance(hint, type) and attrs.has(hint):
        nested = Schema(hint)
        return nested.decode, nested.encode
    raise TypeError(f"the codec cannot convert fields of type {hint!r}")


class _Field(NamedTuple):
    name: str
    alias: str
    decode: FieldDecoder
    encode: FieldEncoder | None
    required: bool


class Schema:
    """Converts instances of one attrs class to and from JSON objects, field by field.

    The conversion of each field follows its type hint (str, int, bool,
    datetime, enums, `X | None`, `tuple[X, ...]`, `frozenset[X]`, nested attrs
    classes); a class with a field of any other type is refused when the
    schema is made. Decoding ignores unknown keys, refuses missing ones unless
    the field has a default, and builds the instance through its validators.
    """

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        hints = typing.get_type_hints(cls)
        self.fields = tuple(
            _Field(a.name, a.alias, *_converters(hints[a.name]), a.default is attrs.NOTHING)
            for a in attrs.fields(cls)
        )

    def decode(self, value: object) -> Any:
        """An instance built from the JSON object `value`; FieldError naming the field if it is not one."""
        if type(value) is not dict:
            raise FieldError(Reason.WRONG_TYPE, f"expected an object, got {_json_type(value)}")
        kwargs = {}
        for name, alias, decode, _, required in self.fields:
            if name in value:
                try:
                    kwargs[alias] = decode(value[name])
                except FieldError as error:
                    error.path = (name, *error.path)
                    raise
            elif required:
                raise FieldError(Reason.MISSING_FIELD, "is missing", (name,))
        try:
            return self.cls(**kwargs)  # keys checked above; the validators check the values
        except ValidationError as error:
            raise FieldError(Reason.INVALID_VALUE, error.message, (error.field,)) from None

    def encode(self, value: Any) -> dict[str, object]:
        """The JSON object for the instance `value`."""
        return {
            name: getattr(value, name) if encode is None else encode(getattr(value, name))
            for name, _, _, encode, _ in self.fields
        }


# Bodies and documents

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)


def dump(document: Mapping[str, Any], *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """A JSON-ready mapping as a compact UTF-8 body; EncodeError if that exceeds `max_size` bytes."""
    body = _ENCODER.encode(document).encode("utf-8")
    if len(body) > max_size:
        raise EncodeError(f"body of {len(body)} bytes exceeds {max_size}")
    return body


def load(body: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> dict[str, Any]:
    """The JSON object in `body`; DecodeError if it is too large, not UTF-8, not JSON or not an object."""
    if len(body) > max_size:
        raise DecodeError(Reason.TOO_LARGE, f"body of {len(body)} bytes exceeds {max_size}")
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DecodeError(Reason.INVALID_UTF8, str(error)) from None
    except (ValueError, RecursionError) as error:  # RecursionError: nesting too deep for the parser
        raise DecodeError(Reason.INVALID_JSON, str(error) or type(error).__name__) from None
    if type(document) is not dict:
        raise DecodeError(Reason.NOT_AN_OBJECT, f"expected an object, got {_json_type(document)}")
    return document


def document_field(
    document: Mapping[str, Any], name: str, decode_field: Callable[[object], T], *, path: str | None = None
) -> T:
    """Field `name` of a loaded document, converted; DecodeError naming it (or `path`) if that fails."""
    try:
        value = document[name]
    except KeyError:
        raise DecodeError(Reason.MISSING_FIELD, "is missing", path or name) from None
    try:
        return decode_field(value)
    except FieldError as error:
        raise error.decode_error(path or name) from None


# Envelopes

_SCHEMAS: Mapping[str, Schema] = {name: Schema(cls) for name, cls in REGISTRY.items()}


def encode(envelope: Envelope, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """The envelope as compact UTF-8 JSON; EncodeError if that exceeds `max_size` bytes."""
    name = envelope.type
    document = {
        "message_id": envelope.message_id,
        "type": name,
        "version": envelope.event.VERSION,
        "occurred_at": format_datetime(envelope.occurred_at),
        "producer": envelope.producer,
        "correlation_id": envelope.correlation_id,
        "causation_id": envelope.causation_id,
        "payload": _SCHEMAS[name].encode(envelope.event),
    }
    try:
        return dump(document, max_size=max_size)
    except EncodeError as error:
        raise EncodeError(f"{name} {envelope.message_id}: {error}") from None


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Envelope:
    """The envelope in `data`; DecodeError saying why (and which field) if it is not a valid one."""
    document = load(data, max_size=max_size)
    message_id = document_field(document, "message_id", decode_str)
    # type and version before the rest: they decide how the payload is read
    type_name = document_field(document, "type", decode_str)
    version = document_field(document, "version", decode_int)
    schema = _SCHEMAS.get(type_name)
    if schema is None:
        raise DecodeError(Reason.UNKNOWN_TYPE, f"unknown event type {type_name!r}", "type")
    if version != schema.cls.VERSION:
        raise DecodeError(
            Reason.UNSUPPORTED_VERSION,
            f"{type_name} version {version} is not supported (known: {schema.cls.VERSION})",
            "version",
        )
    occurred_at = document_field(document, "occurred_at", decode_datetime)
    producer = document_field(document, "producer", decode_str)
    correlation_id = document_field(document, "correlation_id", decode_str)
    causation_id = document_field(document, "causation_id", decode_optional_str)
    event = document_field(document, "payload", schema.decode)
    try:
        return Envelope(message_id, occurred_at, producer, correlation_id, causation_id, event)
    except ValidationError as error:
        raise DecodeError(Reason.INVALID_VALUE, error.message, error.field) from None


def to_message(envelope: Envelope, *, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    """The envelope as a transport message: JSON body, ids, content type and event type header."""
    return Message(
        body=encode(envelope, max_size=max_size),
        headers={EVENT_TYPE_HEADER: envelope.type, EVENT_VERSION_HEADER: envelope.version},
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        content_type=CONTENT_TYPE,
    )


def decode_message(message: Message, *, max_size: int = DEFAULT_MAX_SIZE) -> Envelope:
    """The envelope in a transport message (a `transports.Decoder`); DecodeError if there is none."""
    if message.content_type is not None and message.content_type != CONTENT_TYPE:
        raise DecodeError(
            Reason.WRONG_CONTENT_TYPE, f"content type {message.content_type!r}, expected {CONTENT_TYPE!r}"
        )
    return decode(message.body, max_size=max_size)


def message_decoder(*, max_size: int = DEFAULT_MAX_SIZE) -> Callable[[Message], Envelope]:
    """A `transports.Decoder` that decodes with a body limit of `max_size` bytes."""

    def decode_with_limit(message: Message) -> Envelope:
        return decode_message(message, max_size=max_size)

    return decode_with_limit
