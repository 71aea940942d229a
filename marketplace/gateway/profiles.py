"""The client API of user profiles: becoming a seller, reading sellers' and one's own profile.

`GetUser` (any user's address) is for the gateway's own fact gathering, so it
is deliberately not offered here: a client sees others only through their
public seller profile.
"""

from __future__ import annotations

from ..commands.users import (
    BecomeSeller,
    BuyerView,
    GetBuyer,
    GetSeller,
    SellerView,
    UpdateSeller,
)
from ..errors import DomainError
from .client import ServiceClient

USERS = "users"


class Profiles:
    """Profiles as seen by `user_id` (None: an anonymous visitor)."""

    def __init__(self, client: ServiceClient, user_id: str | None) -> None:
        self._client = client
        self._user_id = user_id

    def become_seller(
        self,
        *,
        full_name: str,
        description: str,
        skills: tuple[str, ...] = (),
        languages: tuple[str, ...] = (),
    ) -> SellerView:
        """The signed-in user opens a seller profile."""
        command = BecomeSeller(
            full_name=full_name, description=description, skills=skills, languages=languages
        )
        return self._client.send(USERS, command, SellerView, actor_id=self._signed_in())

    def update_seller(
        self,
        *,
        full_name: str | None = None,
        description: str | None = None,
        skills: tuple[str, ...] | None = None,
        languages: tuple[str, ...] | None = None,
    ) -> SellerView:
        """The signed-in seller changes the fields given."""
        command = UpdateSeller(
            full_name=full_name, description=description, skills=skills, languages=languages
        )
        return self._client.send(USERS, command, SellerView, actor_id=self._signed_in())

    def seller(self, *, seller_id: str) -> SellerView:
        """A seller's public profile and figures."""
        return self._client.send(USERS, GetSeller(seller_id), SellerView, actor_id=self._user_id)

    def buyer(self) -> BuyerView:
        """The signed-in user's own buyer profile, with the gigs they bought."""
        user_id = self._signed_in()
        return self._client.send(USERS, GetBuyer(user_id), BuyerView, actor_id=user_id)

    def _signed_in(self) -> str:
        if self._user_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._user_id
