"""What a running marketplace shows of everything the model knows, read through the gateway's queries.

One `Observation` per system per step, taken as the users themselves would
see things (each through their own session), so that the invariants compare
the services' public answers: the users service's figures with the order,
gig and review services' records, and everything with the model. Two
observations of the same operations on two transports are equal, ids and
times included (`differences` says where they are not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from attrs import frozen

from marketplace.commands.chat import OfferView
from marketplace.commands.gig import GigView
from marketplace.commands.order import OrderSummary, OrderView
from marketplace.commands.review import ReviewView
from marketplace.commands.users import BuyerView, SellerView
from marketplace.gateway import Marketplace, Session
from marketplace.mail import OutgoingEmail

from .model import Gig, Model, Offer, Order, User
from .systems import System


@frozen
class Observation:
    """Everything the services show of what the model knows, and what the mailer and broker did."""

    buyers: Mapping[User, BuyerView]
    """Each user's own buyer profile."""
    sellers: Mapping[User, SellerView]
    """Each seller's public profile and figures."""
    seller_gigs: Mapping[User, tuple[GigView, ...]]
    """The gigs each seller sees in their own list (active and paused)."""
    orders_of: Mapping[User, tuple[OrderSummary, ...]]
    """The orders each user is a party of, as the order service lists them."""
    gigs: Mapping[Gig, GigView]
    """Each gig, as its seller sees it (deleted ones too)."""
    orders: Mapping[Order, OrderView]
    """Each order, as its buyer sees it."""
    offers: Mapping[Offer, OfferView]
    """Each custom offer, as its buyer sees it."""
    gig_reviews: Mapping[Gig, tuple[ReviewView, ...]]
    """What buyers said of each gig, as the review service lists it."""
    seller_reviews: Mapping[User, tuple[ReviewView, ...]]
    """What buyers said of each seller, as the review service lists it."""
    emails: tuple[OutgoingEmail, ...]
    """Every e-mail sent, by id."""
    dead_letters: int
    """Messages the transport dead-lettered."""


def observe(system: System, model: Model) -> Observation:
    """Read, through `system`'s gateway, everything the model knows of."""
    market = system.market
    users = model.users()
    sellers = model.sellers()
    return Observation(
        buyers={user: system.session(user).profile.buyer() for user in users},
        sellers={seller: market.profiles.seller(seller_id=model.user_id(seller)) for seller in sellers},
        seller_gigs={seller: _own_gigs(system.session(seller)) for seller in sellers},
        orders_of={user: _orders(system.session(user)) for user in users},
        gigs={
            gig: system.session(listing.seller).gigs.get(gig_id=listing.gig_id)
            for gig, listing in model.listings.items()
        },
        orders={
            order: system.session(job.buyer).orders.get(order_id=job.order_id)
            for order, job in model.jobs.items()
        },
        offers={
            offer: system.session(record.buyer).chat.offer(offer_id=record.offer_id)
            for offer, record in model.offers.items()
        },
        gig_reviews={gig: _gig_reviews(market, listing.gig_id) for gig, listing in model.listings.items()},
        seller_reviews={seller: _seller_reviews(market, model.user_id(seller)) for seller in sellers},
        emails=tuple(sorted(system.mailer.sent, key=lambda email: email.email_id)),
        dead_letters=system.app.transport.stats().dead_lettered,
    )


def search(
    market: Marketplace, *, max_price_cents: int | None, max_delivery_days: int | None
) -> tuple[GigView, ...]:
    """Every gig a search of the market within a budget and a time finds, all pages read."""
    return _every_page(
        lambda page: market.gigs.search(
            max_price_cents=max_price_cents, max_delivery_days=max_delivery_days, page=page
        )
    )


def _own_gigs(seller: Session) -> tuple[GigView, ...]:
    page = seller.gigs.of_seller(seller_id=seller.user_id)
    assert page.total == len(page.items), f"{seller} has more gigs than a page shows: {page.total}"
    return page.items


def _orders(user: Session) -> tuple[OrderSummary, ...]:
    return _every_page(lambda page: user.orders.list(page=page))


def _gig_reviews(market: Marketplace, gig_id: str) -> tuple[ReviewView, ...]:
    return _every_page(lambda page: market.reviews.of_gig(gig_id=gig_id, page=page))


def _seller_reviews(market: Marketplace, seller_id: str) -> tuple[ReviewView, ...]:
    return _every_page(lambda page: market.reviews.of_seller(seller_id=seller_id, page=page))


def _every_page(read: Callable[[int], Any]) -> tuple[Any, ...]:
    """The items of every page `read(page)` gives, until all `total` of them are read."""
    items: list[Any] = []
    page = 1
    while True:
        result = read(page)
        items.extend(result.items)
        if len(items) >= result.total or not result.items:
            return tuple(items)
        page += 1


def differences(first: Observation, second: Observation) -> list[str]:
    """Where two observations differ: each field, and each key of a mapping, that does not match."""
    found = []
    for field in attrs.fields(Observation):
        a, b = getattr(first, field.name), getattr(second, field.name)
        if a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b), key=repr):
                if a.get(key) != b.get(key):
                    found.append(f"{field.name}[{key!r}]: {a.get(key)!r} != {b.get(key)!r}")
        else:
            found.append(f"{field.name}: {a!r} != {b!r}")
    return found
