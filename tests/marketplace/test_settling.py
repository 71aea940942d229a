"""Knowing, without a timer, that every cascade of events has run its course, on both transports."""

from __future__ import annotations

from marketplace.bootstrap import App
from tests.marketplace.apps import (  # noqa: F401  (fixtures)
    fixture_marketplace_app,
    fixture_marketplace_backend,
    fixture_marketplace_url,
    signed_in,
)


def test_once_settled_every_consequence_of_a_command_is_visible_and_nothing_is_in_flight(
    marketplace_app: App,
) -> None:
    bob = signed_in(marketplace_app, "bob")
    bob.profile.become_seller(full_name="Bob Builder", description="Logos.")
    bob.gigs.seed(count=3)  # gig -> users -> gig -> users: a cascade four hops deep
    marketplace_app.wait_until_settled(30)
    assert marketplace_app.transport.in_flight() == 0
    seller = marketplace_app.marketplace.profiles.seller(seller_id=bob.user_id)
    gigs = marketplace_app.marketplace.gigs.of_seller(seller_id=bob.user_id)
    assert seller.total_gigs == gigs.total == 1
    stats = marketplace_app.transport.stats()
    assert stats.dead_lettered == 0
