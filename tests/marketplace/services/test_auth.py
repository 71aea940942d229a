"""The auth service: sign-up, verification, sign-in and its throttle, password reset and change, secrets.

The service runs with a fast password hasher (`PasswordHasher(cost=2**4)`),
tokens signed with a test key on the harness's fake clock, and
`public_url=http://localhost:8000`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from marketplace import codec, protocol
from marketplace.commands import Command, Done, Query, Request
from marketplace.commands.auth import (
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
from marketplace.errors import DomainError
from marketplace.events import (
    PasswordChanged,
    PasswordChangeReason,
    PasswordResetRequested,
    UserRegistered,
    VerificationEmailRequested,
    VerificationReason,
)
from marketplace.gateway.accounts import Accounts
from marketplace.gateway.client import ServiceClient
from marketplace.security import PasswordHasher, Purpose, Tokens
from marketplace.services.auth import ACCOUNTS, AuthService
from marketplace.validation import ValidationError
from tests.marketplace.harness import START, FakeClock, ServiceHarness, running

KEY = b"test-signing-key-of-32-bytes-min"
PUBLIC_URL = "http://localhost:8000"
PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple"
ANN = "ann@example.com"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens(clock: FakeClock) -> Tokens:
    return Tokens(KEY, clock)


def start_auth(clock: FakeClock, **options: Any) -> Iterator[ServiceHarness]:
    return running(
        AuthService,
        clock=clock,
        tokens=Tokens(KEY, clock),
        passwords=PasswordHasher(cost=2**4),
        public_url=PUBLIC_URL,
        **options,
    )


@pytest.fixture
def auth(clock: FakeClock) -> Iterator[ServiceHarness]:
    yield from start_auth(clock)


# Steps.


def sign_up(auth: ServiceHarness, username: str = "ann", email: str = ANN, password: str = PASSWORD) -> str:
    reply = auth.request(SignUp(username=username, email=email, password=password, country="Norway"))
    assert isinstance(reply, SignedUp)
    return reply.user_id


def token_of(link: str) -> str:
    [token] = parse_qs(urlsplit(link).query)["token"]
    return token


def last_verification_token(auth: ServiceHarness) -> str:
    return token_of(auth.events(VerificationEmailRequested)[-1].verify_link)


def last_reset_token(auth: ServiceHarness) -> str:
    return token_of(auth.events(PasswordResetRequested)[-1].reset_link)


def verified_user(auth: ServiceHarness, username: str = "ann", email: str = ANN) -> str:
    user_id = sign_up(auth, username, email)
    auth.request(VerifyEmail(token=last_verification_token(auth)))
    return user_id


def sign_in(auth: ServiceHarness, email: str = ANN, password: str = PASSWORD) -> SignedIn:
    reply = auth.request(SignIn(email=email, password=password))
    assert isinstance(reply, SignedIn)
    return reply


def refusal(auth: ServiceHarness, body: Command | Query, *, actor_id: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as refused:
        auth.request(body, actor_id=actor_id)
    return refused.value


def fail_sign_in(auth: ServiceHarness, times: int, email: str = ANN) -> None:
    for _ in range(times):
        assert refusal(auth, SignIn(email=email, password="wrong password")).code == "invalid-credentials"


def forgot_and_reset(auth: ServiceHarness, email: str = ANN, password: str = NEW_PASSWORD) -> None:
    auth.request(ForgotPassword(email=email))
    auth.request(ResetPassword(token=last_reset_token(auth), new_password=password))


# Signing up.


def test_sign_up_opens_an_account_and_tells_users(auth: ServiceHarness) -> None:
    user_id = sign_up(auth)
    [registered] = auth.events(UserRegistered)
    assert registered == UserRegistered(
        user_id=user_id,
        username="ann",
        email=ANN,
        country="Norway",
        profile_picture_url=None,
        registered_at=START,
    )


def test_sign_up_passes_the_profile_picture_on(auth: ServiceHarness) -> None:
    picture = "https://cdn.example.com/ann.png"
    auth.request(
        SignUp(username="ann", email=ANN, password=PASSWORD, country="Norway", profile_picture_url=picture)
    )
    assert auth.events(UserRegistered)[0].profile_picture_url == picture


def test_sign_up_sends_a_verification_link(auth: ServiceHarness, tokens: Tokens) -> None:
    user_id = sign_up(auth)
    [requested] = auth.events(VerificationEmailRequested)
    assert (requested.user_id, requested.username, requested.email) == (user_id, "ann", ANN)
    assert requested.reason is VerificationReason.SIGN_UP
    assert requested.verify_link.startswith(f"{PUBLIC_URL}/verify-email?token=")
    claims = tokens.verify(token_of(requested.verify_link), Purpose.VERIFY_EMAIL)
    assert claims.subject == user_id


def test_a_new_account_is_not_verified(auth: ServiceHarness) -> None:
    user_id = sign_up(auth)
    account = auth.request(GetAccount(), actor_id=user_id)
    assert account == AccountView(
        user_id=user_id,
        username="ann",
        email=ANN,
        country="Norway",
        profile_picture_url=None,
        registered_at=START,
        verified_at=None,
    )
    assert not account.verified


@pytest.mark.parametrize("username", ["ann", "ANN", "Ann"])
def test_a_taken_username_is_refused_whatever_its_case(auth: ServiceHarness, username: str) -> None:
    sign_up(auth)
    error = refusal(
        auth, SignUp(username=username, email="other@example.com", password=PASSWORD, country="X")
    )
    assert (error.code, error.field) == ("conflict", "username")


@pytest.mark.parametrize("email", [ANN, "ANN@example.com", "ann@EXAMPLE.COM"])
def test_a_taken_email_is_refused_whatever_its_case(auth: ServiceHarness, email: str) -> None:
    sign_up(auth)
    error = refusal(auth, SignUp(username="ann2", email=email, password=PASSWORD, country="X"))
    assert (error.code, error.field) == ("conflict", "email")


@pytest.mark.parametrize("password", ["", "short", "1234567", "aaaaaaaaaaaa"])
def test_a_weak_password_is_refused_at_sign_up(auth: ServiceHarness, password: str) -> None:
    error = refusal(auth, SignUp(username="ann", email=ANN, password=password, country="Norway"))
    assert (error.code, error.field) == ("invalid", "password")


def test_a_refused_sign_up_opens_nothing_and_publishes_nothing(auth: ServiceHarness) -> None:
    refusal(auth, SignUp(username="ann", email=ANN, password="short", country="Norway"))
    assert auth.published == []
    assert sign_up(auth)  # neither the username nor the address was taken by the refused attempt


def test_a_retried_sign_up_opens_one_account(auth: ServiceHarness) -> None:
    command = SignUp(username="ann", email=ANN, password=PASSWORD, country="Norway")
    first = auth.request(command, key="sign-up-1")
    published = list(auth.published)
    second = auth.request(command, key="sign-up-1")
    assert first == second
    assert auth.published == published * 2  # the same events, republished, not new ones
    assert len(auth.store.snapshot()[ACCOUNTS]) == 1


@pytest.mark.parametrize("username", ["an", "a" * 31, "ann smith", "_ann", "änn"])
def test_a_malformed_username_is_refused_before_reaching_the_service(username: str) -> None:
    with pytest.raises(ValidationError) as refused:
        SignUp(username=username, email=ANN, password=PASSWORD, country="Norway")
    assert refused.value.field == "username"


def test_commands_and_replies_do_not_show_passwords_or_tokens() -> None:
    shown = repr(
        [
            SignUp(username="ann", email=ANN, password="s3cret-pw", country="Norway"),
            SignIn(email=ANN, password="s3cret-pw"),
            ResetPassword(token="s3cret-token", new_password="s3cret-pw"),
            ChangePassword(current_password="s3cret-pw", new_password="s3cret-pw"),
            VerifyEmail(token="s3cret-token"),
            SignedIn(token="s3cret-token", user_id="u1", expires_at=START),
        ]
    )
    assert "s3cret" not in shown


# Verifying the address.


def test_the_verification_link_verifies_the_account(auth: ServiceHarness, clock: FakeClock) -> None:
    user_id = sign_up(auth)
    clock.advance(hours=1)
    assert auth.request(VerifyEmail(token=last_verification_token(auth))) == Done()
    account = auth.request(GetAccount(), actor_id=user_id)
    assert account.verified_at == START + timedelta(hours=1)


def test_verifying_twice_changes_nothing(auth: ServiceHarness, clock: FakeClock) -> None:
    user_id = sign_up(auth)
    token = last_verification_token(auth)
    auth.request(VerifyEmail(token=token))
    clock.advance(hours=1)
    assert auth.request(VerifyEmail(token=token)) == Done()
    assert auth.request(GetAccount(), actor_id=user_id).verified_at == START
    assert auth.events(PasswordChanged) == []


def test_verification_publishes_nothing(auth: ServiceHarness) -> None:
    sign_up(auth)
    before = len(auth.published)
    auth.request(VerifyEmail(token=last_verification_token(auth)))
    assert len(auth.published) == before


def test_an_expired_verification_link_is_refused(auth: ServiceHarness, clock: FakeClock) -> None:
    user_id = sign_up(auth)
    clock.advance(hours=48)
    error = refusal(auth, VerifyEmail(token=last_verification_token(auth)))
    assert (error.code, error.field, error.message) == ("unauthenticated", "token", "token expired")
    assert auth.request(GetAccount(), actor_id=user_id).verified_at is None


def test_a_tampered_verification_link_is_refused(auth: ServiceHarness) -> None:
    sign_up(auth)
    token = last_verification_token(auth)
    tampered = ("B" if token[0] == "A" else "A") + token[1:]
    error = refusal(auth, VerifyEmail(token=tampered))
    assert (error.code, error.field) == ("unauthenticated", "token")


def test_a_token_for_another_purpose_cannot_verify_an_address(auth: ServiceHarness, tokens: Tokens) -> None:
    user_id = sign_up(auth)
    auth.request(ForgotPassword(email=ANN))
    for token in (last_reset_token(auth), tokens.issue(user_id, Purpose.SESSION, timedelta(hours=1))):
        error = refusal(auth, VerifyEmail(token=token))
        assert (error.code, error.field) == ("unauthenticated", "token")
    assert auth.request(GetAccount(), actor_id=user_id).verified_at is None


def test_resend_sends_a_new_link_to_an_unverified_account(auth: ServiceHarness, clock: FakeClock) -> None:
    user_id = sign_up(auth)
    clock.advance(hours=47)
    assert auth.request(ResendVerification(email="ANN@example.com")) == Done()
    first, second = auth.events(VerificationEmailRequested)
    assert second.reason is VerificationReason.RESEND
    assert (second.user_id, second.email) == (user_id, ANN)
    assert second.verify_link != first.verify_link
    clock.advance(hours=2)  # the first link has expired, the second has not
    assert refusal(auth, VerifyEmail(token=token_of(first.verify_link))).message == "token expired"
    auth.request(VerifyEmail(token=token_of(second.verify_link)))
    assert auth.request(GetAccount(), actor_id=user_id).verified


@pytest.mark.parametrize("email", ["nobody@example.com", ANN])
def test_resend_answers_the_same_and_sends_nothing_for_unknown_or_verified_addresses(
    auth: ServiceHarness, email: str
) -> None:
    verified_user(auth)
    before = len(auth.published)
    assert auth.request(ResendVerification(email=email)) == Done()
    assert len(auth.published) == before


# Signing in.


def test_a_verified_user_signs_in_for_24_hours(auth: ServiceHarness, tokens: Tokens) -> None:
    user_id = verified_user(auth)
    signed_in = sign_in(auth)
    assert (signed_in.user_id, signed_in.expires_at) == (user_id, START + timedelta(hours=24))
    claims = tokens.verify(signed_in.token, Purpose.SESSION)
    assert (claims.subject, claims.expires_at) == (user_id, signed_in.expires_at)


def test_the_session_token_expires(auth: ServiceHarness, tokens: Tokens, clock: FakeClock) -> None:
    verified_user(auth)
    token = sign_in(auth).token
    clock.advance(hours=24)
    with pytest.raises(DomainError, match="expired"):
        tokens.verify(token, Purpose.SESSION)


def test_the_session_lifetime_is_configurable(clock: FakeClock) -> None:
    for auth in start_auth(clock, session_ttl=timedelta(hours=1)):
        verified_user(auth)
        assert sign_in(auth).expires_at == START + timedelta(hours=1)


def test_a_session_token_is_not_a_reset_or_verification_token(auth: ServiceHarness) -> None:
    verified_user(auth)
    token = sign_in(auth).token
    assert refusal(auth, ResetPassword(token=token, new_password=NEW_PASSWORD)).field == "token"
    assert refusal(auth, VerifyEmail(token=token)).field == "token"


def test_sign_in_ignores_the_case_of_the_address(auth: ServiceHarness) -> None:
    user_id = verified_user(auth, email="Ann@Example.com")
    assert sign_in(auth, email="ann@example.COM").user_id == user_id


def test_sign_in_publishes_nothing(auth: ServiceHarness) -> None:
    verified_user(auth)
    before = len(auth.published)
    sign_in(auth)
    assert len(auth.published) == before


def test_an_unverified_account_cannot_sign_in(auth: ServiceHarness) -> None:
    sign_up(auth)
    error = refusal(auth, SignIn(email=ANN, password=PASSWORD))
    assert (error.code, error.field) == ("email-not-verified", "email")


def test_an_unverified_account_with_a_wrong_password_learns_nothing_more(auth: ServiceHarness) -> None:
    sign_up(auth)
    error = refusal(auth, SignIn(email=ANN, password="wrong password"))
    assert (error.code, error.field) == ("invalid-credentials", "password")


def test_a_wrong_password_and_an_unknown_address_get_the_same_refusal(auth: ServiceHarness) -> None:
    verified_user(auth)
    wrong_password = refusal(auth, SignIn(email=ANN, password="wrong password"))
    unknown_address = refusal(auth, SignIn(email="nobody@example.com", password=PASSWORD))
    assert wrong_password.as_dict() == unknown_address.as_dict()
    assert (wrong_password.code, wrong_password.field) == ("invalid-credentials", "password")


# The sign-in throttle: 5 failures per address in 15 minutes.


def test_five_failures_lock_the_address_even_against_the_right_password(auth: ServiceHarness) -> None:
    verified_user(auth)
    fail_sign_in(auth, 5)
    error = refusal(auth, SignIn(email=ANN, password=PASSWORD))
    assert (error.code, error.field) == ("too-many-attempts", "email")


def test_four_failures_do_not_lock_the_address(auth: ServiceHarness) -> None:
    verified_user(auth)
    fail_sign_in(auth, 4)
    assert sign_in(auth)


def test_the_lock_lifts_when_the_oldest_failure_leaves_the_window(
    auth: ServiceHarness, clock: FakeClock
) -> None:
    verified_user(auth)
    fail_sign_in(auth, 1)
    clock.advance(minutes=5)
    fail_sign_in(auth, 4)
    clock.advance(minutes=9, seconds=59)
    assert refusal(auth, SignIn(email=ANN, password=PASSWORD)).code == "too-many-attempts"
    clock.advance(seconds=1)  # 15 minutes after the first failure: four remain in the window
    assert sign_in(auth)


def test_failures_spread_beyond_the_window_do_not_lock(auth: ServiceHarness, clock: FakeClock) -> None:
    verified_user(auth)
    for _ in range(10):
        fail_sign_in(auth, 1)
        clock.advance(minutes=4)
    assert sign_in(auth)


def test_refused_attempts_while_locked_do_not_extend_the_lock(auth: ServiceHarness, clock: FakeClock) -> None:
    verified_user(auth)
    fail_sign_in(auth, 5)
    for _ in range(14):
        clock.advance(minutes=1)
        assert refusal(auth, SignIn(email=ANN, password="wrong password")).code == "too-many-attempts"
    clock.advance(minutes=1)
    assert sign_in(auth)


def test_a_successful_sign_in_forgets_the_failures(auth: ServiceHarness) -> None:
    verified_user(auth)
    fail_sign_in(auth, 4)
    sign_in(auth)
    fail_sign_in(auth, 4)
    assert sign_in(auth)


def test_the_throttle_is_per_address(auth: ServiceHarness) -> None:
    verified_user(auth)
    bob = verified_user(auth, "bob", "bob@example.com")
    fail_sign_in(auth, 5)
    assert sign_in(auth, "bob@example.com").user_id == bob


def test_the_throttle_ignores_the_case_of_the_address(auth: ServiceHarness) -> None:
    verified_user(auth)
    fail_sign_in(auth, 5, email="ANN@example.com")
    assert refusal(auth, SignIn(email=ANN, password=PASSWORD)).code == "too-many-attempts"


def test_unknown_addresses_are_throttled_like_known_ones(auth: ServiceHarness) -> None:
    fail_sign_in(auth, 5, email="nobody@example.com")
    error = refusal(auth, SignIn(email="nobody@example.com", password=PASSWORD))
    assert (error.code, error.field) == ("too-many-attempts", "email")


def test_a_password_reset_lifts_the_lock(auth: ServiceHarness) -> None:
    verified_user(auth)
    fail_sign_in(auth, 5)
    forgot_and_reset(auth)
    assert sign_in(auth, password=NEW_PASSWORD)


# Forgotten passwords.


def test_forgot_password_sends_a_reset_link_valid_for_one_hour(auth: ServiceHarness, tokens: Tokens) -> None:
    user_id = verified_user(auth)
    assert auth.request(ForgotPassword(email="ANN@example.com")) == Done()
    [requested] = auth.events(PasswordResetRequested)
    assert (requested.user_id, requested.username, requested.email) == (user_id, "ann", ANN)
    assert requested.expires_at == START + timedelta(hours=1)
    assert requested.reset_link.startswith(f"{PUBLIC_URL}/reset-password?token=")
    claims = tokens.verify(token_of(requested.reset_link), Purpose.RESET_PASSWORD)
    assert (claims.subject, claims.expires_at) == (user_id, requested.expires_at)


def test_forgot_password_answers_the_same_for_an_unknown_address_and_publishes_nothing(
    auth: ServiceHarness,
) -> None:
    verified_user(auth)
    before = len(auth.published)
    known = auth.request(ForgotPassword(email=ANN))
    published_for_known = len(auth.published) - before
    unknown = auth.request(ForgotPassword(email="nobody@example.com"))
    assert known == unknown == Done()
    assert published_for_known == 1
    assert len(auth.published) == before + 1


def test_an_unverified_account_may_reset_its_password(auth: ServiceHarness) -> None:
    sign_up(auth)
    forgot_and_reset(auth)
    assert refusal(auth, SignIn(email=ANN, password=NEW_PASSWORD)).code == "email-not-verified"


def test_the_reset_link_sets_a_new_password(auth: ServiceHarness, clock: FakeClock) -> None:
    user_id = verified_user(auth)
    auth.request(ForgotPassword(email=ANN))
    clock.advance(minutes=30)
    assert auth.request(ResetPassword(token=last_reset_token(auth), new_password=NEW_PASSWORD)) == Done()
    assert auth.events(PasswordChanged) == [
        PasswordChanged(
            user_id=user_id,
            username="ann",
            email=ANN,
            reason=PasswordChangeReason.RESET,
            changed_at=START + timedelta(minutes=30),
        )
    ]
    assert sign_in(auth, password=NEW_PASSWORD).user_id == user_id
    assert refusal(auth, SignIn(email=ANN, password=PASSWORD)).code == "invalid-credentials"


def test_a_reset_link_works_once(auth: ServiceHarness) -> None:
    verified_user(auth)
    forgot_and_reset(auth)
    error = refusal(auth, ResetPassword(token=last_reset_token(auth), new_password="third password"))
    assert (error.code, error.field) == ("unauthenticated", "token")
    assert sign_in(auth, password=NEW_PASSWORD)
    assert len(auth.events(PasswordChanged)) == 1


def test_only_the_latest_reset_link_works(auth: ServiceHarness) -> None:
    verified_user(auth)
    auth.request(ForgotPassword(email=ANN))
    older = last_reset_token(auth)
    auth.request(ForgotPassword(email=ANN))
    assert refusal(auth, ResetPassword(token=older, new_password=NEW_PASSWORD)).field == "token"
    auth.request(ResetPassword(token=last_reset_token(auth), new_password=NEW_PASSWORD))
    assert sign_in(auth, password=NEW_PASSWORD)


def test_an_expired_reset_link_is_refused(auth: ServiceHarness, clock: FakeClock) -> None:
    verified_user(auth)
    auth.request(ForgotPassword(email=ANN))
    clock.advance(hours=1)
    error = refusal(auth, ResetPassword(token=last_reset_token(auth), new_password=NEW_PASSWORD))
    assert (error.code, error.field, error.message) == ("unauthenticated", "token", "token expired")
    assert sign_in(auth)


def test_a_tampered_reset_link_is_refused(auth: ServiceHarness) -> None:
    verified_user(auth)
    auth.request(ForgotPassword(email=ANN))
    body, signature = last_reset_token(auth).split(".")
    error = refusal(auth, ResetPassword(token=f"{body}x.{signature}", new_password=NEW_PASSWORD))
    assert (error.code, error.field) == ("unauthenticated", "token")


def test_a_verification_link_cannot_reset_a_password(auth: ServiceHarness) -> None:
    sign_up(auth)
    error = refusal(auth, ResetPassword(token=last_verification_token(auth), new_password=NEW_PASSWORD))
    assert (error.code, error.field) == ("unauthenticated", "token")
    assert "purpose" in error.message


def test_a_weak_new_password_is_refused_and_the_link_still_works(auth: ServiceHarness) -> None:
    verified_user(auth)
    auth.request(ForgotPassword(email=ANN))
    error = refusal(auth, ResetPassword(token=last_reset_token(auth), new_password="short"))
    assert (error.code, error.field) == ("invalid", "new_password")
    auth.request(ResetPassword(token=last_reset_token(auth), new_password=NEW_PASSWORD))
    assert sign_in(auth, password=NEW_PASSWORD)


def test_changing_the_password_voids_a_pending_reset_link(auth: ServiceHarness) -> None:
    user_id = verified_user(auth)
    auth.request(ForgotPassword(email=ANN))
    auth.request(ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD), actor_id=user_id)
    error = refusal(auth, ResetPassword(token=last_reset_token(auth), new_password="third password"))
    assert (error.code, error.field) == ("unauthenticated", "token")


# Changing the password.


def test_a_signed_in_user_changes_their_password(auth: ServiceHarness, clock: FakeClock) -> None:
    user_id = verified_user(auth)
    clock.advance(days=3)
    command = ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD)
    assert auth.request(command, actor_id=user_id) == Done()
    [changed] = auth.events(PasswordChanged)
    assert (changed.user_id, changed.email, changed.reason) == (user_id, ANN, PasswordChangeReason.CHANGE)
    assert changed.changed_at == START + timedelta(days=3)
    assert sign_in(auth, password=NEW_PASSWORD)


def test_changing_the_password_needs_a_signed_in_user(auth: ServiceHarness) -> None:
    verified_user(auth)
    error = refusal(auth, ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD))
    assert (error.code, error.field) == ("unauthenticated", None)


def test_changing_the_password_needs_the_current_one(auth: ServiceHarness) -> None:
    user_id = verified_user(auth)
    command = ChangePassword(current_password="wrong password", new_password=NEW_PASSWORD)
    error = refusal(auth, command, actor_id=user_id)
    assert (error.code, error.field) == ("invalid-credentials", "current_password")
    assert auth.events(PasswordChanged) == []
    assert sign_in(auth)


@pytest.mark.parametrize(("new_password", "problem"), [("short", "at least"), (PASSWORD, "differ")])
def test_the_new_password_must_be_acceptable_and_different(
    auth: ServiceHarness, new_password: str, problem: str
) -> None:
    user_id = verified_user(auth)
    error = refusal(
        auth, ChangePassword(current_password=PASSWORD, new_password=new_password), actor_id=user_id
    )
    assert (error.code, error.field) == ("invalid", "new_password")
    assert problem in error.message


def test_guessing_the_current_password_is_throttled(auth: ServiceHarness) -> None:
    user_id = verified_user(auth)
    guess = ChangePassword(current_password="wrong password", new_password=NEW_PASSWORD)
    for _ in range(5):
        assert refusal(auth, guess, actor_id=user_id).code == "invalid-credentials"
    right = ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD)
    assert refusal(auth, right, actor_id=user_id).code == "too-many-attempts"


def test_a_retried_password_change_is_applied_once(auth: ServiceHarness) -> None:
    user_id = verified_user(auth)
    command = ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD)
    auth.request(command, actor_id=user_id, key="change-1")
    assert auth.request(command, actor_id=user_id, key="change-1") == Done()
    assert len({e.message_id for e in auth.published if isinstance(e.event, PasswordChanged)}) == 1


# The account.


def test_a_user_sees_their_own_account(auth: ServiceHarness) -> None:
    user_id = verified_user(auth)
    account = auth.request(GetAccount(), actor_id=user_id)
    assert (account.user_id, account.username, account.email, account.verified) == (user_id, "ann", ANN, True)


def test_the_account_needs_a_signed_in_user(auth: ServiceHarness) -> None:
    verified_user(auth)
    error = refusal(auth, GetAccount())
    assert error.code == "unauthenticated"


def test_an_unknown_user_has_no_account(auth: ServiceHarness) -> None:
    error = refusal(auth, GetAccount(), actor_id="nobody")
    assert (error.code, error.field) == ("not-found", "user_id")


# Secrets never travel in events.


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif attrs.has(type(value)):
        for field in attrs.fields(cast(Any, type(value))):
            yield from _strings(getattr(value, field.name))
    elif isinstance(value, tuple | frozenset | list):
        for item in value:
            yield from _strings(item)


def test_no_event_carries_a_password_a_hash_or_a_session_token(auth: ServiceHarness) -> None:
    user_id = sign_up(auth)
    auth.request(ResendVerification(email=ANN))
    auth.request(VerifyEmail(token=last_verification_token(auth)))
    session = sign_in(auth).token
    fail_sign_in(auth, 1)
    auth.request(ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD), actor_id=user_id)
    forgot_and_reset(auth, password="third password")
    hashes = [account.password_hash for account in auth.store.snapshot()[ACCOUNTS].values()]
    secrets = [PASSWORD, NEW_PASSWORD, "third password", "wrong password", session, *hashes]
    published = {type(e.event) for e in auth.published}
    assert published == {UserRegistered, VerificationEmailRequested, PasswordResetRequested, PasswordChanged}
    for envelope in auth.published:
        wire = codec.encode(envelope).decode("utf-8")
        for secret in secrets:
            assert secret not in wire, f"{envelope.type} carries a secret"
            assert not any(secret in text for text in _strings(envelope.event))
        names = set(attrs.fields_dict(type(envelope.event)))
        assert not any("password" in n or "hash" in n or "token" in n for n in names), names


# Through the gateway facade.


class HarnessClient:
    """A ServiceClient stand-in that sends to the auth harness."""

    def __init__(self, auth: ServiceHarness) -> None:
        self.auth = auth
        self.actors: list[str | None] = []

    def send(
        self, service: str, body: Command | Query, expect: type[Any], *, actor_id: str | None = None
    ) -> Any:
        assert service == "auth"
        self.actors.append(actor_id)
        reply = self.auth.request(body, actor_id=actor_id)
        assert isinstance(reply, expect)
        return reply


def test_the_gateway_facade_runs_the_whole_account_flow(auth: ServiceHarness) -> None:
    client = HarnessClient(auth)
    visitor = Accounts(cast(ServiceClient, client))
    user_id = visitor.sign_up(username="ann", email=ANN, password=PASSWORD, country="Norway").user_id
    visitor.resend_verification(email=ANN)
    visitor.verify_email(token=last_verification_token(auth))
    assert visitor.sign_in(email=ANN, password=PASSWORD).user_id == user_id
    ann = Accounts(cast(ServiceClient, client), user_id)
    assert ann.account().verified
    ann.change_password(current_password=PASSWORD, new_password=NEW_PASSWORD)
    visitor.forgot_password(email=ANN)
    visitor.reset_password(token=last_reset_token(auth), new_password="third password")
    assert visitor.sign_in(email=ANN, password="third password").user_id == user_id
    assert client.actors == [None, None, None, None, user_id, user_id, None, None, None]


def test_the_gateway_facade_needs_a_user_for_account_operations(auth: ServiceHarness) -> None:
    visitor = Accounts(cast(ServiceClient, HarnessClient(auth)))
    with pytest.raises(DomainError) as refused:
        visitor.account()
    assert refused.value.code == "unauthenticated"
    with pytest.raises(DomainError) as refused:
        visitor.change_password(current_password=PASSWORD, new_password=NEW_PASSWORD)
    assert refused.value.code == "unauthenticated"


# On the wire.

WIRE_BODIES: list[Command | Query] = [
    SignUp(username="ann", email=ANN, password=PASSWORD, country="Norway"),
    SignUp(
        username="ann",
        email=ANN,
        password=PASSWORD,
        country="Norway",
        profile_picture_url="https://x.example/a",
    ),
    ResendVerification(email=ANN),
    VerifyEmail(token="abc.def"),
    SignIn(email=ANN, password=PASSWORD),
    ForgotPassword(email=ANN),
    ResetPassword(token="abc.def", new_password=NEW_PASSWORD),
    ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD),
    GetAccount(),
]


@pytest.mark.parametrize("body", WIRE_BODIES, ids=lambda body: type(body).__name__)
def test_every_command_and_query_travels_through_the_protocol(body: Command | Query) -> None:
    request = Request(body, request_id="r1", idempotency_key="k1", correlation_id="c1", sent_at=START)
    assert protocol.decode_request(protocol.request_message(request)).body == body


@pytest.mark.parametrize(
    "reply",
    [
        SignedUp(user_id="u1"),
        SignedIn(token="abc.def", user_id="u1", expires_at=START),
        AccountView(
            user_id="u1",
            username="ann",
            email=ANN,
            country="Norway",
            profile_picture_url=None,
            registered_at=START,
            verified_at=START,
        ),
    ],
    ids=lambda reply: type(reply).__name__,
)
def test_every_reply_travels_through_the_protocol(reply: Any) -> None:
    assert protocol.decode_reply(protocol.encode_reply(reply)) == reply
