"""What the chat service stores: conversations, their numbered messages, and custom offers."""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from ..commands.chat import OfferStatus

CONVERSATIONS = "conversations"
"""Conversations by conversation id."""
CONVERSATION_KEYS = "conversation_keys"
"""The conversation of each (buyer, seller, gig), by `conversation_key`: one per seller and gig."""
MESSAGES = "messages"
"""Messages by `message_key`: a conversation's messages are numbered from 0 in the order sent."""
OFFERS = "offers"
"""Custom offers by offer id."""


def conversation_key(buyer_id: str, seller_id: str, gig_id: str | None) -> str:
    """The key of the conversation between a buyer and a seller about a gig (or about no gig)."""
    # Ids are visible ASCII, so a space cannot occur inside one.
    return f"{buyer_id} {seller_id} {gig_id or ''}"


def message_key(conversation_id: str, number: int) -> str:
    """The key of the `number`th message (from 0) of a conversation."""
    return f"{conversation_id} {number:08d}"


@frozen
class Conversation:
    """A conversation between a buyer and a seller; `message_count` numbers its next message."""

    conversation_id: str
    gig_id: str | None
    buyer_id: str
    buyer_username: str
    seller_id: str
    seller_username: str
    started_at: datetime
    last_activity_at: datetime
    message_count: int = 0

    def has_party(self, user_id: str | None) -> bool:
        """Whether `user_id` is the buyer or the seller of this conversation."""
        return user_id is not None and user_id in (self.buyer_id, self.seller_id)


@frozen
class ChatMessage:
    """A message of a conversation; `offer_id` names the custom offer it carries, if any."""

    message_id: str
    conversation_id: str
    sender_id: str
    text: str
    sent_at: datetime
    offer_id: str | None = None


@frozen
class Offer:
    """A custom offer from a conversation's seller to its buyer, and the buyer's decision."""

    offer_id: str
    conversation_id: str
    gig_id: str
    gig_title: str
    seller_id: str
    seller_username: str
    buyer_id: str
    buyer_username: str
    price_cents: int
    delivery_days: int
    description: str
    sent_at: datetime
    status: OfferStatus = OfferStatus.PENDING
    decided_at: datetime | None = None
