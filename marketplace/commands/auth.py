"""Commands, queries and replies of the auth service: accounts, e-mail verification, sign-in, passwords.

The command fields check only the shape of what arrives (a well-formed
address, a string of reasonable length); the password policy is the
service's rule and comes back as a refusal naming the field (`password` or
`new_password`). Fields holding a password or a token are left out of the
`repr`, so that a logged command shows none.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from attrs import Attribute, field, frozen

from ..validation import ValidationError, email, identifier, link, name, optional, text, utc_datetime
from . import Command, Query, Reply

MAX_PASSWORD_LENGTH = 1024
MAX_TOKEN_LENGTH = 1024
MIN_USERNAME_LENGTH = 3
MAX_USERNAME_LENGTH = 30

_USERNAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{{MIN_USERNAME_LENGTH - 1},{MAX_USERNAME_LENGTH - 1}}}")

secret = text(blank=True, max_length=MAX_PASSWORD_LENGTH)
"""A password as typed: any string up to 1024 characters (the policy is checked by the service)."""
token = text(max_length=MAX_TOKEN_LENGTH)
"""A token as received in a link: a non-blank string (its signature is checked by the service)."""


def username(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """A username: 3 to 30 ASCII letters, digits, `_`, `.` or `-`, starting with a letter or digit."""
    if type(value) is not str or not _USERNAME.fullmatch(value):
        raise ValidationError(
            attribute.name,
            f"{value!r} is not a username ({MIN_USERNAME_LENGTH}-{MAX_USERNAME_LENGTH} letters, digits, "
            "'_', '.' or '-', starting with a letter or digit)",
        )


# Signing up and verifying the address.


@frozen
class SignUp(Command):
    """Open an account; a verification e-mail follows."""

    username: str = field(validator=username)
    email: str = field(validator=email)
    password: str = field(validator=secret, repr=False)
    country: str = field(validator=name)
    profile_picture_url: str | None = field(default=None, validator=optional(link))


@frozen
class SignedUp(Reply):
    """The account was opened for this user id (it must be verified before signing in)."""

    user_id: str = field(validator=identifier)


@frozen
class ResendVerification(Command):
    """Send the verification e-mail again (answered the same whether or not the account exists)."""

    email: str = field(validator=email)


@frozen
class VerifyEmail(Command):
    """Confirm the address of an account with the token of its verification link."""

    token: str = field(validator=token, repr=False)


# Signing in.


@frozen
class SignIn(Command):
    """Exchange an e-mail address and password for a session token."""

    KEEPS_REPLY = False  # the reply is a session token: not stored; signing in again is harmless

    email: str = field(validator=email)
    password: str = field(validator=secret, repr=False)


@frozen
class SignedIn(Reply):
    """A session token for `user_id`, valid until `expires_at`."""

    token: str = field(validator=token, repr=False)
    user_id: str = field(validator=identifier)
    expires_at: datetime = field(validator=utc_datetime)


# Passwords.


@frozen
class ForgotPassword(Command):
    """Ask for a password reset link (answered the same whether or not the account exists)."""

    email: str = field(validator=email)


@frozen
class ResetPassword(Command):
    """Set a new password with the token of a reset link (each link works once)."""

    token: str = field(validator=token, repr=False)
    new_password: str = field(validator=secret, repr=False)


@frozen
class ChangePassword(Command):
    """The signed-in user replaces their password, giving the current one."""

    current_password: str = field(validator=secret, repr=False)
    new_password: str = field(validator=secret, repr=False)


# The account.


@frozen
class GetAccount(Query):
    """The signed-in user's account."""


@frozen
class AccountView(Reply):
    """An account as its owner sees it; `verified_at` is None until the address is verified."""

    user_id: str = field(validator=identifier)
    username: str = field(validator=username)
    email: str = field(validator=email)
    country: str = field(validator=name)
    profile_picture_url: str | None = field(validator=optional(link))
    registered_at: datetime = field(validator=utc_datetime)
    verified_at: datetime | None = field(validator=optional(utc_datetime))

    @property
    def verified(self) -> bool:
        """Whether the address has been verified."""
        return self.verified_at is not None
