"""The gateway: the client's API, over the services' request/reply.

    marketplace.accounts.sign_up(...)             # anonymous operations
    me = marketplace.session(token)               # a signed-in user's
    me.gigs.create(...); me.orders.place(gig_id=...)

A session is opened from a session token issued by the auth service and
verified here with the same signing key; a tampered or expired token is
refused. Every call goes to the owning service by request/reply, facts owned
by other services are gathered first, and a call lost to a timeout or a
dropped connection is retried with the same idempotency key.
"""

from __future__ import annotations

from ..security import Purpose, Tokens
from .accounts import Accounts
from .chat import Chat
from .client import ServiceClient, ServiceUnavailable
from .gigs import Gigs
from .orders import Orders
from .profiles import Profiles
from .reviews import Reviews

__all__ = ["Marketplace", "ServiceClient", "ServiceUnavailable", "Session"]


class Session:
    """What a signed-in user can do."""

    def __init__(self, client: ServiceClient, user_id: str) -> None:
        self.user_id = user_id
        self.account = Accounts(client, user_id)
        self.profile = Profiles(client, user_id)
        self.gigs = Gigs(client, user_id)
        self.chat = Chat(client, user_id)
        self.orders = Orders(client, user_id)
        self.reviews = Reviews(client, user_id)

    def __repr__(self) -> str:
        return f"Session(user_id={self.user_id!r})"


class Marketplace:
    """The client's entry point: anonymous operations, and sessions for signed-in users."""

    def __init__(self, client: ServiceClient, tokens: Tokens) -> None:
        self._client = client
        self._tokens = tokens
        self.accounts = Accounts(client, None)
        self.profiles = Profiles(client, None)
        self.gigs = Gigs(client, None)
        self.reviews = Reviews(client, None)

    def session(self, token: str) -> Session:
        """The session of the user `token` was issued to; `DomainError` (unauthenticated) if invalid."""
        claims = self._tokens.verify(token, Purpose.SESSION)
        return Session(self._client, claims.subject)
