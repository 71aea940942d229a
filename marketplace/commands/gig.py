"""Commands, queries and replies of the gig service: sellers' offers of work, searched by buyers.

Who may do what: only a gig's seller changes it (create, update, pause,
resume, delete); anyone may search and read gigs, but a deleted gig is
visible only to its seller, and a paused one is listed only to its seller
(it can still be read by id, its status saying it is paused). The gateway
checks that the creator of a gig is a seller and puts the seller's username
into `CreateGig`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from attrs import Attribute, field, frozen

from ..events import MAX_DELIVERY_DAYS, MAX_SELLERS_PER_REQUEST
from ..validation import (
    MAX_RATING,
    ValidationError,
    Validator,
    cents,
    identifier,
    int_between,
    member_of,
    name,
    optional,
    text,
    tuple_of,
    utc_datetime,
)
from . import Command, Query, Reply

MIN_PRICE_CENTS = 500
MAX_PRICE_CENTS = 10_000_000
MAX_TAGS = 5
MAX_TAG_LENGTH = 30
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 20


class GigCategory(StrEnum):
    """The kinds of work a gig offers."""

    PROGRAMMING = "programming"
    DESIGN = "design"
    WRITING = "writing"
    MARKETING = "marketing"
    VIDEO = "video"
    MUSIC = "music"


class GigStatus(StrEnum):
    """A gig is active (found by search), paused by its seller, or deleted (kept for its history)."""

    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


def _tags(instance: object, attribute: Attribute[Any], value: object) -> None:
    """At most five distinct (case-insensitively) short names."""
    tuple_of(str, max_length=MAX_TAGS)(instance, attribute, value)
    assert isinstance(value, tuple)
    for tag in value:
        name(instance, attribute, tag)
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(attribute.name, f"{tag!r} is longer than {MAX_TAG_LENGTH} characters")
    if len({tag.casefold() for tag in value}) != len(value):
        raise ValidationError(attribute.name, "contains the same tag twice")


# A price from 5 to 100,000 dollars; a page from 1; at most 50 items a page.
_price = int_between(MIN_PRICE_CENTS, MAX_PRICE_CENTS)
_delivery_days = int_between(1, MAX_DELIVERY_DAYS)
_page = int_between(1, MAX_PAGE)
_page_size = int_between(1, MAX_PAGE_SIZE)


def _not_below_min_price(instance: Any, attribute: Attribute[Any], value: int | None) -> None:
    """A price range that is not empty."""
    low = instance.min_price_cents
    if value is not None and low is not None and value < low:
        raise ValidationError(attribute.name, "must not be below min_price_cents")


def _counts(instance: object, attribute: Attribute[Any], value: object) -> None:
    """One non-negative count per number of stars."""
    if type(value) is not tuple or len(value) != MAX_RATING:
        raise ValidationError(attribute.name, f"expected a tuple of {MAX_RATING} counts")
    for item in value:
        cents(instance, attribute, item)


_optional_name: Validator = optional(name)

# Commands.


@frozen
class CreateGig(Command):
    """The seller `seller_id` (who must be the signed-in user) offers a new gig."""

    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    title: str = field(validator=name)
    description: str = field(validator=text())
    category: GigCategory = field(validator=member_of(GigCategory))
    tags: tuple[str, ...] = field(validator=_tags)
    price_cents: int = field(validator=_price)
    delivery_days: int = field(validator=_delivery_days)


@frozen
class UpdateGig(Command):
    """The gig's seller changes the fields given (None keeps a field as it is)."""

    gig_id: str = field(validator=identifier)
    title: str | None = field(default=None, validator=_optional_name)
    description: str | None = field(default=None, validator=optional(text()))
    category: GigCategory | None = field(default=None, validator=optional(member_of(GigCategory)))
    tags: tuple[str, ...] | None = field(default=None, validator=optional(_tags))
    price_cents: int | None = field(default=None, validator=optional(_price))
    delivery_days: int | None = field(default=None, validator=optional(_delivery_days))


@frozen
class PauseGig(Command):
    """The gig's seller takes an active gig out of search for a while."""

    gig_id: str = field(validator=identifier)


@frozen
class ResumeGig(Command):
    """The gig's seller puts a paused gig back into search."""

    gig_id: str = field(validator=identifier)


@frozen
class DeleteGig(Command):
    """The gig's seller deletes it: gone from search and from the seller's count, kept for history."""

    gig_id: str = field(validator=identifier)


@frozen
class SeedGigs(Command):
    """Create demo gigs: one for each of up to `count` sellers that the users service provides."""

    count: int = field(validator=int_between(1, MAX_SELLERS_PER_REQUEST))


# Queries.


@frozen
class GetGig(Query):
    """One gig (a deleted one only for its seller)."""

    gig_id: str = field(validator=identifier)


@frozen
class SearchGigs(Query):
    """Active gigs matching every criterion given; `text` matches if all its words are in a gig's text."""

    text: str | None = field(default=None, validator=_optional_name)
    category: GigCategory | None = field(default=None, validator=optional(member_of(GigCategory)))
    min_price_cents: int | None = field(default=None, validator=optional(cents))
    max_price_cents: int | None = field(default=None, validator=[optional(cents), _not_below_min_price])
    max_delivery_days: int | None = field(default=None, validator=optional(_delivery_days))
    page: int = field(default=1, validator=_page)
    page_size: int = field(default=DEFAULT_PAGE_SIZE, validator=_page_size)


@frozen
class ListSellerGigs(Query):
    """A seller's gigs: active and paused ones for the seller themself, active ones for others."""

    seller_id: str = field(validator=identifier)
    page: int = field(default=1, validator=_page)
    page_size: int = field(default=MAX_PAGE_SIZE, validator=_page_size)


# Replies.


@frozen
class GigView(Reply):
    """A gig as its readers see it; `rating_categories[i]` counts the ratings of `i + 1` stars."""

    gig_id: str = field(validator=identifier)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    title: str = field(validator=name)
    description: str = field(validator=text())
    category: GigCategory = field(validator=member_of(GigCategory))
    tags: tuple[str, ...] = field(validator=_tags)
    price_cents: int = field(validator=_price)
    delivery_days: int = field(validator=_delivery_days)
    status: GigStatus = field(validator=member_of(GigStatus))
    ratings_count: int = field(validator=cents)
    ratings_sum: int = field(validator=cents)
    rating_categories: tuple[int, ...] = field(validator=_counts)
    created_at: datetime = field(validator=utc_datetime)


@frozen
class GigPage(Reply):
    """One page of gigs, and how many there are on all pages together."""

    items: tuple[GigView, ...] = field(validator=tuple_of(GigView, max_length=MAX_PAGE_SIZE))
    total: int = field(validator=cents)
    page: int = field(validator=_page)
    page_size: int = field(validator=_page_size)
