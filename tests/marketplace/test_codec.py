"""The codec: envelopes to JSON bytes and back, and every way a body can be refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from attrs import field, frozen
from hypothesis import given

from marketplace import codec, validation
from marketplace.codec import (
    CONTENT_TYPE,
    DEFAULT_MAX_SIZE,
    EVENT_TYPE_HEADER,
    EVENT_VERSION_HEADER,
    DecodeError,
    EncodeError,
    Envelope,
    Reason,
    decode,
    decode_message,
    encode,
    message_decoder,
    to_message,
)
from marketplace.events import (
    MAX_SELLERS_PER_REQUEST,
    REGISTRY,
    Event,
    GigReviewed,
    ReviewAdded,
    ReviewKind,
    SellersProvided,
    SellerSummary,
)
from tests.strategies import EVENT_STRATEGIES, envelopes
from transports import Decoder, Message

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REVIEW = ReviewAdded(
    review_id="r1",
    order_id="o1",
    gig_id="g1",
    reviewer_id="buyer-1",
    reviewee_id="seller-1",
    kind=ReviewKind.BUYER,
    rating=5,
    comment="Great work",
    created_at=NOW,
)
ENVELOPE = Envelope.start(REVIEW, producer="review", message_id="m1", occurred_at=NOW, correlation_id="req-1")
SELLERS = Envelope.start(
    SellersProvided(
        request_id="q1",
        sellers=(
            SellerSummary("s1", "sue", "sue@example.com"),
            SellerSummary("s2", "sam", "sam@example.com"),
        ),
    ),
    producer="users",
    message_id="m2",
    occurred_at=NOW,
)


def document(envelope: Envelope = ENVELOPE) -> dict[str, Any]:
    """The envelope as the JSON object on the wire, to be tampered with."""
    loaded: dict[str, Any] = json.loads(encode(envelope))
    return loaded


def refusal(body: bytes | dict[str, Any], **options: Any) -> DecodeError:
    """The error raised when decoding `body` (a dict is serialized first)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    with pytest.raises(DecodeError) as caught:
        decode(data, **options)
    return caught.value


# Round trips


def test_there_is_a_strategy_for_every_registered_event() -> None:
    assert set(EVENT_STRATEGIES) == set(REGISTRY.values())


@pytest.mark.parametrize("cls", list(REGISTRY.values()), ids=lambda cls: cls.__name__)
def test_every_event_survives_a_round_trip(cls: type[Event]) -> None:
    @given(envelopes(EVENT_STRATEGIES[cls]()))
    def round_trip(envelope: Envelope) -> None:
        assert decode(encode(envelope)) == envelope

    round_trip()


@given(envelopes())
def test_decoding_then_encoding_gives_back_the_same_bytes(envelope: Envelope) -> None:
    body = encode(envelope)
    assert encode(decode(body)) == body


def test_the_wire_format_is_compact_json_with_the_envelope_around_the_payload() -> None:
    assert encode(ENVELOPE) == (
        b'{"message_id":"m1","type":"ReviewAdded","version":1,"occurred_at":"2024-05-01T12:00:00Z",'
        b'"producer":"review","correlation_id":"req-1","causation_id":null,'
        b'"payload":{"review_id":"r1","order_id":"o1","gig_id":"g1","reviewer_id":"buyer-1",'
        b'"reviewee_id":"seller-1","kind":"buyer","rating":5,"comment":"Great work",'
        b'"created_at":"2024-05-01T12:00:00Z"}}'
    )


def test_non_ascii_text_travels_as_utf8() -> None:
    envelope = attrs.evolve(ENVELOPE, event=attrs.evolve(REVIEW, comment="¡Excelente! 🎉"))
    body = encode(envelope)
    assert "¡Excelente! 🎉".encode() in body
    assert decode(body) == envelope


def test_nested_values_travel_as_arrays_of_objects() -> None:
    sellers = document(SELLERS)["payload"]["sellers"]
    assert sellers == [
        {"seller_id": "s1", "username": "sue", "email": "sue@example.com"},
        {"seller_id": "s2", "username": "sam", "email": "sam@example.com"},
    ]
    assert decode(encode(SELLERS)) == SELLERS


# Timestamps


def test_timestamps_are_written_in_utc_with_a_z_and_microseconds_when_there_are_some() -> None:
    later = NOW + timedelta(microseconds=250_000)
    wire = document(attrs.evolve(ENVELOPE, occurred_at=later))
    assert wire["occurred_at"] == "2024-05-01T12:00:00.250000Z"
    assert wire["payload"]["created_at"] == "2024-05-01T12:00:00Z"


def test_a_timestamp_with_another_offset_is_read_as_the_same_instant_in_utc() -> None:
    wire = document()
    wire["occurred_at"] = "2024-05-01T14:00:00+02:00"
    wire["payload"]["created_at"] = "2024-05-01T12:00:00+00:00"
    decoded = decode(json.dumps(wire).encode())
    assert decoded.occurred_at == NOW
    assert decoded.occurred_at.tzinfo is UTC
    assert decoded == ENVELOPE


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-05-01T12:00:00", Reason.INVALID_VALUE),
        ("2024-05-01", Reason.INVALID_VALUE),
        ("yesterday", Reason.INVALID_VALUE),
        ("0001-01-01T00:00:00+01:00", Reason.INVALID_VALUE),
        (1714564800, Reason.WRONG_TYPE),
        (None, Reason.WRONG_TYPE),
    ],
    ids=repr,
)
def test_a_timestamp_without_offset_or_out_of_range_is_refused(value: object, reason: Reason) -> None:
    wire = document()
    wire["payload"]["created_at"] = value
    error = refusal(wire)
    assert (error.reason, error.field) == (reason, "payload.created_at")


# Bodies that are not envelopes at all


def test_a_body_that_is_not_utf8_is_refused() -> None:
    assert refusal(b'{"type": "\xff\xfe"}').reason == Reason.INVALID_UTF8


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"type": }', b"{'single': 'quotes'}", b"\xef\xbb\xbf{}", b"[" * 50_000, b"1" * 5000],
    ids=["empty", "truncated", "bad value", "single quotes", "BOM", "deeply nested", "huge number"],
)
def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    assert refusal(body).reason == Reason.INVALID_JSON


@pytest.mark.parametrize("body", [b"[]", b'"envelope"', b"null", b"42", b"true"])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    assert refusal(body).reason == Reason.NOT_AN_OBJECT


# The envelope's fields


ENVELOPE_FIELDS = [
    "message_id",
    "type",
    "version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "payload",
]


@pytest.mark.parametrize("name", ENVELOPE_FIELDS)
def test_an_envelope_missing_a_field_is_refused_naming_it(name: str) -> None:
    wire = document()
    del wire[name]
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.MISSING_FIELD, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("message_id", 1),
        ("type", ["ReviewAdded"]),
        ("version", "1"),
        ("version", True),
        ("version", 1.0),
        ("occurred_at", 0),
        ("producer", None),
        ("correlation_id", {}),
        ("causation_id", 7),
        ("payload", ["r1"]),
        ("payload", None),
    ],
    ids=repr,
)
def test_an_envelope_field_of_the_wrong_type_is_refused_naming_it(name: str, value: object) -> None:
    wire = document()
    wire[name] = value
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.WRONG_TYPE, name)


@pytest.mark.parametrize(
    ("name", "value"),
    [("message_id", ""), ("producer", "review service"), ("correlation_id", "x" * 129), ("causation_id", "")],
    ids=repr,
)
def test_an_envelope_field_that_fails_its_validator_is_refused_naming_it(name: str, value: object) -> None:
    wire = document()
    wire[name] = value
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.INVALID_VALUE, name)


def test_an_unknown_event_type_is_refused() -> None:
    wire = document()
    wire["type"] = "OrderShipped"
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.UNKNOWN_TYPE, "type")


@pytest.mark.parametrize("version", [0, 2, 99])
def test_a_version_the_consumer_does_not_know_is_refused(version: int) -> None:
    wire = document()
    wire["version"] = version
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.UNSUPPORTED_VERSION, "version")


# The payload's fields


@pytest.mark.parametrize("name", [f.name for f in attrs.fields(ReviewAdded)])
def test_a_payload_missing_a_field_is_refused_naming_it(name: str) -> None:
    wire = document()
    del wire["payload"][name]
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.MISSING_FIELD, f"payload.{name}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("review_id", 1),
        ("rating", "5"),
        ("rating", True),
        ("rating", 5.0),
        ("rating", None),
        ("kind", 1),
        ("comment", None),
        ("comment", ["Great"]),
        ("created_at", {"iso": "2024-05-01T12:00:00Z"}),
    ],
    ids=repr,
)
def test_a_payload_field_of_the_wrong_type_is_refused_naming_it(name: str, value: object) -> None:
    wire = document()
    wire["payload"][name] = value
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.WRONG_TYPE, f"payload.{name}")


@pytest.mark.parametrize(
    ("name", "value"),
    [("review_id", ""), ("rating", 6), ("rating", 0), ("kind", "admin"), ("comment", "x" * 5001)],
    ids=repr,
)
def test_a_payload_field_that_fails_its_validator_is_refused_naming_it(name: str, value: object) -> None:
    wire = document()
    wire["payload"][name] = value
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.INVALID_VALUE, f"payload.{name}")


def test_a_lone_surrogate_escape_is_refused_rather_than_passed_on() -> None:
    body = encode(ENVELOPE).replace(b"Great work", b"Great \\ud800 work")
    error = refusal(body)
    assert (error.reason, error.field) == (Reason.INVALID_VALUE, "payload.comment")


@pytest.mark.parametrize(
    ("change", "reason", "field_name"),
    [
        (lambda sellers: sellers[1].update(email="sam"), Reason.INVALID_VALUE, "payload.sellers[1].email"),
        (lambda sellers: sellers[0].pop("username"), Reason.MISSING_FIELD, "payload.sellers[0].username"),
        (lambda sellers: sellers.__setitem__(0, "s1"), Reason.WRONG_TYPE, "payload.sellers[0]"),
    ],
    ids=["invalid email", "missing username", "not an object"],
)
def test_a_bad_nested_value_is_refused_with_its_path(change: Any, reason: Reason, field_name: str) -> None:
    wire = document(SELLERS)
    change(wire["payload"]["sellers"])
    error = refusal(wire)
    assert (error.reason, error.field) == (reason, field_name)


def test_a_nested_list_must_be_an_array() -> None:
    wire = document(SELLERS)
    wire["payload"]["sellers"] = {"0": wire["payload"]["sellers"][0]}
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.WRONG_TYPE, "payload.sellers")


def test_a_rule_between_fields_is_reported_on_the_field_it_constrains() -> None:
    wire = json.loads(
        b'{"message_id":"m3","type":"OrderPlaced","version":1,"occurred_at":"2024-05-01T12:00:00Z",'
        b'"producer":"order","correlation_id":"m3","causation_id":null,"payload":{"order_id":"o1",'
        b'"gig_id":"g1","gig_title":"Logo","buyer_id":"b1","buyer_username":"bob",'
        b'"buyer_email":"bob@example.com","seller_id":"s1","seller_username":"sue",'
        b'"seller_email":"sue@example.com","price_cents":4000,"service_fee_cents":420,'
        b'"total_cents":4420,"seller_earnings_cents":3200,"placed_at":"2024-05-01T12:00:00Z",'
        b'"due_at":"2024-05-04T12:00:00Z"}}'
    )
    assert decode(json.dumps(wire).encode()).event.total_cents == 4420  # type: ignore[attr-defined]
    wire["payload"]["total_cents"] = 4000
    error = refusal(wire)
    assert (error.reason, error.field) == (Reason.INVALID_VALUE, "payload.total_cents")


def test_a_decode_error_says_what_and_where() -> None:
    wire = document()
    wire["payload"]["rating"] = 6
    assert str(refusal(wire)) == "invalid-value: payload.rating: 6 is not between 1 and 5"


# Unknown fields: tolerated and ignored within a version


def test_unknown_fields_in_the_envelope_and_the_payload_are_ignored() -> None:
    wire = document()
    wire["priority"] = "high"
    wire["payload"]["reviewer_country"] = "Chile"
    assert decode(json.dumps(wire).encode()) == ENVELOPE


def test_a_field_added_with_a_default_may_be_absent_so_older_producers_still_decode() -> None:
    @frozen
    class Rated:
        gig_id: str = field(validator=validation.identifier)
        rating: int = field(validator=validation.rating)
        weight: int = field(default=1, validator=validation.rating)

    rated = codec.Schema(Rated)  # the mechanism the policy relies on; no event has such a field yet
    assert rated.decode({"gig_id": "g1", "rating": 4}) == Rated("g1", 4, 1)
    assert rated.decode({"gig_id": "g1", "rating": 4, "weight": 2}) == Rated("g1", 4, 2)


# The size limit


def test_a_body_over_the_limit_is_refused_before_it_is_parsed() -> None:
    error = refusal(b"{" * (DEFAULT_MAX_SIZE + 1))
    assert error.reason == Reason.TOO_LARGE


def test_the_limit_is_configurable_and_a_body_at_the_limit_is_accepted() -> None:
    body = encode(ENVELOPE)
    assert decode(body, max_size=len(body)) == ENVELOPE
    assert refusal(body, max_size=len(body) - 1).reason == Reason.TOO_LARGE


def test_an_envelope_too_large_to_send_is_refused_by_its_producer() -> None:
    with pytest.raises(EncodeError):
        encode(ENVELOPE, max_size=100)


def test_the_largest_events_fit_in_the_default_limit() -> None:
    widest = "𝄞" * 5000  # 4 bytes each in UTF-8
    longest_name = "𝄞" * 200
    longest_email = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 50, "com"])
    review = attrs.evolve(REVIEW, comment=widest, review_id="r" * 128, order_id="o" * 128)
    seller = SellerSummary("s" * 128, longest_name, longest_email)
    many = SellersProvided(request_id="q" * 128, sellers=(seller,) * MAX_SELLERS_PER_REQUEST)
    for event in (review, many):
        assert decode(encode(attrs.evolve(ENVELOPE, event=event))).event == event


# Envelopes


def test_the_first_message_of_a_flow_is_its_own_correlation_and_has_no_cause() -> None:
    first = Envelope.start(REVIEW, producer="review", message_id="m1", occurred_at=NOW)
    assert (first.correlation_id, first.causation_id) == ("m1", None)
    assert (first.type, first.version) == ("ReviewAdded", 1)


def test_a_message_caused_by_another_keeps_the_correlation_and_names_its_cause() -> None:
    forwarded = GigReviewed(review_id="r1", gig_id="g1", rating=5)
    next_one = Envelope.caused_by(ENVELOPE, forwarded, producer="users", message_id="m9", occurred_at=NOW)
    assert (next_one.correlation_id, next_one.causation_id) == ("req-1", "m1")


def test_an_envelope_holds_only_registered_events() -> None:
    summary: Any = SellerSummary("s1", "sue", "sue@example.com")
    with pytest.raises(ValueError, match="event"):
        Envelope.start(summary, producer="users", message_id="m1", occurred_at=NOW)


# Transport messages


def test_an_envelope_becomes_a_transport_message_with_its_ids_type_and_content_type() -> None:
    message = to_message(ENVELOPE)
    assert message.body == encode(ENVELOPE)
    assert (message.message_id, message.correlation_id) == ("m1", "req-1")
    assert message.content_type == CONTENT_TYPE == "application/json"
    assert message.headers == {EVENT_TYPE_HEADER: "ReviewAdded", EVENT_VERSION_HEADER: 1}


def test_a_transport_message_decodes_back_to_the_envelope() -> None:
    decoder: Decoder = decode_message
    assert decoder(to_message(ENVELOPE)) == ENVELOPE
    assert decode_message(Message(encode(ENVELOPE))) == ENVELOPE  # content type absent: the body decides


def test_a_transport_message_of_another_content_type_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_message(Message(encode(ENVELOPE), content_type="text/plain"))
    assert caught.value.reason == Reason.WRONG_CONTENT_TYPE


def test_a_message_decoder_applies_its_own_size_limit() -> None:
    decoder: Decoder = message_decoder(max_size=100)
    with pytest.raises(DecodeError) as caught:
        decoder(to_message(ENVELOPE))
    assert caught.value.reason == Reason.TOO_LARGE


# Building blocks for other documents (the gateway's requests and replies)


def test_a_document_field_is_converted_or_refused_naming_it() -> None:
    loaded = codec.load(
        b'{"sent_at": "2024-05-01T12:00:00Z", "seller": {"seller_id": "s1", "username": "sue"}}'
    )
    assert codec.document_field(loaded, "sent_at", codec.decode_datetime) == NOW
    schema = codec.Schema(SellerSummary)
    with pytest.raises(DecodeError) as caught:
        codec.document_field(loaded, "seller", schema.decode, path="payload.seller")
    assert (caught.value.reason, caught.value.field) == (Reason.MISSING_FIELD, "payload.seller.email")
    with pytest.raises(DecodeError) as caught:
        codec.document_field(loaded, "actor_id", codec.decode_optional_str)
    assert (caught.value.reason, caught.value.field) == (Reason.MISSING_FIELD, "actor_id")


def test_dump_writes_compact_utf8_under_the_size_limit() -> None:
    assert codec.dump({"a": "ñ", "b": [1, None]}) == '{"a":"ñ","b":[1,null]}'.encode()
    with pytest.raises(EncodeError):
        codec.dump({"a": "x" * 100}, max_size=50)


def test_a_schema_refuses_a_class_with_a_field_type_it_cannot_convert() -> None:
    @frozen
    class Measured:
        weight: float

    with pytest.raises(TypeError, match="float"):
        codec.Schema(Measured)
