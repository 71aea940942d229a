"""Commands, queries and replies of the chat service: conversations, messages and custom offers.

A conversation is between a buyer (who starts it) and a seller, possibly
about one gig. Its timeline is a list of messages; a custom offer the seller
sends is a message carrying that offer, so that a page of the timeline shows
offers where they were made. Only the conversation's two parties see it or
write in it; to anyone else it does not exist (`not-found`). The gateway
gathers the facts other services own (names, addresses, the gig's title)
before sending a command.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from attrs import Attribute, field, frozen

from ..events import MAX_DELIVERY_DAYS
from ..pricing import MAX_PRICE_CENTS
from ..validation import (
    ValidationError,
    Validator,
    cents,
    email,
    identifier,
    int_between,
    member_of,
    name,
    optional,
    plain_text,
    tuple_of,
    utc_datetime,
)
from ..validation import text as free_text
from . import Command, Query, Reply

MAX_MESSAGE_LENGTH = 1000
MAX_OFFER_DESCRIPTION = 2000
MESSAGES_PER_PAGE = 5
"""Messages in one page of a conversation: a page of the longest offers fits the codec's body limit."""
CONVERSATIONS_PER_PAGE = 20
MAX_PAGE = 10_000


class OfferStatus(StrEnum):
    """Where a custom offer stands: the buyer accepts or declines it, once."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


def _optional_instance_of(cls: type) -> Validator:
    """None, or an instance of `cls` (a nested value of a reply)."""

    def validate(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            got = type(value).__name__
            raise ValidationError(attribute.name, f"expected a {cls.__name__} or None, got {got}")

    return validate


# Commands.


@frozen
class StartConversation(Command):
    """The signed-in buyer opens a conversation with a seller, possibly about one of their gigs.

    A buyer has one conversation per seller and gig: starting it again returns
    the one that exists.
    """

    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    buyer_username: str = field(validator=name)
    gig_id: str | None = field(default=None, validator=optional(identifier))


@frozen
class SendMessage(Command):
    """One of the conversation's parties writes in it."""

    conversation_id: str = field(validator=identifier)
    text: str = field(validator=plain_text(max_length=MAX_MESSAGE_LENGTH))


@frozen
class SendOffer(Command):
    """The conversation's seller offers the buyer custom terms for a gig; the buyer is e-mailed."""

    conversation_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    price_cents: int = field(validator=int_between(1, MAX_PRICE_CENTS))
    delivery_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    description: str = field(validator=plain_text(max_length=MAX_OFFER_DESCRIPTION))
    buyer_email: str = field(validator=email)
    buyer_username: str = field(validator=name)
    seller_username: str = field(validator=name)


@frozen
class AcceptOffer(Command):
    """The offer's buyer accepts a pending offer; it can then be ordered."""

    offer_id: str = field(validator=identifier)


@frozen
class DeclineOffer(Command):
    """The offer's buyer declines a pending offer."""

    offer_id: str = field(validator=identifier)


# Queries.


@frozen
class GetOffer(Query):
    """One custom offer, for its buyer or its seller."""

    offer_id: str = field(validator=identifier)


@frozen
class GetConversation(Query):
    """A conversation with one page of its timeline (page 1 holds the latest messages)."""

    conversation_id: str = field(validator=identifier)
    page: int = field(default=1, validator=int_between(1, MAX_PAGE))


@frozen
class ListConversations(Query):
    """The signed-in user's conversations, as buyer or seller, the most recently active first."""

    page: int = field(default=1, validator=int_between(1, MAX_PAGE))


# Replies.


@frozen
class OfferView(Reply):
    """A custom offer and where it stands."""

    offer_id: str = field(validator=identifier)
    conversation_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    price_cents: int = field(validator=int_between(1, MAX_PRICE_CENTS))
    delivery_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    description: str = field(validator=free_text(max_length=MAX_OFFER_DESCRIPTION))
    status: OfferStatus = field(validator=member_of(OfferStatus))
    sent_at: datetime = field(validator=utc_datetime)
    decided_at: datetime | None = field(validator=optional(utc_datetime))


@frozen
class MessageView(Reply):
    """A message of a conversation; `offer` is set when the message carries a custom offer."""

    message_id: str = field(validator=identifier)
    conversation_id: str = field(validator=identifier)
    sender_id: str = field(validator=identifier)
    text: str = field(validator=free_text(blank=True, max_length=MAX_MESSAGE_LENGTH))
    sent_at: datetime = field(validator=utc_datetime)
    offer: OfferView | None = field(default=None, validator=_optional_instance_of(OfferView))


@frozen
class ConversationView(Reply):
    """A conversation and one page of its timeline, oldest message first within the page."""

    conversation_id: str = field(validator=identifier)
    gig_id: str | None = field(validator=optional(identifier))
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    started_at: datetime = field(validator=utc_datetime)
    last_activity_at: datetime = field(validator=utc_datetime)
    message_count: int = field(validator=cents)
    messages: tuple[MessageView, ...] = field(validator=tuple_of(MessageView, max_length=MESSAGES_PER_PAGE))
    page: int = field(validator=int_between(1, MAX_PAGE))
    page_size: int = field(validator=int_between(1, MESSAGES_PER_PAGE))


@frozen
class ConversationSummary:
    """A conversation in a list: who, about what, how lively."""

    conversation_id: str = field(validator=identifier)
    gig_id: str | None = field(validator=optional(identifier))
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    started_at: datetime = field(validator=utc_datetime)
    last_activity_at: datetime = field(validator=utc_datetime)
    message_count: int = field(validator=cents)


@frozen
class ConversationPage(Reply):
    """One page of a user's conversations, the most recently active first; `total` counts them all."""

    items: tuple[ConversationSummary, ...] = field(
        validator=tuple_of(ConversationSummary, max_length=CONVERSATIONS_PER_PAGE)
    )
    total: int = field(validator=cents)
    page: int = field(validator=int_between(1, MAX_PAGE))
    page_size: int = field(validator=int_between(1, CONVERSATIONS_PER_PAGE))
