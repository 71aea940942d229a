"""The gateway's account API: signing up and in, verifying the address, resetting and changing passwords."""

from __future__ import annotations

from ..commands import Done
from ..commands.auth import (
    AccountView,
    ChangePassword,
    ForgotPassword,
    GetAccount,
    ResendVerification,
    ResetPassword,
    SignedIn,
    SignedUp,
    SignIn,
    SignUp,
    VerifyEmail,
)
from ..errors import DomainError
from .client import ServiceClient

SERVICE = "auth"


class Accounts:
    """Account operations for an anonymous visitor, or for the signed-in `user_id`."""

    def __init__(self, client: ServiceClient, user_id: str | None = None) -> None:
        self._client = client
        self._user_id = user_id

    def sign_up(
        self,
        *,
        username: str,
        email: str,
        password: str,
        country: str,
        profile_picture_url: str | None = None,
    ) -> SignedUp:
        """Open an account; its address must be verified (by the e-mailed link) before signing in."""
        command = SignUp(
            username=username,
            email=email,
            password=password,
            country=country,
            profile_picture_url=profile_picture_url,
        )
        return self._client.send(SERVICE, command, SignedUp)

    def resend_verification(self, *, email: str) -> Done:
        """Send the verification e-mail again, if an unverified account has this address."""
        return self._client.send(SERVICE, ResendVerification(email=email), Done)

    def verify_email(self, *, token: str) -> Done:
        """Verify an address with the token of its verification link."""
        return self._client.send(SERVICE, VerifyEmail(token=token), Done)

    def sign_in(self, *, email: str, password: str) -> SignedIn:
        """A session token for a verified account's address and password."""
        return self._client.send(SERVICE, SignIn(email=email, password=password), SignedIn)

    def forgot_password(self, *, email: str) -> Done:
        """Send a password reset link, if an account has this address (the answer is the same either way)."""
        return self._client.send(SERVICE, ForgotPassword(email=email), Done)

    def reset_password(self, *, token: str, new_password: str) -> Done:
        """Set a new password with the token of a reset link."""
        return self._client.send(SERVICE, ResetPassword(token=token, new_password=new_password), Done)

    def change_password(self, *, current_password: str, new_password: str) -> Done:
        """The signed-in user replaces their password."""
        command = ChangePassword(current_password=current_password, new_password=new_password)
        return self._client.send(SERVICE, command, Done, actor_id=self._signed_in())

    def account(self) -> AccountView:
        """The signed-in user's account."""
        return self._client.send(SERVICE, GetAccount(), AccountView, actor_id=self._signed_in())

    def _signed_in(self) -> str:
        if self._user_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._user_id
