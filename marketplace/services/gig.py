"""The gig service: sellers' gigs, their search, their ratings, and seeding with demo gigs.

A gig is active, paused or deleted. Search and other sellers see only
active gigs; a seller also sees their paused ones. Deleting is a soft
delete: the gig leaves search and the seller's gig count (`GigDeleted`) but
stays readable by its seller, and a rating that arrives later still applies.
Ratings come from the users service (`GigReviewed`); a rating of a gig that
never existed is refused (dead-lettered), never turned into a new gig.

Seeding (`SeedGigs`) asks the users service for sellers (`SellersRequested`)
and, when they are provided, creates one demo gig per seller, its content
derived from the seller so that a run is repeatable. Each request is
answered once: a second answer to the same request creates nothing.
"""

from __future__ import annotations

import zlib
from typing import Any

from attrs import evolve

from ..commands import Done
from ..commands.gig import (
    CreateGig,
    DeleteGig,
    GetGig,
    GigPage,
    GigStatus,
    GigView,
    ListSellerGigs,
    PauseGig,
    ResumeGig,
    SearchGigs,
    SeedGigs,
    UpdateGig,
)
from ..errors import DomainError, forbidden, invalid_state, not_found
from ..events import GigCreated, GigDeleted, GigReviewed, SellersProvided, SellersRequested, SellerSummary
from ..service import Service, Work, handles
from .gig_records import DEMO_GIGS, Gig, SeedRequest

GIGS = "gigs"
"""Collection of gigs, by gig id."""
SEED_REQUESTS = "seed_requests"
"""Collection of the requests for sellers that seeding sent, by request id."""


class GigService(Service):
    """Keeps the gigs: their sellers change them, buyers search them, ratings accrue to them."""

    name = "gig"
    publishes = frozenset({GigCreated, GigDeleted, SellersRequested})

    # A seller's gigs.

    @handles(CreateGig)
    def do_create_gig(self, work: Work, command: CreateGig) -> GigView:
        """A seller offers a new gig, in their own name only."""
        if _signed_in(work) != command.seller_id:
            raise forbidden("a gig is created by its own seller", "seller_id")
        gig = Gig(
            gig_id=work.new_id(),
            seller_id=command.seller_id,
            seller_username=command.seller_username,
            title=command.title,
            description=command.description,
            category=command.category,
            tags=command.tags,
            price_cents=command.price_cents,
            delivery_days=command.delivery_days,
            created_at=work.now,
        )
        _add(work, gig)
        return gig.view()

    @handles(UpdateGig)
    def do_update_gig(self, work: Work, command: UpdateGig) -> GigView:
        """The seller changes the fields given of a gig that is not deleted."""
        gig = _changeable_gig(work, command.gig_id)
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("title", command.title),
                ("description", command.description),
                ("category", command.category),
                ("tags", command.tags),
                ("price_cents", command.price_cents),
                ("delivery_days", command.delivery_days),
            )
            if value is not None
        }
        gig = evolve(gig, **changes)
        work.put(GIGS, gig.gig_id, gig)
        return gig.view()

    @handles(PauseGig)
    def do_pause_gig(self, work: Work, command: PauseGig) -> GigView:
        """The seller takes an active gig out of search."""
        gig = _changeable_gig(work, command.gig_id)
        if gig.status is not GigStatus.ACTIVE:
            raise invalid_state("the gig is already paused", "status")
        return _with_status(work, gig, GigStatus.PAUSED).view()

    @handles(ResumeGig)
    def do_resume_gig(self, work: Work, command: ResumeGig) -> GigView:
        """The seller puts a paused gig back into search."""
        gig = _changeable_gig(work, command.gig_id)
        if gig.status is not GigStatus.PAUSED:
            raise invalid_state("the gig is not paused", "status")
        return _with_status(work, gig, GigStatus.ACTIVE).view()

    @handles(DeleteGig)
    def do_delete_gig(self, work: Work, command: DeleteGig) -> Done:
        """The seller deletes a gig: it leaves search and the seller's count, and keeps its history."""
        gig = _changeable_gig(work, command.gig_id)
        _with_status(work, gig, GigStatus.DELETED)
        work.emit(GigDeleted(gig_id=gig.gig_id, seller_id=gig.seller_id))
        return Done()

    # Ratings.

    @handles(GigReviewed)
    def when_gig_reviewed(self, work: Work, event: GigReviewed) -> None:
        """A buyer's rating counts for the gig, even a deleted one; an unknown gig is refused."""
        gig: Gig | None = work.get(GIGS, event.gig_id)
        if gig is None:
            raise not_found("gig", "gig_id")
        work.put(GIGS, gig.gig_id, gig.rated(event.rating))

    # Seeding.

    @handles(SeedGigs)
    def do_seed_gigs(self, work: Work, command: SeedGigs) -> Done:
        """Ask the users service for sellers to give demo gigs to."""
        request = SeedRequest(
            request_id=work.new_id(),
            requested_by=_signed_in(work),
            count=command.count,
            requested_at=work.now,
        )
        work.put(SEED_REQUESTS, request.request_id, request)
        work.emit(SellersRequested(request_id=request.request_id, count=request.count))
        return Done()

    @handles(SellersProvided)
    def when_sellers_provided(self, work: Work, event: SellersProvided) -> None:
        """Each seller provided gets one demo gig, once per request."""
        request: SeedRequest | None = work.get(SEED_REQUESTS, event.request_id)
        if request is None:
            raise not_found("seed request", "request_id")
        if request.answered_at is not None:
            return
        for seller in event.sellers[: request.count]:
            _add(work, _demo_gig(work, seller))
        work.put(SEED_REQUESTS, request.request_id, evolve(request, answered_at=work.now))

    # Queries.

    @handles(GetGig)
    def do_get_gig(self, work: Work, query: GetGig) -> GigView:
        """One gig; a deleted gig is found only by its seller."""
        return _visible_gig(work, query.gig_id).view()

    @handles(SearchGigs)
    def do_search_gigs(self, work: Work, query: SearchGigs) -> GigPage:
        """The active gigs matching every criterion given, oldest first."""
        words = query.text.casefold().split() if query.text is not None else []
        found = [
            gig
            for gig in _gigs(work)
            if gig.status is GigStatus.ACTIVE
            and (query.category is None or gig.category is query.category)
            and (query.min_price_cents is None or gig.price_cents >= query.min_price_cents)
            and (query.max_price_cents is None or gig.price_cents <= query.max_price_cents)
            and (query.max_delivery_days is None or gig.delivery_days <= query.max_delivery_days)
            and gig.matches(words)
        ]
        return _page(found, query.page, query.page_size)

    @handles(ListSellerGigs)
    def do_list_seller_gigs(self, work: Work, query: ListSellerGigs) -> GigPage:
        """A seller's gigs: with the paused ones for the seller themself, active ones only for others."""
        shown = {GigStatus.ACTIVE}
        if work.actor_id == query.seller_id:
            shown.add(GigStatus.PAUSED)
        found = [gig for gig in _gigs(work) if gig.seller_id == query.seller_id and gig.status in shown]
        return _page(found, query.page, query.page_size)


def _signed_in(work: Work) -> str:
    """The signed-in user's id; anonymous requests are refused."""
    if work.actor_id is None:
        raise DomainError("unauthenticated", "sign in first")
    return work.actor_id


def _add(work: Work, gig: Gig) -> None:
    """Store a new gig and tell the users service that its seller has one more."""
    work.put(GIGS, gig.gig_id, gig)
    work.emit(GigCreated(gig_id=gig.gig_id, seller_id=gig.seller_id))


def _visible_gig(work: Work, gig_id: str) -> Gig:
    """The gig `gig_id` as the caller may see it: a deleted gig exists only for its seller."""
    gig: Gig | None = work.get(GIGS, gig_id)
    if gig is None or (gig.status is GigStatus.DELETED and gig.seller_id != work.actor_id):
        raise not_found("gig", "gig_id")
    return gig


def _changeable_gig(work: Work, gig_id: str) -> Gig:
    """The signed-in seller's gig `gig_id`, which must not be deleted."""
    actor = _signed_in(work)
    gig = _visible_gig(work, gig_id)
    if gig.seller_id != actor:
        raise forbidden("only the gig's seller may change it", "gig_id")
    if gig.status is GigStatus.DELETED:
        raise invalid_state("the gig is deleted", "status")
    return gig


def _with_status(work: Work, gig: Gig, status: GigStatus) -> Gig:
    """Store `gig` with its new status."""
    gig = evolve(gig, status=status)
    work.put(GIGS, gig.gig_id, gig)
    return gig


def _gigs(work: Work) -> list[Gig]:
    """Every gig, oldest first (ties by id), so that pages are stable."""
    gigs: list[Gig] = work.values(GIGS)
    return sorted(gigs, key=lambda gig: (gig.created_at, gig.gig_id))


def _page(gigs: list[Gig], page: int, page_size: int) -> GigPage:
    """Page `page` of `gigs`, with their total count."""
    start = (page - 1) * page_size
    items = tuple(gig.view() for gig in gigs[start : start + page_size])
    return GigPage(items=items, total=len(gigs), page=page, page_size=page_size)


def _demo_gig(work: Work, seller: SellerSummary) -> Gig:
    """A demo gig for `seller`: the same seller always gets the same content."""
    # crc32, not hash(): Python salts string hashes per process, and seeding must repeat.
    demo = DEMO_GIGS[zlib.crc32(seller.seller_id.encode()) % len(DEMO_GIGS)]
    return Gig(
        gig_id=work.new_id(),
        seller_id=seller.seller_id,
        seller_username=seller.username,
        title=demo.title,
        description=f"{demo.description}\n\nOffered by {seller.username}.",
        category=demo.category,
        tags=demo.tags,
        price_cents=demo.price_cents,
        delivery_days=demo.delivery_days,
        created_at=work.now,
    )
