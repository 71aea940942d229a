"""Imports every service's commands, so that the protocol knows them all by name."""

from __future__ import annotations

from . import auth, chat, gig, order, review, users

__all__ = ["auth", "chat", "gig", "order", "review", "users"]
