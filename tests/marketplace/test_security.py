"""Secrets: the signing key's configuration, signed tokens, password hashes and the password policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest

from marketplace.errors import DomainError
from marketplace.security import (
    DEMO_KEY,
    PRODUCTION_COST,
    KeyConfigurationError,
    PasswordHasher,
    Purpose,
    Tokens,
    password_problem,
    signing_key,
)
from tests.marketplace.harness import START, FakeClock

KEY = b"k" * 32
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens(clock: FakeClock) -> Tokens:
    return Tokens(KEY, clock)


def refusal(tokens: Tokens, token: str, purpose: str = Purpose.SESSION) -> DomainError:
    with pytest.raises(DomainError) as refused:
        tokens.verify(token, purpose)
    assert (refused.value.code, refused.value.field) == ("unauthenticated", "token")
    return refused.value


# The signing key.


def test_the_demo_uses_the_demo_key_when_none_is_configured() -> None:
    assert signing_key(None, demo=True) == DEMO_KEY


def test_a_configured_key_is_used_in_and_out_of_the_demo() -> None:
    assert signing_key(KEY, demo=False) == KEY
    assert signing_key(KEY, demo=True) == KEY


def test_outside_the_demo_a_key_must_be_configured() -> None:
    with pytest.raises(KeyConfigurationError, match="no token signing key"):
        signing_key(None, demo=False)


def test_outside_the_demo_the_demo_key_is_refused() -> None:
    with pytest.raises(KeyConfigurationError, match="demo"):
        signing_key(DEMO_KEY, demo=False)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(KeyConfigurationError, match="32 bytes"):
        signing_key(b"short", demo=True)
    with pytest.raises(KeyConfigurationError, match="32 bytes"):
        Tokens(b"short", FakeClock())


def test_tokens_do_not_show_their_key() -> None:
    assert "k" * 32 not in repr(Tokens(KEY, FakeClock()))


# Tokens.


def test_a_token_gives_back_its_claims(tokens: Tokens) -> None:
    token = tokens.issue("user1", Purpose.SESSION, HOUR, nonce="n1")
    claims = tokens.verify(token, Purpose.SESSION)
    assert (claims.subject, claims.purpose, claims.nonce) == ("user1", "session", "n1")
    assert (claims.issued_at, claims.expires_at) == (START, START + HOUR)


def test_each_token_gets_a_fresh_nonce(tokens: Tokens) -> None:
    first = tokens.verify(tokens.issue("user1", Purpose.SESSION, HOUR), Purpose.SESSION)
    second = tokens.verify(tokens.issue("user1", Purpose.SESSION, HOUR), Purpose.SESSION)
    assert first.nonce != second.nonce


def test_a_token_is_url_safe(tokens: Tokens) -> None:
    token = tokens.issue("user1", Purpose.RESET_PASSWORD, HOUR)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_token_is_valid_until_just_before_it_expires(clock: FakeClock, tokens: Tokens) -> None:
    token = tokens.issue("user1", Purpose.SESSION, HOUR)
    clock.advance(minutes=59, seconds=59)
    assert tokens.verify(token, Purpose.SESSION).subject == "user1"
    clock.advance(seconds=1)
    assert refusal(tokens, token).message == "token expired"


def test_a_token_is_checked_at_the_time_given(tokens: Tokens) -> None:
    token = tokens.issue("user1", Purpose.SESSION, HOUR)
    with pytest.raises(DomainError, match="expired"):
        tokens.verify(token, Purpose.SESSION, now=START + 2 * HOUR)


def test_a_token_for_another_purpose_is_refused(tokens: Tokens) -> None:
    verification = tokens.issue("user1", Purpose.VERIFY_EMAIL, HOUR)
    assert "purpose" in refusal(tokens, verification, Purpose.RESET_PASSWORD).message
    assert "purpose" in refusal(tokens, verification, Purpose.SESSION).message


def test_a_token_with_a_changed_payload_is_refused(tokens: Tokens) -> None:
    token = tokens.issue("user1", Purpose.SESSION, HOUR)
    body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["s"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    assert refusal(tokens, f"{forged}.{signature}").message == "invalid token signature"


def test_a_token_with_a_changed_signature_is_refused(tokens: Tokens) -> None:
    token = tokens.issue("user1", Purpose.SESSION, HOUR)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    refusal(tokens, flipped)


def test_a_token_signed_with_another_key_is_refused(clock: FakeClock, tokens: Tokens) -> None:
    other = Tokens(b"o" * 32, clock).issue("user1", Purpose.SESSION, HOUR)
    refusal(tokens, other)


@pytest.mark.parametrize("garbage", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.é", "ab$.cd", "x" * 300])
def test_malformed_tokens_are_refused(tokens: Tokens, garbage: str) -> None:
    refusal(tokens, garbage)


@pytest.mark.parametrize(
    "payload", [b'{"s":"user1"}', b"[]", b"not json", b'{"p":"session","s":1,"i":0,"e":0,"n":""}']
)
def test_a_validly_signed_payload_that_is_not_a_token_is_refused(tokens: Tokens, payload: bytes) -> None:
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    signature = base64.urlsafe_b64encode(hmac.new(KEY, body.encode(), hashlib.sha256).digest()).rstrip(b"=")
    assert refusal(tokens, f"{body}.{signature.decode()}").message == "malformed token"


# Password hashes.


def test_a_password_matches_its_hash_and_nothing_else() -> None:
    hasher = PasswordHasher(cost=2**4)
    stored = hasher.hash("correct horse")
    assert hasher.verify("correct horse", stored)
    assert not hasher.verify("correct horsE", stored)
    assert not hasher.verify("", stored)


def test_the_same_password_hashes_differently_each_time() -> None:
    hasher = PasswordHasher(cost=2**4)
    assert hasher.hash("correct horse") != hasher.hash("correct horse")


def test_a_hash_keeps_its_cost_so_raising_the_cost_keeps_old_passwords_working() -> None:
    stored = PasswordHasher(cost=2**4).hash("correct horse")
    assert stored.startswith("scrypt$16$8$1$")
    assert PasswordHasher(cost=2**6).verify("correct horse", stored)


def test_passwords_are_compared_after_unicode_normalization() -> None:
    hasher = PasswordHasher(cost=2**4)
    stored = hasher.hash("caf\u00e9 au lait")  # é as one code point
    assert hasher.verify("cafe\u0301 au lait", stored)  # e + combining acute


def test_a_hash_does_not_contain_the_password() -> None:
    assert "correct horse" not in PasswordHasher(cost=2**4).hash("correct horse")


@pytest.mark.parametrize("cost", [0, 1, 3, 1000])
def test_the_cost_must_be_a_power_of_two(cost: int) -> None:
    with pytest.raises(ValueError, match="power of 2"):
        PasswordHasher(cost=cost)


def test_production_cost_hashing_works() -> None:
    hasher = PasswordHasher()
    assert hasher.cost == PRODUCTION_COST >= 2**14
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith(f"scrypt${PRODUCTION_COST}$8$1$")
    assert hasher.verify("correct horse battery staple", stored)
    assert not hasher.verify("correct horse battery stapler", stored)


# The password policy.


@pytest.mark.parametrize("password", ["correct horse", "12345678", "p@ssw0rd", "ééééééé1"])
def test_the_policy_accepts_passwords_of_eight_characters_or_more(password: str) -> None:
    assert password_problem(password) is None


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 8"),
        ("short", "at least 8"),
        ("1234567", "at least 8"),
        ("aaaaaaaa", "single character"),
    ],
)
def test_the_policy_refuses_short_or_single_character_passwords(password: str, problem: str) -> None:
    found = password_problem(password)
    assert found is not None and problem in found
