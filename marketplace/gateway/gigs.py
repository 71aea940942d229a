"""The client API of gigs: sellers manage theirs, everyone searches and reads them."""

from __future__ import annotations

from ..commands import Done
from ..commands.gig import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CreateGig,
    DeleteGig,
    GetGig,
    GigCategory,
    GigPage,
    GigView,
    ListSellerGigs,
    PauseGig,
    ResumeGig,
    SearchGigs,
    SeedGigs,
    UpdateGig,
)
from ..commands.users import GetUser, SellerStatus, UserView
from ..errors import DomainError
from .client import ServiceClient

GIG = "gig"
USERS = "users"


class Gigs:
    """Gigs as seen by `user_id` (None: an anonymous visitor)."""

    def __init__(self, client: ServiceClient, user_id: str | None) -> None:
        self._client = client
        self._user_id = user_id

    def create(
        self,
        *,
        title: str,
        description: str,
        category: GigCategory,
        tags: tuple[str, ...] = (),
        price_cents: int,
        delivery_days: int,
    ) -> GigView:
        """The signed-in seller offers a new gig; a user who is not a seller is refused."""
        actor = self._signed_in()
        user = self._client.send(USERS, GetUser(actor), UserView, actor_id=actor)
        if user.status is not SellerStatus.SELLER:
            raise DomainError("forbidden", "only sellers may create gigs", "user_id")
        command = CreateGig(
            seller_id=actor,
            seller_username=user.username,
            title=title,
            description=description,
            category=category,
            tags=tags,
            price_cents=price_cents,
            delivery_days=delivery_days,
        )
        return self._client.send(GIG, command, GigView, actor_id=actor)

    def update(
        self,
        *,
        gig_id: str,
        title: str | None = None,
        description: str | None = None,
        category: GigCategory | None = None,
        tags: tuple[str, ...] | None = None,
        price_cents: int | None = None,
        delivery_days: int | None = None,
    ) -> GigView:
        """The seller changes the fields given of their gig."""
        command = UpdateGig(
            gig_id=gig_id,
            title=title,
            description=description,
            category=category,
            tags=tags,
            price_cents=price_cents,
            delivery_days=delivery_days,
        )
        return self._client.send(GIG, command, GigView, actor_id=self._signed_in())

    def pause(self, *, gig_id: str) -> GigView:
        """The seller takes their gig out of search."""
        return self._client.send(GIG, PauseGig(gig_id), GigView, actor_id=self._signed_in())

    def resume(self, *, gig_id: str) -> GigView:
        """The seller puts their paused gig back into search."""
        return self._client.send(GIG, ResumeGig(gig_id), GigView, actor_id=self._signed_in())

    def delete(self, *, gig_id: str) -> Done:
        """The seller deletes their gig (it keeps its history)."""
        return self._client.send(GIG, DeleteGig(gig_id), Done, actor_id=self._signed_in())

    def get(self, *, gig_id: str) -> GigView:
        """One gig."""
        return self._client.send(GIG, GetGig(gig_id), GigView, actor_id=self._user_id)

    def search(
        self,
        *,
        text: str | None = None,
        category: GigCategory | None = None,
        min_price_cents: int | None = None,
        max_price_cents: int | None = None,
        max_delivery_days: int | None = None,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> GigPage:
        """Active gigs matching every criterion given."""
        query = SearchGigs(
            text=text,
            category=category,
            min_price_cents=min_price_cents,
            max_price_cents=max_price_cents,
            max_delivery_days=max_delivery_days,
            page=page,
            page_size=page_size,
        )
        return self._client.send(GIG, query, GigPage, actor_id=self._user_id)

    def of_seller(self, *, seller_id: str, page: int = 1, page_size: int = MAX_PAGE_SIZE) -> GigPage:
        """A seller's gigs (their paused ones too, when the seller asks)."""
        query = ListSellerGigs(seller_id=seller_id, page=page, page_size=page_size)
        return self._client.send(GIG, query, GigPage, actor_id=self._user_id)

    def seed(self, *, count: int) -> Done:
        """Give demo gigs to up to `count` sellers (they appear once the users service answers)."""
        return self._client.send(GIG, SeedGigs(count), Done, actor_id=self._signed_in())

    def _signed_in(self) -> str:
        if self._user_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._user_id
