"""Commands, queries and replies of the users service: profiles of buyers and sellers, and their figures.

Who may ask what: `GetUser` gives the internal facts of a user (address
included) to any caller, because the gateway gathers them for other
services' commands; `GetSeller` is a public profile without the address;
`GetBuyer` answers only the buyer themself; `BecomeSeller` and
`UpdateSeller` act on the signed-in user.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from attrs import Attribute, field, frozen

from ..validation import (
    MAX_RATING,
    ValidationError,
    Validator,
    cents,
    email,
    identifier,
    link,
    member_of,
    name,
    optional,
    text,
    tuple_of,
    utc_datetime,
)
from . import Command, Query, Reply

MAX_SKILLS = 20
MAX_LANGUAGES = 10
MAX_LABEL_LENGTH = 50
"""The longest skill or language."""
MAX_SELLER_DESCRIPTION = 2000


class SellerStatus(StrEnum):
    """Whether a user sells: every user is a buyer, some also became sellers."""

    BUYER = "buyer"
    SELLER = "seller"


def _labels(max_items: int) -> Validator:
    """A tuple of at most `max_items` distinct short names (skills, languages)."""
    shape = tuple_of(str, max_length=max_items)

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        shape(instance, attribute, value)
        assert isinstance(value, tuple)
        for item in value:
            name(instance, attribute, item)
            if len(item) > MAX_LABEL_LENGTH:
                raise ValidationError(
                    attribute.name, f"{item!r} is longer than {MAX_LABEL_LENGTH} characters"
                )
        if len({item.casefold() for item in value}) != len(value):
            raise ValidationError(attribute.name, "contains the same item twice")

    return validate


def _non_negative_counts(size: int) -> Validator:
    """A tuple of exactly `size` non-negative integers."""

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if type(value) is not tuple or len(value) != size:
            raise ValidationError(attribute.name, f"expected a tuple of {size} counts")
        for item in value:
            cents(instance, attribute, item)

    return validate


def _id_set(instance: object, attribute: Attribute[Any], value: object) -> None:
    """A frozenset of ids."""
    if type(value) is not frozenset:
        raise ValidationError(attribute.name, f"expected a frozenset, got {type(value).__name__}")
    for item in value:
        identifier(instance, attribute, item)


# Commands.


@frozen
class BecomeSeller(Command):
    """The signed-in user (a registered buyer) becomes a seller with this public profile."""

    full_name: str = field(validator=name)
    description: str = field(validator=text(max_length=MAX_SELLER_DESCRIPTION))
    skills: tuple[str, ...] = field(default=(), validator=_labels(MAX_SKILLS))
    languages: tuple[str, ...] = field(default=(), validator=_labels(MAX_LANGUAGES))


@frozen
class UpdateSeller(Command):
    """The signed-in seller changes the fields given (None keeps a field as it is)."""

    full_name: str | None = field(default=None, validator=optional(name))
    description: str | None = field(default=None, validator=optional(text(max_length=MAX_SELLER_DESCRIPTION)))
    skills: tuple[str, ...] | None = field(default=None, validator=optional(_labels(MAX_SKILLS)))
    languages: tuple[str, ...] | None = field(default=None, validator=optional(_labels(MAX_LANGUAGES)))


# Queries.


@frozen
class GetUser(Query):
    """The internal facts of a user (name, address, whether a seller); any caller."""

    user_id: str = field(validator=identifier)


@frozen
class GetSeller(Query):
    """A seller's public profile with its figures; any caller."""

    seller_id: str = field(validator=identifier)


@frozen
class GetBuyer(Query):
    """A buyer's own profile with the gigs they bought; only the buyer themself."""

    buyer_id: str = field(validator=identifier)


# Replies.


@frozen
class UserView(Reply):
    """What the users service knows of a user, for the gateway to put into other commands."""

    user_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)
    country: str = field(validator=name)
    profile_picture_url: str | None = field(validator=optional(link))
    status: SellerStatus = field(validator=member_of(SellerStatus))
    registered_at: datetime = field(validator=utc_datetime)


@frozen
class SellerView(Reply):
    """A seller's public profile and figures.

    `rating_categories[i]` counts the ratings of `i + 1` stars. `ongoing_jobs`
    and `total_gigs` never show below zero, although a completion arriving
    before its placement makes the stored count briefly negative.
    """

    seller_id: str = field(validator=identifier)
    username: str = field(validator=name)
    country: str = field(validator=name)
    profile_picture_url: str | None = field(validator=optional(link))
    full_name: str = field(validator=name)
    description: str = field(validator=text(max_length=MAX_SELLER_DESCRIPTION))
    skills: tuple[str, ...] = field(validator=_labels(MAX_SKILLS))
    languages: tuple[str, ...] = field(validator=_labels(MAX_LANGUAGES))
    became_seller_at: datetime = field(validator=utc_datetime)
    ongoing_jobs: int = field(validator=cents)
    completed_jobs: int = field(validator=cents)
    cancelled_jobs: int = field(validator=cents)
    total_earnings_cents: int = field(validator=cents)
    total_gigs: int = field(validator=cents)
    ratings_count: int = field(validator=cents)
    ratings_sum: int = field(validator=cents)
    rating_categories: tuple[int, ...] = field(validator=_non_negative_counts(MAX_RATING))
    recent_delivery: datetime | None = field(validator=optional(utc_datetime))


@frozen
class BuyerView(Reply):
    """A buyer's own profile: address, the gigs bought, the ratings sellers gave them."""

    buyer_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)
    country: str = field(validator=name)
    profile_picture_url: str | None = field(validator=optional(link))
    status: SellerStatus = field(validator=member_of(SellerStatus))
    registered_at: datetime = field(validator=utc_datetime)
    purchased_gigs: frozenset[str] = field(validator=_id_set)
    ratings_count: int = field(validator=cents)
    ratings_sum: int = field(validator=cents)
