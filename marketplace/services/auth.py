"""The auth service: accounts, e-mail verification, sign-in, and password reset and change.

Rules (see `shared/design/architecture.md`, Security):

- Passwords are kept only as salted scrypt hashes (`PasswordHasher`) and must
  pass the policy (`marketplace.security.password_problem`). Usernames and
  e-mail addresses are unique, both compared without regard to case.
- No event carries a password, a hash or a session token; the verification
  and reset e-mails' events carry the links those e-mails need, and only the
  notification service receives them.
- Sign-in refuses a wrong e-mail address and a wrong password with the same
  error (`invalid-credentials` on `password`), and an unverified account only
  once the password is right. After `max_failed_sign_ins` failures for one
  address within `failure_window` (counted whether or not the account
  exists, so that throttling reveals nothing), that address is refused with
  `too-many-attempts` until the oldest failure leaves the window.
- "Forgot password" and "resend verification" answer the same whether or
  not the account exists, and publish only when it does.
- A reset link works once: the account remembers the nonce of the latest
  reset token and forgets it when the password changes, so a used, an
  older, or a replaced link is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from attrs import evolve, frozen

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
from ..errors import DomainError, conflict, invalid, not_found
from ..events import (
    PasswordChanged,
    PasswordChangeReason,
    PasswordResetRequested,
    UserRegistered,
    VerificationEmailRequested,
    VerificationReason,
)
from ..security import PasswordHasher, Purpose, Tokens, password_problem
from ..service import Context, Service, Work, handles
from .emails import Links

ACCOUNTS = "accounts"
"""Collection of accounts, by user id."""
EMAILS = "account_emails"
"""Index: lower-cased e-mail address -> user id."""
USERNAMES = "account_usernames"
"""Index: lower-cased username -> user id."""
FAILURES = "sign_in_failures"
"""Recent failed sign-ins, by lower-cased e-mail address (whether or not an account has it)."""

SESSION_TTL = timedelta(hours=24)
VERIFICATION_TTL = timedelta(hours=48)
RESET_TTL = timedelta(hours=1)
MAX_FAILED_SIGN_INS = 5
FAILURE_WINDOW = timedelta(minutes=15)


@frozen
class Account:
    """A user's credentials and identity; `reset_nonce` names the one reset link that still works."""

    user_id: str
    username: str
    email: str
    country: str
    profile_picture_url: str | None
    password_hash: str
    registered_at: datetime
    password_changed_at: datetime
    verified_at: datetime | None = None
    reset_nonce: str | None = None

    def view(self) -> AccountView:
        """The account as its owner sees it."""
        return AccountView(
            user_id=self.user_id,
            username=self.username,
            email=self.email,
            country=self.country,
            profile_picture_url=self.profile_picture_url,
            registered_at=self.registered_at,
            verified_at=self.verified_at,
        )


@frozen
class SignInFailures:
    """When sign-ins with one e-mail address failed lately (oldest first)."""

    times: tuple[datetime, ...] = ()


def _key(text: str) -> str:
    """The form under which usernames and e-mail addresses are compared."""
    return text.lower()


def _invalid_credentials(field: str) -> DomainError:
    if field == "current_password":
        message = "the current password is incorrect"
    else:
        message = "the e-mail address or password is incorrect"
    return DomainError("invalid-credentials", message, field)


def _check_new_password(password: str, field: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise invalid(field, problem)


class AuthService(Service):
    """Opens accounts, verifies addresses, signs users in, resets and changes passwords.

    Dependencies: `tokens` (signs the session, verification and reset
    tokens), `passwords` (the password hasher and its cost), `public_url`
    (the site the e-mailed links point to); optionally the lifetimes of
    session, verification and reset tokens, and the sign-in throttle.
    """

    name = "auth"
    publishes = frozenset(
        {UserRegistered, VerificationEmailRequested, PasswordResetRequested, PasswordChanged}
    )

    def __init__(
        self,
        context: Context,
        on_crash: Callable[[Service], None] | None = None,
        *,
        tokens: Tokens,
        passwords: PasswordHasher,
        public_url: str,
        session_ttl: timedelta = SESSION_TTL,
        verification_ttl: timedelta = VERIFICATION_TTL,
        reset_ttl: timedelta = RESET_TTL,
        max_failed_sign_ins: int = MAX_FAILED_SIGN_INS,
        failure_window: timedelta = FAILURE_WINDOW,
    ) -> None:
        super().__init__(context, on_crash)
        self._tokens = tokens
        self._passwords = passwords
        self._links = Links(public_url)
        self._session_ttl = session_ttl
        self._verification_ttl = verification_ttl
        self._reset_ttl = reset_ttl
        self._max_failures = max_failed_sign_ins
        self._failure_window = failure_window
        # Checked when the address is unknown, so that a wrong address costs as much time as a wrong password.
        self._decoy_hash = passwords.hash(secrets.token_urlsafe(16))

    # Signing up and verifying the address.

    @handles(SignUp)
    def do_sign_up(self, work: Work, command: SignUp) -> SignedUp:
        """A new account with a unique username and address; users hears of it, the user gets a link."""
        _check_new_password(command.password, "password")
        if work.get(USERNAMES, _key(command.username)) is not None:
            raise conflict("this username is taken", "username")
        if work.get(EMAILS, _key(command.email)) is not None:
            raise conflict("an account with this e-mail address exists", "email")
        account = Account(
            user_id=work.new_id(),
            username=command.username,
            email=command.email,
            country=command.country,
            profile_picture_url=command.profile_picture_url,
            password_hash=self._passwords.hash(command.password),
            registered_at=work.now,
            password_changed_at=work.now,
        )
        work.put(ACCOUNTS, account.user_id, account)
        work.put(USERNAMES, _key(account.username), account.user_id)
        work.put(EMAILS, _key(account.email), account.user_id)
        work.emit(
            UserRegistered(
                user_id=account.user_id,
                username=account.username,
                email=account.email,
                country=account.country,
                profile_picture_url=account.profile_picture_url,
                registered_at=account.registered_at,
            )
        )
        self._send_verification(work, account, VerificationReason.SIGN_UP)
        return SignedUp(account.user_id)

    @handles(ResendVerification)
    def do_resend_verification(self, work: Work, command: ResendVerification) -> Done:
        """An unverified account gets a new verification link; anything else gets the same answer."""
        account = self._account_with_email(work, command.email)
        if account is not None and account.verified_at is None:
            self._send_verification(work, account, VerificationReason.RESEND)
        return Done()

    @handles(VerifyEmail)
    def do_verify_email(self, work: Work, command: VerifyEmail) -> Done:
        """A genuine, unexpired verification token verifies its account (once; later uses change nothing)."""
        claims = self._tokens.verify(command.token, Purpose.VERIFY_EMAIL, now=work.now)
        account = self._account(work, claims.subject)
        if account.verified_at is None:
            work.put(ACCOUNTS, account.user_id, evolve(account, verified_at=work.now))
        return Done()

    # Signing in.

    @handles(SignIn)
    def do_sign_in(self, work: Work, command: SignIn) -> SignedIn:
        """The right password of a verified account, not throttled, gives a session token."""
        account = self._account_with_email(work, command.email)
        account = self._check_password(work, _key(command.email), account, command.password, "password")
        if account.verified_at is None:
            raise DomainError("email-not-verified", "verify your e-mail address before signing in", "email")
        self._forget_failures(work, _key(command.email))
        expires_at = work.now + self._session_ttl
        token = self._tokens.issue(account.user_id, Purpose.SESSION, self._session_ttl, now=work.now)
        return SignedIn(token=token, user_id=account.user_id, expires_at=expires_at)

    # Passwords.

    @handles(ForgotPassword)
    def do_forgot_password(self, work: Work, command: ForgotPassword) -> Done:
        """An existing account gets a reset link (replacing any earlier one); any address, the same answer."""
        account = self._account_with_email(work, command.email)
        if account is None:
            return Done()
        nonce = work.new_id()
        token = self._tokens.issue(
            account.user_id, Purpose.RESET_PASSWORD, self._reset_ttl, now=work.now, nonce=nonce
        )
        work.put(ACCOUNTS, account.user_id, evolve(account, reset_nonce=nonce))
        work.emit(
            PasswordResetRequested(
                user_id=account.user_id,
                username=account.username,
                email=account.email,
                reset_link=self._links.reset_password(token),
                expires_at=work.now + self._reset_ttl,
            )
        )
        return Done()

    @handles(ResetPassword)
    def do_reset_password(self, work: Work, command: ResetPassword) -> Done:
        """The latest, unused, unexpired reset token sets a new password."""
        claims = self._tokens.verify(command.token, Purpose.RESET_PASSWORD, now=work.now)
        account = self._account(work, claims.subject)
        if account.reset_nonce is None or account.reset_nonce != claims.nonce:
            raise DomainError("unauthenticated", "this reset link was already used or replaced", "token")
        _check_new_password(command.new_password, "new_password")
        self._forget_failures(work, _key(account.email))
        self._set_password(work, account, command.new_password, PasswordChangeReason.RESET)
        return Done()

    @handles(ChangePassword)
    def do_change_password(self, work: Work, command: ChangePassword) -> Done:
        """The signed-in user, giving the current password, sets a different, policy-abiding one."""
        account = self._signed_in(work)
        key = _key(account.email)
        self._check_password(work, key, account, command.current_password, "current_password")
        _check_new_password(command.new_password, "new_password")
        if command.new_password == command.current_password:
            raise invalid("new_password", "must differ from the current password")
        self._forget_failures(work, key)
        self._set_password(work, account, command.new_password, PasswordChangeReason.CHANGE)
        return Done()

    # The account.

    @handles(GetAccount)
    def do_get_account(self, work: Work, query: GetAccount) -> AccountView:
        """The signed-in user's own account."""
        return self._signed_in(work).view()

    # Steps shared by the handlers.

    def _account(self, work: Work, user_id: str) -> Account:
        account: Account | None = work.get(ACCOUNTS, user_id)
        if account is None:
            raise not_found("account", "user_id")
        return account

    def _account_with_email(self, work: Work, address: str) -> Account | None:
        user_id = work.get(EMAILS, _key(address))
        return None if user_id is None else self._account(work, user_id)

    def _signed_in(self, work: Work) -> Account:
        if work.actor_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._account(work, work.actor_id)

    def _send_verification(self, work: Work, account: Account, reason: VerificationReason) -> None:
        token = self._tokens.issue(
            account.user_id, Purpose.VERIFY_EMAIL, self._verification_ttl, now=work.now, nonce=work.new_id()
        )
        work.emit(
            VerificationEmailRequested(
                user_id=account.user_id,
                username=account.username,
                email=account.email,
                verify_link=self._links.verify_email(token),
                reason=reason,
            )
        )

    def _set_password(
        self, work: Work, account: Account, password: str, reason: PasswordChangeReason
    ) -> None:
        changed = evolve(
            account,
            password_hash=self._passwords.hash(password),
            password_changed_at=work.now,
            reset_nonce=None,
        )
        work.put(ACCOUNTS, account.user_id, changed)
        work.emit(
            PasswordChanged(
                user_id=account.user_id,
                username=account.username,
                email=account.email,
                reason=reason,
                changed_at=work.now,
            )
        )

    # Throttling.

    def _check_password(
        self, work: Work, key: str, account: Account | None, password: str, field: str
    ) -> Account:
        """`account`, unless the address is throttled or the password wrong (a failure that counts)."""
        failures = self._recent_failures(work, key)
        if len(failures) >= self._max_failures:
            retry_at = failures[0] + self._failure_window
            raise DomainError(
                "too-many-attempts",
                f"too many failed attempts; try again after {retry_at:%H:%M} UTC",
                "email",
            )
        stored = self._decoy_hash if account is None else account.password_hash
        if self._passwords.verify(password, stored) and account is not None:
            return account
        # The refusal below discards this unit of work, yet the failure must count: it is recorded apart.
        with self.context.store.transaction() as tx:
            tx.put(FAILURES, key, SignInFailures((*failures, work.now)))
        raise _invalid_credentials(field)

    def _recent_failures(self, work: Work, key: str) -> tuple[datetime, ...]:
        record: SignInFailures | None = work.get(FAILURES, key)
        if record is None:
            return ()
        return tuple(t for t in record.times if t > work.now - self._failure_window)

    def _forget_failures(self, work: Work, key: str) -> None:
        if work.get(FAILURES, key) is not None:
            work.put(FAILURES, key, SignInFailures())
