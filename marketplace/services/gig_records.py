"""The gig service's records: gigs, seeding requests, and the demo gigs that seeding hands out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from attrs import evolve, frozen

from ..commands.gig import GigCategory, GigStatus, GigView
from ..validation import MAX_RATING


@frozen
class Gig:
    """A seller's offer of work, with the ratings it received."""

    gig_id: str
    seller_id: str
    seller_username: str
    title: str
    description: str
    category: GigCategory
    tags: tuple[str, ...]
    price_cents: int
    delivery_days: int
    created_at: datetime
    status: GigStatus = GigStatus.ACTIVE
    ratings_count: int = 0
    ratings_sum: int = 0
    rating_categories: tuple[int, ...] = (0,) * MAX_RATING

    def rated(self, rating: int) -> Gig:
        """This gig with one more rating of `rating` stars."""
        categories = list(self.rating_categories)
        categories[rating - 1] += 1
        return evolve(
            self,
            ratings_count=self.ratings_count + 1,
            ratings_sum=self.ratings_sum + rating,
            rating_categories=tuple(categories),
        )

    def matches(self, words: Iterable[str]) -> bool:
        """Whether every word (casefolded) occurs in the title, the description or a tag."""
        haystack = "\n".join((self.title, self.description, *self.tags)).casefold()
        return all(word in haystack for word in words)

    def view(self) -> GigView:
        """The gig as its readers see it."""
        return GigView(
            gig_id=self.gig_id,
            seller_id=self.seller_id,
            seller_username=self.seller_username,
            title=self.title,
            description=self.description,
            category=self.category,
            tags=self.tags,
            price_cents=self.price_cents,
            delivery_days=self.delivery_days,
            status=self.status,
            ratings_count=self.ratings_count,
            ratings_sum=self.ratings_sum,
            rating_categories=self.rating_categories,
            created_at=self.created_at,
        )


@frozen
class SeedRequest:
    """Seeding asked the users service for up to `count` sellers; `answered_at` once gigs were made."""

    request_id: str
    requested_by: str
    count: int
    requested_at: datetime
    answered_at: datetime | None = None


@frozen
class DemoGig:
    """The content of a demo gig, before it is given to a seller."""

    title: str
    description: str
    category: GigCategory
    tags: tuple[str, ...]
    price_cents: int
    delivery_days: int


DEMO_GIGS = (
    DemoGig(
        "I will build a responsive website",
        "A fast, accessible website built with modern tools, tested on phones and desktops.",
        GigCategory.PROGRAMMING,
        ("website", "html", "css"),
        15_000,
        7,
    ),
    DemoGig(
        "I will design a memorable logo",
        "Three logo concepts, unlimited revisions of the one you choose, and every file format.",
        GigCategory.DESIGN,
        ("logo", "branding"),
        5_000,
        3,
    ),
    DemoGig(
        "I will write engaging blog posts",
        "Researched, search-friendly articles of about a thousand words in your brand's voice.",
        GigCategory.WRITING,
        ("blog", "seo", "content"),
        3_000,
        2,
    ),
    DemoGig(
        "I will run your social media campaign",
        "A month of planned posts and ads, with a report of what worked.",
        GigCategory.MARKETING,
        ("social media", "ads"),
        20_000,
        14,
    ),
    DemoGig(
        "I will edit your video",
        "Cuts, colour, captions and music for videos up to ten minutes long.",
        GigCategory.VIDEO,
        ("editing", "youtube"),
        8_000,
        5,
    ),
    DemoGig(
        "I will compose a jingle for your brand",
        "An original thirty-second jingle, mixed and mastered, with full rights.",
        GigCategory.MUSIC,
        ("jingle", "audio"),
        12_000,
        10,
    ),
)
"""The demo gigs seeding chooses from; a seller always gets the same one."""
