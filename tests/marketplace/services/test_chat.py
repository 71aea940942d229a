"""The chat service: conversations between a buyer and a seller, their messages and custom offers."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, cast

import pytest

from marketplace import protocol
from marketplace.codec import DEFAULT_MAX_SIZE
from marketplace.commands.chat import (
    CONVERSATIONS_PER_PAGE,
    MAX_MESSAGE_LENGTH,
    MAX_OFFER_DESCRIPTION,
    MESSAGES_PER_PAGE,
    AcceptOffer,
    ConversationPage,
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
from marketplace.commands.gig import GigCategory, GigStatus, GigView
from marketplace.commands.users import GetUser, SellerStatus, UserView
from marketplace.errors import DomainError, not_found
from marketplace.events import MAX_DELIVERY_DAYS, OfferSent
from marketplace.gateway.chat import Chat
from marketplace.gateway.client import ServiceClient
from marketplace.pricing import MAX_PRICE_CENTS
from marketplace.services.chat import ChatService
from marketplace.validation import MAX_ID_LENGTH, MAX_NAME_LENGTH, ValidationError
from tests.marketplace.harness import START, ServiceHarness, running

BUYER = "buyer-1"
SELLER = "seller-1"
STRANGER = "stranger-1"
PUBLIC_URL = "https://market.example.com/"


@pytest.fixture
def chat() -> Iterator[ServiceHarness]:
    yield from running(ChatService, public_url=PUBLIC_URL)


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value


def start(
    h: ServiceHarness, *, buyer: str = BUYER, seller: str = SELLER, gig_id: str | None = "gig-1"
) -> ConversationView:
    reply: ConversationView = h.request(
        StartConversation(seller_id=seller, seller_username="sam", buyer_username="bea", gig_id=gig_id),
        actor_id=buyer,
    )
    return reply


def offer(
    h: ServiceHarness,
    conversation_id: str,
    *,
    actor: str = SELLER,
    price_cents: int = 7500,
    key: str | None = None,
) -> OfferView:
    reply: OfferView = h.request(
        SendOffer(
            conversation_id=conversation_id,
            gig_id="gig-1",
            gig_title="A logo in a day",
            price_cents=price_cents,
            delivery_days=4,
            description="Three logo drafts and two rounds of changes",
            buyer_email="bea@example.com",
            buyer_username="bea",
            seller_username="sam",
        ),
        actor_id=actor,
        key=key,
    )
    return reply


def say(h: ServiceHarness, conversation_id: str, text: str, actor: str = BUYER) -> MessageView:
    reply: MessageView = h.request(SendMessage(conversation_id, text), actor_id=actor)
    return reply


def conversation(
    h: ServiceHarness, conversation_id: str, actor: str = BUYER, page: int = 1
) -> ConversationView:
    reply: ConversationView = h.request(GetConversation(conversation_id, page), actor_id=actor)
    return reply


# Conversations.


def test_a_buyer_starts_a_conversation_with_a_seller(chat: ServiceHarness) -> None:
    started = start(chat)

    assert (started.buyer_id, started.seller_id, started.gig_id) == (BUYER, SELLER, "gig-1")
    assert (started.buyer_username, started.seller_username) == ("bea", "sam")
    assert started.started_at == started.last_activity_at == START
    assert (started.messages, started.message_count) == ((), 0)
    assert conversation(chat, started.conversation_id, SELLER) == started


def test_starting_a_conversation_again_finds_the_one_that_exists(chat: ServiceHarness) -> None:
    first = start(chat)
    say(chat, first.conversation_id, "hello")

    again = start(chat)

    assert again.conversation_id == first.conversation_id
    assert again.message_count == 1
    about_another_gig, about_no_gig = start(chat, gig_id="gig-2"), start(chat, gig_id=None)
    assert len({first.conversation_id, about_another_gig.conversation_id, about_no_gig.conversation_id}) == 3


def test_nobody_starts_a_conversation_with_themselves(chat: ServiceHarness) -> None:
    error = refused(start, chat, buyer=SELLER, seller=SELLER)
    assert (error.code, error.field) == ("forbidden", "seller_id")


def test_both_parties_write_in_a_conversation(chat: ServiceHarness) -> None:
    started = start(chat)
    chat.clock.advance(minutes=1)
    question = say(chat, started.conversation_id, "Can you do it by Friday?", BUYER)
    chat.clock.advance(minutes=1)
    answer = say(chat, started.conversation_id, "Yes.", SELLER)

    seen = conversation(chat, started.conversation_id)

    assert seen.messages == (question, answer)
    assert [(m.sender_id, m.text, m.offer) for m in seen.messages] == [
        (BUYER, "Can you do it by Friday?", None),
        (SELLER, "Yes.", None),
    ]
    assert (question.sent_at, answer.sent_at) == (START + timedelta(minutes=1), START + timedelta(minutes=2))
    assert (seen.message_count, seen.last_activity_at) == (2, answer.sent_at)


def test_a_retried_message_is_written_once(chat: ServiceHarness) -> None:
    started = start(chat)
    first = chat.request(SendMessage(started.conversation_id, "hi"), actor_id=BUYER, key="say-1")
    again = chat.request(SendMessage(started.conversation_id, "hi"), actor_id=BUYER, key="say-1")

    assert again == first
    assert conversation(chat, started.conversation_id).message_count == 1


def test_a_blank_message_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        SendMessage("conversation-1", "   ")
    assert caught.value.field == "text"


def test_a_conversation_is_read_a_page_at_a_time(chat: ServiceHarness) -> None:
    started = start(chat)
    texts = [f"message {n}" for n in range(MESSAGES_PER_PAGE + 3)]
    for text in texts:
        say(chat, started.conversation_id, text)

    pages = [conversation(chat, started.conversation_id, page=n) for n in (1, 2, 3)]

    assert [m.text for m in pages[0].messages] == texts[3:]
    assert [m.text for m in pages[1].messages] == texts[:3]
    assert pages[2].messages == ()
    assert {p.message_count for p in pages} == {len(texts)}
    assert [(p.page, p.page_size) for p in pages] == [(n, MESSAGES_PER_PAGE) for n in (1, 2, 3)]


def test_to_a_stranger_a_conversation_does_not_exist(chat: ServiceHarness) -> None:
    started = start(chat)

    for body in (
        SendMessage(started.conversation_id, "hi"),
        GetConversation(started.conversation_id),
    ):
        error = refused(chat.request, body, actor_id=STRANGER)
        assert (error.code, error.field) == ("not-found", "conversation_id")
    error = refused(offer, chat, started.conversation_id, actor=STRANGER)
    assert (error.code, error.field) == ("not-found", "conversation_id")
    error = refused(say, chat, "no-such-conversation", "hi")
    assert (error.code, error.field) == ("not-found", "conversation_id")
    assert conversation(chat, started.conversation_id).message_count == 0


def test_a_user_lists_their_conversations_the_most_recently_active_first(chat: ServiceHarness) -> None:
    as_buyer = start(chat, buyer=BUYER, seller=SELLER)
    chat.clock.advance(minutes=1)
    as_seller = start(chat, buyer=STRANGER, seller=BUYER)
    chat.clock.advance(minutes=1)
    start(chat, buyer=STRANGER, seller=SELLER)
    chat.clock.advance(minutes=1)
    say(chat, as_buyer.conversation_id, "still there?")

    listed: ConversationPage = chat.request(ListConversations(), actor_id=BUYER)

    assert [c.conversation_id for c in listed.items] == [as_buyer.conversation_id, as_seller.conversation_id]
    assert listed.items[0].message_count == 1
    assert listed.items[0].last_activity_at == START + timedelta(minutes=3)
    assert (listed.total, listed.page, listed.page_size) == (2, 1, CONVERSATIONS_PER_PAGE)
    later: ConversationPage = chat.request(ListConversations(page=2), actor_id=BUYER)
    assert (later.items, later.total) == ((), 2)


@pytest.mark.parametrize(
    "body",
    [
        StartConversation(SELLER, "sam", "bea"),
        SendMessage("conversation-1", "hi"),
        AcceptOffer("offer-1"),
        DeclineOffer("offer-1"),
        GetOffer("offer-1"),
        GetConversation("conversation-1"),
        ListConversations(),
    ],
    ids=lambda body: type(body).__name__,
)
def test_an_anonymous_user_cannot_chat(chat: ServiceHarness, body: Any) -> None:
    error = refused(chat.request, body, actor_id=None)
    assert error.code == "unauthenticated"


# Custom offers.


def test_the_seller_sends_an_offer_and_the_buyer_is_told(chat: ServiceHarness) -> None:
    started = start(chat)

    sent = offer(chat, started.conversation_id, price_cents=7500)

    assert sent.status is OfferStatus.PENDING
    assert (sent.buyer_id, sent.seller_id, sent.conversation_id) == (BUYER, SELLER, started.conversation_id)
    assert (sent.price_cents, sent.delivery_days, sent.sent_at, sent.decided_at) == (7500, 4, START, None)
    [event] = chat.events(OfferSent)
    assert event.offer_id == sent.offer_id
    assert event.offer_link == f"https://market.example.com/offers/{sent.offer_id}"
    assert (event.buyer_email, event.buyer_username, event.seller_username) == (
        "bea@example.com",
        "bea",
        "sam",
    )
    assert (event.price_cents, event.delivery_days, event.gig_title) == (7500, 4, "A logo in a day")
    assert (event.buyer_id, event.seller_id, event.conversation_id) == (
        BUYER,
        SELLER,
        started.conversation_id,
    )


def test_an_offer_takes_its_place_in_the_timeline_as_it_stands(chat: ServiceHarness) -> None:
    started = start(chat)
    say(chat, started.conversation_id, "How much for three drafts?")
    sent = offer(chat, started.conversation_id)
    chat.clock.advance(hours=1)
    accepted: OfferView = chat.request(AcceptOffer(sent.offer_id), actor_id=BUYER)

    seen = conversation(chat, started.conversation_id)

    assert [m.offer for m in seen.messages] == [None, accepted]
    assert seen.messages[1].sender_id == SELLER


def test_only_the_conversations_seller_sends_offers(chat: ServiceHarness) -> None:
    started = start(chat)
    error = refused(offer, chat, started.conversation_id, actor=BUYER)
    assert (error.code, error.field) == ("forbidden", "seller_id")
    assert chat.events(OfferSent) == []


def test_a_retried_offer_is_sent_once(chat: ServiceHarness) -> None:
    started = start(chat)

    first = offer(chat, started.conversation_id, key="offer-1")
    again = offer(chat, started.conversation_id, key="offer-1")

    assert again == first
    # The retry republishes the recorded announcement (same message id), which consumers skip.
    assert len({e.message_id for e in chat.published if isinstance(e.event, OfferSent)}) == 1
    assert conversation(chat, started.conversation_id).message_count == 1


@pytest.mark.parametrize(
    ("decide", "status"), [(AcceptOffer, OfferStatus.ACCEPTED), (DeclineOffer, OfferStatus.DECLINED)]
)
def test_the_buyer_decides_a_pending_offer(chat: ServiceHarness, decide: Any, status: OfferStatus) -> None:
    sent = offer(chat, start(chat).conversation_id)
    chat.clock.advance(hours=2)

    decided: OfferView = chat.request(decide(sent.offer_id), actor_id=BUYER)

    assert (decided.status, decided.decided_at) == (status, START + timedelta(hours=2))
    assert chat.request(GetOffer(sent.offer_id), actor_id=SELLER) == decided


@pytest.mark.parametrize("first", [AcceptOffer, DeclineOffer])
@pytest.mark.parametrize("second", [AcceptOffer, DeclineOffer])
def test_a_decided_offer_stays_decided(chat: ServiceHarness, first: Any, second: Any) -> None:
    sent = offer(chat, start(chat).conversation_id)
    decided = chat.request(first(sent.offer_id), actor_id=BUYER)

    error = refused(chat.request, second(sent.offer_id), actor_id=BUYER)

    assert (error.code, error.field) == ("invalid-state", "status")
    assert chat.request(GetOffer(sent.offer_id), actor_id=BUYER) == decided


@pytest.mark.parametrize("decide", [AcceptOffer, DeclineOffer])
def test_only_the_offers_buyer_decides_it(chat: ServiceHarness, decide: Any) -> None:
    sent = offer(chat, start(chat).conversation_id)

    error = refused(chat.request, decide(sent.offer_id), actor_id=SELLER)
    assert (error.code, error.field) == ("forbidden", "buyer_id")
    error = refused(chat.request, decide(sent.offer_id), actor_id=STRANGER)
    assert (error.code, error.field) == ("not-found", "offer_id")
    error = refused(chat.request, decide("no-such-offer"), actor_id=BUYER)
    assert (error.code, error.field) == ("not-found", "offer_id")
    still: OfferView = chat.request(GetOffer(sent.offer_id), actor_id=BUYER)
    assert still.status is OfferStatus.PENDING


def test_an_offer_is_seen_by_its_buyer_and_its_seller_only(chat: ServiceHarness) -> None:
    sent = offer(chat, start(chat).conversation_id)

    assert chat.request(GetOffer(sent.offer_id), actor_id=BUYER) == sent
    assert chat.request(GetOffer(sent.offer_id), actor_id=SELLER) == sent
    for offer_id, actor in ((sent.offer_id, STRANGER), ("no-such-offer", BUYER)):
        error = refused(chat.request, GetOffer(offer_id), actor_id=actor)
        assert (error.code, error.field) == ("not-found", "offer_id")


@pytest.mark.parametrize(("field", "value"), [("price_cents", 0), ("delivery_days", 0), ("description", " ")])
def test_an_offer_needs_a_price_a_delivery_time_and_a_description(field: str, value: Any) -> None:
    terms: dict[str, Any] = {"price_cents": 100, "delivery_days": 1, "description": "drafts", field: value}
    with pytest.raises(ValidationError) as caught:
        SendOffer(
            conversation_id="conversation-1",
            gig_id="gig-1",
            gig_title="t",
            buyer_email="bea@example.com",
            buyer_username="bea",
            seller_username="sam",
            **terms,
        )
    assert caught.value.field == field


@pytest.mark.parametrize("public_url", ["market.example.com", "ftp://market.example.com", "https://"])
def test_the_chat_service_needs_an_absolute_public_url(public_url: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        ServiceHarness(ChatService, public_url=public_url)


# Through the gateway: names, addresses and the gig's title are gathered from users and gig.


class FakeServices:
    """Stands in for `ServiceClient`: chat is the real actor, users and gig answer from views."""

    def __init__(self, chat: ServiceHarness, views: dict[str, Any]) -> None:
        self.chat = chat
        self.views = views

    def send(self, service: str, body: Any, expect: type[Any], *, actor_id: str | None = None) -> Any:
        if service == "chat":
            reply = self.chat.request(body, actor_id=actor_id)
        else:
            reply = self.views.get(body.user_id if isinstance(body, GetUser) else body.gig_id)
            if reply is None:
                raise not_found(service, "id")
        assert isinstance(reply, expect)
        return reply


def user(user_id: str, username: str, status: SellerStatus = SellerStatus.BUYER) -> UserView:
    return UserView(user_id, username, f"{username}@example.com", "Chile", None, status, START)


def gig(gig_id: str, seller_id: str, status: GigStatus = GigStatus.ACTIVE) -> GigView:
    return GigView(
        gig_id=gig_id,
        seller_id=seller_id,
        seller_username="sam",
        title=f"Gig {gig_id}",
        description="Any logo",
        category=GigCategory.DESIGN,
        tags=(),
        price_cents=2500,
        delivery_days=2,
        status=status,
        ratings_count=0,
        ratings_sum=0,
        rating_categories=(0, 0, 0, 0, 0),
        created_at=START,
    )


@pytest.fixture
def services(chat: ServiceHarness) -> FakeServices:
    return FakeServices(
        chat,
        {
            BUYER: user(BUYER, "bea"),
            SELLER: user(SELLER, "sam", SellerStatus.SELLER),
            "other-seller": user("other-seller", "oli", SellerStatus.SELLER),
            "gig-1": gig("gig-1", SELLER),
            "deleted-gig": gig("deleted-gig", SELLER, GigStatus.DELETED),
            "gig-of-oli": gig("gig-of-oli", "other-seller"),
        },
    )


def gateway(services: FakeServices, user_id: str | None) -> Chat:
    return Chat(cast(ServiceClient, services), user_id)


def test_the_gateway_starts_a_conversation_with_both_names(services: FakeServices) -> None:
    started = gateway(services, BUYER).start(seller_id=SELLER, gig_id="gig-1")

    assert (started.buyer_username, started.seller_username, started.gig_id) == ("bea", "sam", "gig-1")
    assert gateway(services, SELLER).conversations().items[0].conversation_id == started.conversation_id


def test_the_gateway_starts_conversations_only_with_sellers_about_their_gigs(services: FakeServices) -> None:
    error = refused(gateway(services, SELLER).start, seller_id=BUYER)
    assert (error.code, error.field) == ("invalid", "seller_id")
    error = refused(gateway(services, BUYER).start, seller_id=SELLER, gig_id="gig-of-oli")
    assert (error.code, error.field) == ("invalid", "gig_id")
    error = refused(gateway(services, None).start, seller_id=SELLER)
    assert error.code == "unauthenticated"


def test_the_gateway_sends_an_offer_with_the_gigs_title_and_the_buyers_address(
    services: FakeServices,
) -> None:
    started = gateway(services, BUYER).start(seller_id=SELLER)
    seller = gateway(services, SELLER)
    seller.send_message(conversation_id=started.conversation_id, text="What do you need?")

    sent = seller.send_offer(
        conversation_id=started.conversation_id,
        gig_id="gig-1",
        price_cents=9000,
        delivery_days=6,
        description="Logo and cards",
    )

    assert (sent.gig_title, sent.buyer_username, sent.seller_username) == ("Gig gig-1", "bea", "sam")
    [event] = services.chat.events(OfferSent)
    assert (event.buyer_email, event.gig_title) == ("bea@example.com", "Gig gig-1")
    buyer = gateway(services, BUYER)
    assert buyer.accept_offer(offer_id=sent.offer_id).status is OfferStatus.ACCEPTED
    assert buyer.offer(offer_id=sent.offer_id).status is OfferStatus.ACCEPTED
    timeline = buyer.conversation(conversation_id=started.conversation_id).messages
    assert [m.text for m in timeline] == ["What do you need?", ""]


def test_the_gateway_sends_offers_only_for_the_sellers_own_live_gigs(services: FakeServices) -> None:
    started = gateway(services, BUYER).start(seller_id=SELLER)
    terms: dict[str, Any] = {"price_cents": 9000, "delivery_days": 6, "description": "Logo"}

    for actor, gig_id, outcome in (
        (SELLER, "gig-of-oli", ("forbidden", "gig_id")),
        (SELLER, "deleted-gig", ("invalid-state", "gig_id")),
        (BUYER, "gig-1", ("forbidden", "seller_id")),
        (STRANGER, "gig-1", ("not-found", "conversation_id")),
    ):
        send = gateway(services, actor).send_offer
        error = refused(send, conversation_id=started.conversation_id, gig_id=gig_id, **terms)
        assert (error.code, error.field) == outcome
    assert services.chat.events(OfferSent) == []


def test_the_gateway_lets_the_buyer_decline_an_offer(services: FakeServices) -> None:
    started = gateway(services, BUYER).start(seller_id=SELLER)
    sent = gateway(services, SELLER).send_offer(
        conversation_id=started.conversation_id,
        gig_id="gig-1",
        price_cents=900,
        delivery_days=1,
        description="x",
    )
    declined = gateway(services, BUYER).decline_offer(offer_id=sent.offer_id)
    assert declined.status is OfferStatus.DECLINED


# Replies fit the codec's body limit, however long what people wrote.

LONGEST_NAME = "\U0001f600" * MAX_NAME_LENGTH  # four bytes a character in UTF-8


def longest_ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):08d}".ljust(MAX_ID_LENGTH, "~")


def test_a_page_of_the_longest_offers_fits_in_a_reply() -> None:
    buyer, seller = longest_ids("buyer")(), longest_ids("seller")()
    for h in running(ChatService, public_url=PUBLIC_URL, new_id=longest_ids("id")):
        started: ConversationView = h.request(
            StartConversation(seller, LONGEST_NAME, LONGEST_NAME, longest_ids("gig")()), actor_id=buyer
        )
        longest_offer = SendOffer(
            conversation_id=started.conversation_id,
            gig_id=longest_ids("gig")(),
            gig_title=LONGEST_NAME,
            price_cents=MAX_PRICE_CENTS,
            delivery_days=MAX_DELIVERY_DAYS,
            description="\U0001f600" * MAX_OFFER_DESCRIPTION,
            buyer_email="bea@example.com",
            buyer_username=LONGEST_NAME,
            seller_username=LONGEST_NAME,
        )
        for _ in range(MESSAGES_PER_PAGE):
            h.request(longest_offer, actor_id=seller)
        h.request(SendMessage(started.conversation_id, "\U0001f600" * MAX_MESSAGE_LENGTH), actor_id=buyer)

        full = conversation(h, started.conversation_id, buyer, page=1)
        assert len(full.messages) == MESSAGES_PER_PAGE
        assert len(protocol.encode_reply(full)) <= DEFAULT_MAX_SIZE


def test_a_page_of_the_longest_conversations_fits_in_a_reply() -> None:
    buyer = longest_ids("buyer")()
    sellers, gigs = longest_ids("seller"), longest_ids("gig")
    for h in running(ChatService, public_url=PUBLIC_URL, new_id=longest_ids("id")):
        for _ in range(CONVERSATIONS_PER_PAGE):
            h.request(StartConversation(sellers(), LONGEST_NAME, LONGEST_NAME, gigs()), actor_id=buyer)

        page: ConversationPage = h.request(ListConversations(), actor_id=buyer)
        assert len(page.items) == CONVERSATIONS_PER_PAGE
        assert len(protocol.encode_reply(page)) <= DEFAULT_MAX_SIZE


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x07"])
def test_what_people_write_has_no_control_characters(control: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SendMessage("conversation-1", f"hello{control}")
    assert caught.value.field == "text"
    assert SendMessage("conversation-1", "two\r\nlines\tand a tab").text
