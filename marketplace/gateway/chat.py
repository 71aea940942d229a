"""The client API of chat: conversations with sellers, messages, and custom offers.

The gateway gathers what chat cannot know before sending a command: both
parties' usernames and the buyer's address (from users), the gig's title and
seller (from gig).
"""

from __future__ import annotations

from ..commands.chat import (
    AcceptOffer,
    ConversationPage,
    ConversationView,
    DeclineOffer,
    GetConversation,
    GetOffer,
    ListConversations,
    MessageView,
    OfferView,
    SendMessage,
    SendOffer,
    StartConversation,
)
from ..commands.gig import GetGig, GigStatus, GigView
from ..commands.users import GetUser, SellerStatus, UserView
from ..errors import DomainError, forbidden, invalid, invalid_state
from .client import ServiceClient

CHAT = "chat"
GIG = "gig"
USERS = "users"


class Chat:
    """Chat as seen by `user_id` (every chat operation needs a signed-in user)."""

    def __init__(self, client: ServiceClient, user_id: str | None) -> None:
        self._client = client
        self._user_id = user_id

    def start(self, *, seller_id: str, gig_id: str | None = None) -> ConversationView:
        """The signed-in buyer opens (or finds) a conversation with a seller, possibly about their gig."""
        actor = self._signed_in()
        seller = self._user(seller_id)
        if seller.status is not SellerStatus.SELLER:
            raise invalid("seller_id", "this user does not sell")
        if gig_id is not None and self._gig(gig_id).seller_id != seller_id:
            raise invalid("gig_id", "the gig is not this seller's")
        buyer = self._user(actor)
        command = StartConversation(
            seller_id=seller_id, seller_username=seller.username, buyer_username=buyer.username, gig_id=gig_id
        )
        return self._client.send(CHAT, command, ConversationView, actor_id=actor)

    def send_message(self, *, conversation_id: str, text: str) -> MessageView:
        """A party writes in the conversation."""
        command = SendMessage(conversation_id=conversation_id, text=text)
        return self._client.send(CHAT, command, MessageView, actor_id=self._signed_in())

    def send_offer(
        self, *, conversation_id: str, gig_id: str, price_cents: int, delivery_days: int, description: str
    ) -> OfferView:
        """The conversation's seller offers the buyer custom terms for one of their gigs."""
        actor = self._signed_in()
        conversation = self.conversation(conversation_id=conversation_id)
        if conversation.seller_id != actor:
            raise forbidden("only the conversation's seller sends offers", "seller_id")
        gig = self._gig(gig_id)
        if gig.seller_id != actor:
            raise forbidden("an offer is for one of the seller's own gigs", "gig_id")
        if gig.status is GigStatus.DELETED:
            raise invalid_state("the gig is deleted", "gig_id")
        buyer, seller = self._user(conversation.buyer_id), self._user(actor)
        command = SendOffer(
            conversation_id=conversation_id,
            gig_id=gig_id,
            gig_title=gig.title,
            price_cents=price_cents,
            delivery_days=delivery_days,
            description=description,
            buyer_email=buyer.email,
            buyer_username=buyer.username,
            seller_username=seller.username,
        )
        return self._client.send(CHAT, command, OfferView, actor_id=actor)

    def accept_offer(self, *, offer_id: str) -> OfferView:
        """The offer's buyer accepts it; it can then be ordered."""
        return self._client.send(CHAT, AcceptOffer(offer_id), OfferView, actor_id=self._signed_in())

    def decline_offer(self, *, offer_id: str) -> OfferView:
        """The offer's buyer declines it."""
        return self._client.send(CHAT, DeclineOffer(offer_id), OfferView, actor_id=self._signed_in())

    def offer(self, *, offer_id: str) -> OfferView:
        """One offer, for its buyer or its seller."""
        return self._client.send(CHAT, GetOffer(offer_id), OfferView, actor_id=self._signed_in())

    def conversation(self, *, conversation_id: str, page: int = 1) -> ConversationView:
        """A conversation with one page of its timeline (page 1: the latest messages)."""
        query = GetConversation(conversation_id=conversation_id, page=page)
        return self._client.send(CHAT, query, ConversationView, actor_id=self._signed_in())

    def conversations(self, *, page: int = 1) -> ConversationPage:
        """The signed-in user's conversations, the most recently active first."""
        return self._client.send(CHAT, ListConversations(page), ConversationPage, actor_id=self._signed_in())

    def _user(self, user_id: str) -> UserView:
        return self._client.send(USERS, GetUser(user_id), UserView, actor_id=self._user_id)

    def _gig(self, gig_id: str) -> GigView:
        return self._client.send(GIG, GetGig(gig_id), GigView, actor_id=self._user_id)

    def _signed_in(self) -> str:
        if self._user_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._user_id
