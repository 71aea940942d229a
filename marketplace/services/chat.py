"""The chat service: conversations between a buyer and a seller, and the custom offers made in them.

A buyer opens a conversation with a seller (one per seller and gig); both
write in it; the seller may send custom offers, which the buyer accepts or
declines, once. An accepted offer is what the gateway lets the buyer order.
Sending an offer announces it (`OfferSent`) with a link to it, so that the
notification service can e-mail the buyer.

Who may do what: to anyone but its two parties a conversation, and each offer
in it, does not exist (`not-found`), so that ids cannot be probed; a party
doing the other party's part is `forbidden`, naming the party it takes
(`buyer_id` or `seller_id`); an offer already decided is `invalid-state`
(`status`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast
from urllib.parse import quote, urlsplit

from attrs import evolve

from ..commands.chat import (
    CONVERSATIONS_PER_PAGE,
    MESSAGES_PER_PAGE,
    AcceptOffer,
    ConversationPage,
    ConversationSummary,
    ConversationView,
    DeclineOffer,
    GetConversation,
    GetOffer,
    ListConversations,
    MessageView,
    OfferStatus,
    OfferView,
    SendMessage,
    SendOffer,
    StartConversation,
)
from ..errors import DomainError, forbidden, invalid_state, not_found
from ..events import OfferSent
from ..service import Context, Service, Work, handles
from .chat_records import (
    CONVERSATION_KEYS,
    CONVERSATIONS,
    MESSAGES,
    OFFERS,
    ChatMessage,
    Conversation,
    Offer,
    conversation_key,
    message_key,
)


class ChatService(Service):
    """Keeps conversations, their messages and custom offers; announces the offers sent.

    `public_url` is where users reach the marketplace (`https://example.com`);
    an offer's link is `<public_url>/offers/<offer_id>`.
    """

    name = "chat"
    publishes = frozenset({OfferSent})

    def __init__(
        self, context: Context, on_crash: Callable[[Service], None] | None = None, *, public_url: str
    ) -> None:
        super().__init__(context, on_crash)
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"public_url must be an absolute http(s) URL, not {public_url!r}")
        self.public_url = public_url.rstrip("/")

    def offer_link(self, offer_id: str) -> str:
        """Where the buyer sees the offer `offer_id`."""
        return f"{self.public_url}/offers/{quote(offer_id, safe='')}"

    # Conversations and messages.

    @handles(StartConversation)
    def do_start_conversation(self, work: Work, command: StartConversation) -> ConversationView:
        """The buyer opens a conversation with a seller, or finds the one they already have."""
        buyer_id = _signed_in(work)
        if buyer_id == command.seller_id:
            raise forbidden("nobody starts a conversation with themselves", "seller_id")
        key = conversation_key(buyer_id, command.seller_id, command.gig_id)
        existing: str | None = work.get(CONVERSATION_KEYS, key)
        if existing is not None:
            return _conversation_view(work, _conversation_for(work, existing), page=1)
        conversation = Conversation(
            conversation_id=work.new_id(),
            gig_id=command.gig_id,
            buyer_id=buyer_id,
            buyer_username=command.buyer_username,
            seller_id=command.seller_id,
            seller_username=command.seller_username,
            started_at=work.now,
            last_activity_at=work.now,
        )
        work.put(CONVERSATIONS, conversation.conversation_id, conversation)
        work.put(CONVERSATION_KEYS, key, conversation.conversation_id)
        return _conversation_view(work, conversation, page=1)

    @handles(SendMessage)
    def do_send_message(self, work: Work, command: SendMessage) -> MessageView:
        """A party writes in the conversation."""
        conversation = _conversation_for(work, command.conversation_id)
        message = _append(work, conversation, sender_id=_signed_in(work), text=command.text)
        return _message_view(message, offer=None)

    @handles(GetConversation)
    def do_get_conversation(self, work: Work, query: GetConversation) -> ConversationView:
        """A conversation with one page of its timeline, for its parties."""
        return _conversation_view(work, _conversation_for(work, query.conversation_id), page=query.page)

    @handles(ListConversations)
    def do_list_conversations(self, work: Work, query: ListConversations) -> ConversationPage:
        """The signed-in user's conversations, the most recently active first."""
        user_id = _signed_in(work)
        mine = sorted(
            (c for c in work.values(CONVERSATIONS) if c.has_party(user_id)),
            key=lambda c: (c.last_activity_at, c.conversation_id),
            reverse=True,
        )
        start = (query.page - 1) * CONVERSATIONS_PER_PAGE
        return ConversationPage(
            items=tuple(_summary(c) for c in mine[start : start + CONVERSATIONS_PER_PAGE]),
            total=len(mine),
            page=query.page,
            page_size=CONVERSATIONS_PER_PAGE,
        )

    # Custom offers.

    @handles(SendOffer)
    def do_send_offer(self, work: Work, command: SendOffer) -> OfferView:
        """The conversation's seller offers custom terms; the offer joins the timeline and is announced."""
        conversation = _conversation_for(work, command.conversation_id)
        if work.actor_id != conversation.seller_id:
            raise forbidden("only the conversation's seller sends offers", "seller_id")
        offer = Offer(
            offer_id=work.new_id(),
            conversation_id=conversation.conversation_id,
            gig_id=command.gig_id,
            gig_title=command.gig_title,
            seller_id=conversation.seller_id,
            seller_username=command.seller_username,
            buyer_id=conversation.buyer_id,
            buyer_username=command.buyer_username,
            price_cents=command.price_cents,
            delivery_days=command.delivery_days,
            description=command.description,
            sent_at=work.now,
        )
        work.put(OFFERS, offer.offer_id, offer)
        _append(work, conversation, sender_id=offer.seller_id, text="", offer_id=offer.offer_id)
        work.emit(
            OfferSent(
                offer_id=offer.offer_id,
                conversation_id=offer.conversation_id,
                gig_id=offer.gig_id,
                gig_title=offer.gig_title,
                seller_id=offer.seller_id,
                seller_username=offer.seller_username,
                buyer_id=offer.buyer_id,
                buyer_username=offer.buyer_username,
                buyer_email=command.buyer_email,
                price_cents=offer.price_cents,
                delivery_days=offer.delivery_days,
                description=offer.description,
                offer_link=self.offer_link(offer.offer_id),
            )
        )
        return _offer_view(offer)

    @handles(AcceptOffer)
    def do_accept_offer(self, work: Work, command: AcceptOffer) -> OfferView:
        """The buyer accepts a pending offer."""
        return _decide(work, command.offer_id, OfferStatus.ACCEPTED)

    @handles(DeclineOffer)
    def do_decline_offer(self, work: Work, command: DeclineOffer) -> OfferView:
        """The buyer declines a pending offer."""
        return _decide(work, command.offer_id, OfferStatus.DECLINED)

    @handles(GetOffer)
    def do_get_offer(self, work: Work, query: GetOffer) -> OfferView:
        """One offer, for its buyer or its seller."""
        return _offer_view(_offer_for(work, query.offer_id))


def _signed_in(work: Work) -> str:
    """The signed-in user's id; anonymous requests are refused."""
    if work.actor_id is None:
        raise DomainError("unauthenticated", "sign in first")
    return work.actor_id


def _conversation_for(work: Work, conversation_id: str) -> Conversation:
    """The conversation if the signed-in user is one of its parties; not-found otherwise."""
    user_id = _signed_in(work)
    conversation: Conversation | None = work.get(CONVERSATIONS, conversation_id)
    if conversation is None or not conversation.has_party(user_id):
        raise not_found("conversation", "conversation_id")
    return conversation


def _offer_for(work: Work, offer_id: str) -> Offer:
    """The offer if the signed-in user is its buyer or its seller; not-found otherwise."""
    user_id = _signed_in(work)
    offer: Offer | None = work.get(OFFERS, offer_id)
    if offer is None or user_id not in (offer.buyer_id, offer.seller_id):
        raise not_found("offer", "offer_id")
    return offer


def _decide(work: Work, offer_id: str, status: OfferStatus) -> OfferView:
    """The offer's buyer accepts or declines it, once."""
    offer = _offer_for(work, offer_id)
    if work.actor_id != offer.buyer_id:
        raise forbidden("only the offer's buyer accepts or declines it", "buyer_id")
    if offer.status is not OfferStatus.PENDING:
        raise invalid_state(f"the offer is already {offer.status}", "status")
    offer = evolve(offer, status=status, decided_at=work.now)
    work.put(OFFERS, offer.offer_id, offer)
    return _offer_view(offer)


def _append(
    work: Work, conversation: Conversation, *, sender_id: str, text: str, offer_id: str | None = None
) -> ChatMessage:
    """Add a message at the end of the conversation's timeline."""
    message = ChatMessage(
        message_id=work.new_id(),
        conversation_id=conversation.conversation_id,
        sender_id=sender_id,
        text=text,
        sent_at=work.now,
        offer_id=offer_id,
    )
    work.put(MESSAGES, message_key(conversation.conversation_id, conversation.message_count), message)
    work.put(
        CONVERSATIONS,
        conversation.conversation_id,
        evolve(conversation, message_count=conversation.message_count + 1, last_activity_at=work.now),
    )
    return message


def _conversation_view(work: Work, conversation: Conversation, *, page: int) -> ConversationView:
    """The conversation with page `page` of its timeline: page 1 holds the latest messages."""
    end = max(0, conversation.message_count - (page - 1) * MESSAGES_PER_PAGE)
    start = max(0, end - MESSAGES_PER_PAGE)
    messages = []
    for number in range(start, end):
        # Messages 0 .. message_count - 1 exist: _append writes each with its conversation's count.
        message = cast(ChatMessage, work.get(MESSAGES, message_key(conversation.conversation_id, number)))
        offer = None if message.offer_id is None else work.get(OFFERS, message.offer_id)
        messages.append(_message_view(message, offer=offer))
    return ConversationView(
        conversation_id=conversation.conversation_id,
        gig_id=conversation.gig_id,
        buyer_id=conversation.buyer_id,
        buyer_username=conversation.buyer_username,
        seller_id=conversation.seller_id,
        seller_username=conversation.seller_username,
        started_at=conversation.started_at,
        last_activity_at=conversation.last_activity_at,
        message_count=conversation.message_count,
        messages=tuple(messages),
        page=page,
        page_size=MESSAGES_PER_PAGE,
    )


def _summary(conversation: Conversation) -> ConversationSummary:
    """A conversation as a line in a list."""
    return ConversationSummary(
        conversation_id=conversation.conversation_id,
        gig_id=conversation.gig_id,
        buyer_id=conversation.buyer_id,
        buyer_username=conversation.buyer_username,
        seller_id=conversation.seller_id,
        seller_username=conversation.seller_username,
        started_at=conversation.started_at,
        last_activity_at=conversation.last_activity_at,
        message_count=conversation.message_count,
    )


def _message_view(message: ChatMessage, *, offer: Offer | None) -> MessageView:
    """A message as the conversation's parties see it, with the offer it carries as it stands now."""
    return MessageView(
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        text=message.text,
        sent_at=message.sent_at,
        offer=None if offer is None else _offer_view(offer),
    )


def _offer_view(offer: Offer) -> OfferView:
    """An offer as its parties see it."""
    return OfferView(
        offer_id=offer.offer_id,
        conversation_id=offer.conversation_id,
        gig_id=offer.gig_id,
        gig_title=offer.gig_title,
        seller_id=offer.seller_id,
        seller_username=offer.seller_username,
        buyer_id=offer.buyer_id,
        buyer_username=offer.buyer_username,
        price_cents=offer.price_cents,
        delivery_days=offer.delivery_days,
        description=offer.description,
        status=offer.status,
        sent_at=offer.sent_at,
        decided_at=offer.decided_at,
    )
