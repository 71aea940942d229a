"""The events: their names, their shapes, and the values their validators refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given

from marketplace.events import (
    EVENT_TYPES,
    MAX_SELLERS_PER_REQUEST,
    REGISTRY,
    Event,
    OfferSent,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderExtensionDecided,
    OrderExtensionRequested,
    OrderPlaced,
    PasswordChanged,
    PasswordResetRequested,
    ReviewAdded,
    ReviewKind,
    SellersProvided,
    SellersRequested,
    SellerSummary,
    UserRegistered,
    VerificationEmailRequested,
    VerificationReason,
    wire_name,
)
from marketplace.validation import ValidationError
from tests.strategies import events

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
ORDER = OrderPlaced(
    order_id="o1",
    gig_id="g1",
    gig_title="A logo in a day",
    buyer_id="buyer-1",
    buyer_username="bob",
    buyer_email="bob@example.com",
    seller_id="seller-1",
    seller_username="sue",
    seller_email="sue@example.com",
    price_cents=4000,
    service_fee_cents=420,
    total_cents=4420,
    seller_earnings_cents=3200,
    placed_at=NOW,
    due_at=NOW + timedelta(days=3),
)
VERIFICATION = VerificationEmailRequested(
    user_id="u1",
    username="bob",
    email="bob@example.com",
    verify_link="https://app.example.com/verify?token=abc",
    reason=VerificationReason.SIGN_UP,
)
OFFER = OfferSent(
    offer_id="of1",
    conversation_id="c1",
    gig_id="g1",
    gig_title="A logo in a day",
    seller_id="seller-1",
    seller_username="sue",
    buyer_id="buyer-1",
    buyer_username="bob",
    buyer_email="bob@example.com",
    price_cents=9900,
    delivery_days=5,
    description="Three logo drafts",
    offer_link="https://app.example.com/offers/of1",
)
EXTENSION = OrderExtensionRequested(
    order_id="o1",
    gig_title="A logo in a day",
    buyer_id="buyer-1",
    buyer_username="bob",
    buyer_email="bob@example.com",
    seller_id="seller-1",
    seller_username="sue",
    original_due_at=NOW,
    requested_due_at=NOW + timedelta(days=2),
    reason="The client asked for a fourth draft",
)
USER = UserRegistered(
    user_id="u1",
    username="bob",
    email="bob@example.com",
    country="Chile",
    profile_picture_url=None,
    registered_at=NOW,
)
SELLERS = SellersProvided(request_id="q1", sellers=(SellerSummary("s1", "sue", "sue@example.com"),))

CATALOG_NAMES = {
    "UserRegistered",
    "VerificationEmailRequested",
    "PasswordResetRequested",
    "PasswordChanged",
    "SellersRequested",
    "SellersProvided",
    "GigReviewed",
    "GigCreated",
    "GigDeleted",
    "OfferSent",
    "OrderPlaced",
    "OrderDelivered",
    "OrderExtensionRequested",
    "OrderExtensionDecided",
    "OrderCompleted",
    "OrderCancelled",
    "ReviewAdded",
}


def refusal(event: Any, **changes: Any) -> ValidationError:
    """The error raised when `event` is rebuilt with `changes` (Any: mypy cannot evolve the Event base)."""
    with pytest.raises(ValidationError) as caught:
        attrs.evolve(event, **changes)
    return caught.value


# The registry


def test_the_registry_holds_exactly_the_events_of_the_catalog() -> None:
    assert set(REGISTRY) == CATALOG_NAMES
    assert set(REGISTRY.values()) == set(EVENT_TYPES)


def test_an_events_wire_name_is_its_class_name() -> None:
    for name, cls in REGISTRY.items():
        assert cls.__name__ == name
        assert wire_name(cls) == name
    assert wire_name(REVIEW) == "ReviewAdded"


def test_every_event_starts_at_version_one() -> None:
    assert {cls.VERSION for cls in EVENT_TYPES} == {1}


def test_every_event_says_in_one_line_what_happened() -> None:
    for cls in EVENT_TYPES:
        doc = cls.__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), cls.__name__


@given(events())
def test_events_are_frozen_and_hashable(event: Event) -> None:
    first = attrs.fields(type(event))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(event, first, "changed")
    assert hash(event) == hash(type(event)(**attrs.asdict(event, recurse=False)))


# What travels and what never does


FORBIDDEN_WORDS = ("password", "hash", "token", "secret", "salt", "otp")
SECRET_BEARING_LINKS = {(VerificationEmailRequested, "verify_link"), (PasswordResetRequested, "reset_link")}


def all_fields() -> list[tuple[type, str]]:
    classes: list[type] = [*EVENT_TYPES, SellerSummary]
    return [(cls, f.name) for cls in classes for f in attrs.fields(cls)]


def test_no_event_has_a_field_for_a_password_hash_or_token() -> None:
    offenders = [
        (cls.__name__, name) for cls, name in all_fields() if any(word in name for word in FORBIDDEN_WORDS)
    ]
    assert offenders == []


def test_the_only_links_are_the_two_single_use_ones_and_the_offer_link() -> None:
    links = {(cls, name) for cls, name in all_fields() if name.endswith("_link")}
    assert links == SECRET_BEARING_LINKS | {(OfferSent, "offer_link")}


EMAIL_RECIPIENTS = {
    VerificationEmailRequested: {"email"},
    PasswordResetRequested: {"email"},
    PasswordChanged: {"email"},
    OfferSent: {"buyer_email"},
    OrderPlaced: {"buyer_email", "seller_email"},
    OrderDelivered: {"buyer_email"},
    OrderExtensionRequested: {"buyer_email"},
    OrderExtensionDecided: {"seller_email"},
    OrderCompleted: {"seller_email"},
    OrderCancelled: {"buyer_email", "seller_email"},
}


@pytest.mark.parametrize("cls", EMAIL_RECIPIENTS, ids=lambda cls: cls.__name__)
def test_every_event_that_leads_to_an_email_carries_its_recipients_address_and_name(cls: type) -> None:
    names = {f.name for f in attrs.fields(cls)}
    for address in EMAIL_RECIPIENTS[cls]:
        assert address in names
        assert address.replace("email", "username") in names


@given(events())
def test_an_email_event_without_its_recipients_address_is_refused(event: Event) -> None:
    for address in EMAIL_RECIPIENTS.get(type(event), ()):
        assert refusal(event, **{address: ""}).field == address


# Validators: each refuses bad input and names the field


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "tab\there", "é", 123, None], ids=repr)
def test_an_id_must_be_one_to_128_visible_ascii_characters(bad: object) -> None:
    assert refusal(REVIEW, review_id=bad).field == "review_id"


def test_an_id_may_be_a_uuid_hex_or_any_visible_ascii() -> None:
    assert attrs.evolve(REVIEW, review_id="9f1c2b7e4a6d4f0e8b3c1d2e5f6a7b8c", order_id="ord:1/x_y-z")


@pytest.mark.parametrize("bad", ["", "   ", "bob\nsmith", "bob\x00", "x" * 201, 5, None], ids=repr)
def test_a_name_must_be_printable_and_not_blank(bad: object) -> None:
    assert refusal(ORDER, buyer_username=bad).field == "buyer_username"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "bob",
        "bob@",
        "@example.com",
        "bob@localhost",
        "bob@@example.com",
        "bob smith@example.com",
        "bob@example.123",
        "bob@-example.com",
        ".bob@example.com",
        "bo..b@example.com",
        "bób@example.com",
        "bob@example.com\n",
        "x" * 65 + "@example.com",
        "bob@" + "a" * 250 + ".com",
        None,
    ],
    ids=repr,
)
def test_an_email_address_must_be_well_formed(bad: object) -> None:
    assert refusal(ORDER, seller_email=bad).field == "seller_email"


@pytest.mark.parametrize(
    "good", ["bob@example.com", "bob.smith+gigs@mail.example.co.uk", "o'neil@xn--bcher-kva.example"]
)
def test_ordinary_email_addresses_are_accepted(good: str) -> None:
    assert attrs.evolve(ORDER, seller_email=good).seller_email == good


@pytest.mark.parametrize("bad", [-1, True, False, 1.5, "100", None], ids=repr)
def test_money_must_be_a_non_negative_integer_number_of_cents(bad: object) -> None:
    assert refusal(OFFER, price_cents=bad).field == "price_cents"


def test_zero_cents_is_a_price() -> None:
    assert attrs.evolve(OFFER, price_cents=0).price_cents == 0


@pytest.mark.parametrize("bad", [0, 6, -1, True, 4.0, "5", None], ids=repr)
def test_a_rating_must_be_an_integer_from_one_to_five(bad: object) -> None:
    assert refusal(REVIEW, rating=bad).field == "rating"


@pytest.mark.parametrize(
    "bad",
    [
        datetime(2024, 5, 1, 12, 0),
        datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        "2024-05-01T12:00:00Z",
        1714564800,
    ],
    ids=repr,
)
def test_a_timestamp_must_be_a_timezone_aware_utc_datetime(bad: object) -> None:
    assert refusal(REVIEW, created_at=bad).field == "created_at"


def test_an_enum_field_takes_a_member_not_its_plain_value() -> None:
    assert refusal(REVIEW, kind="buyer").field == "kind"
    assert refusal(VERIFICATION, reason="welcome").field == "reason"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "app.example.com/verify",
        "ftp://app.example.com/verify",
        "javascript:alert(1)",
        "https://",
        "https://app.example.com/ver ify",
        "https://app.example.com/\n",
        "https://app.exämple.com/verify",
        "https://app.example.com/" + "x" * 2048,
        None,
    ],
    ids=repr,
)
def test_a_link_must_be_an_absolute_http_url(bad: object) -> None:
    assert refusal(VERIFICATION, verify_link=bad).field == "verify_link"


def test_an_optional_link_may_be_absent_but_not_malformed() -> None:
    assert attrs.evolve(USER, profile_picture_url=None).profile_picture_url is None
    assert refusal(USER, profile_picture_url="not a url").field == "profile_picture_url"


def test_free_text_may_span_lines_but_required_text_must_not_be_blank() -> None:
    assert attrs.evolve(OFFER, description="Line one\nLine two").description == "Line one\nLine two"
    assert refusal(OFFER, description=" \n ").field == "description"
    assert refusal(OFFER, description="x" * 5001).field == "description"
    assert attrs.evolve(REVIEW, comment="").comment == ""


def test_text_with_a_lone_surrogate_is_refused_because_it_cannot_be_sent_as_utf8() -> None:
    assert refusal(REVIEW, comment="broken \ud800 text").field == "comment"


def test_delivery_days_and_seller_counts_are_bounded() -> None:
    assert refusal(OFFER, delivery_days=0).field == "delivery_days"
    assert refusal(OFFER, delivery_days=366).field == "delivery_days"
    assert refusal(SellersRequested("q1", 1), count=0).field == "count"
    assert refusal(SellersRequested("q1", 1), count=MAX_SELLERS_PER_REQUEST + 1).field == "count"


def test_sellers_provided_holds_a_tuple_of_seller_summaries() -> None:
    assert refusal(SELLERS, sellers=list(SELLERS.sellers)).field == "sellers"
    assert refusal(SELLERS, sellers=({"seller_id": "s1"},)).field == "sellers"
    assert refusal(SELLERS, sellers=SELLERS.sellers * (MAX_SELLERS_PER_REQUEST + 1)).field == "sellers"
    assert attrs.evolve(SELLERS, sellers=()).sellers == ()


def test_a_seller_summary_validates_its_own_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        SellerSummary("s1", "sue", "not-an-address")
    assert caught.value.field == "email"


# Rules between fields


def test_an_orders_total_is_its_price_plus_the_service_fee() -> None:
    assert refusal(ORDER, total_cents=4000).field == "total_cents"


def test_a_seller_never_earns_more_than_the_price() -> None:
    assert refusal(ORDER, seller_earnings_cents=4001).field == "seller_earnings_cents"
    assert attrs.evolve(ORDER, seller_earnings_cents=4000).seller_earnings_cents == 4000


def test_an_extension_moves_the_due_date_forward() -> None:
    assert refusal(EXTENSION, requested_due_at=NOW).field == "requested_due_at"
    assert refusal(EXTENSION, requested_due_at=NOW - timedelta(days=1)).field == "requested_due_at"


def test_an_extension_decision_is_checked_the_same_way() -> None:
    with pytest.raises(ValidationError) as caught:
        OrderExtensionDecided(
            order_id="o1",
            gig_title="A logo in a day",
            buyer_id="buyer-1",
            buyer_username="bob",
            seller_id="seller-1",
            seller_username="sue",
            seller_email="sue@example.com",
            decision="approved",  # type: ignore[arg-type]
            original_due_at=NOW,
            requested_due_at=NOW + timedelta(days=1),
        )
    assert caught.value.field == "decision"


def test_the_error_message_names_the_field_and_the_rule() -> None:
    error = refusal(REVIEW, rating=9)
    assert str(error) == "rating: 9 is not between 1 and 5"
