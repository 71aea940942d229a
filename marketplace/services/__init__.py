"""The seven services of the marketplace, each a pykka actor on its own store."""

from __future__ import annotations

from ..service import Service
from .auth import AuthService
from .chat import ChatService
from .gig import GigService
from .notification import NotificationService
from .order import OrderService
from .review import ReviewService
from .users import UsersService

SERVICES: tuple[type[Service], ...] = (
    AuthService,
    UsersService,
    GigService,
    ChatService,
    OrderService,
    ReviewService,
    NotificationService,
)
"""Every service; the wiring (who publishes what to whom) is derived from their declarations."""

__all__ = [
    "SERVICES",
    "AuthService",
    "ChatService",
    "GigService",
    "NotificationService",
    "OrderService",
    "ReviewService",
    "UsersService",
]
