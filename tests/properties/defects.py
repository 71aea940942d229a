"""Defects planted in the users service, to show that the state machine finds each through its fault kind.

Each is a context manager that patches the users service's class while it is
open and restores it on exit; the actors look their handlers up on the class
at each message, so every users service running meanwhile has the defect.

- `users_forget_what_they_processed`: the users service applies every
  delivery of an event, as the reference implementation did (no check of the
  ids already processed): a duplicate or a redelivery counts twice.
- `users_keep_the_last_completion`: a seller's `recent_delivery` becomes the
  completion time of the last `OrderCompleted` handled, not the latest one:
  a completion overtaken by a later one (retried after a crash) goes back in
  time.
- `users_commit_ratings_early`: a buyer's rating of a seller is committed in
  a transaction of its own, before the unit of work records the message as
  processed with its outgoing `GigReviewed`: a crash between the two applies
  the rating again when the message is retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from attrs import evolve

from marketplace.events import GigReviewed, OrderCompleted, ReviewAdded, ReviewKind
from marketplace.service import PROCESSED, HandleEvent, Work
from marketplace.services.users import SELLERS, SellerProfile, UsersService


@contextmanager
def users_forget_what_they_processed() -> Iterator[None]:
    """The users service handles every delivery as if it were the first (not idempotent)."""
    handle = UsersService._handle_event

    def forgetful(self: UsersService, message: HandleEvent) -> None:
        with self.context.store.transaction() as tx:
            tx.delete(PROCESSED, message.envelope.message_id)
        handle(self, message)

    with mock.patch.object(UsersService, "_handle_event", forgetful):
        yield


@contextmanager
def users_keep_the_last_completion() -> Iterator[None]:
    """A seller's recent delivery is the last completion handled, not the latest (last write wins)."""
    handle = UsersService.handlers[OrderCompleted]

    def last_write_wins(self: UsersService, work: Work, event: OrderCompleted) -> None:
        handle(self, work, event)
        seller: SellerProfile | None = work.get(SELLERS, event.seller_id)
        assert seller is not None  # the handler just wrote it
        work.put(SELLERS, seller.seller_id, evolve(seller, recent_delivery=event.completed_at))

    with mock.patch.dict(UsersService.handlers, {OrderCompleted: last_write_wins}):
        yield


@contextmanager
def users_commit_ratings_early() -> Iterator[None]:
    """A buyer's rating is committed on its own before the unit of work records its outgoing event."""
    handle = UsersService.handlers[ReviewAdded]

    def commits_early(self: UsersService, work: Work, event: ReviewAdded) -> Any:
        if event.kind is not ReviewKind.BUYER:
            return handle(self, work, event)
        with self.context.store.transaction() as tx:
            seller: SellerProfile = tx.get(SELLERS, event.reviewee_id)
            tx.put(SELLERS, seller.seller_id, seller.rated(event.rating))
        work.emit(GigReviewed(review_id=event.review_id, gig_id=event.gig_id, rating=event.rating))
        return None

    with mock.patch.dict(UsersService.handlers, {ReviewAdded: commits_early}):
        yield
