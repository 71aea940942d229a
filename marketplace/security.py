"""Secrets: password hashing (scrypt), signed expiring tokens, the signing key, the password policy.

Passwords are stored as salted scrypt hashes (`PasswordHasher`) whose cost is
configurable: low in tests, `PRODUCTION_COST` otherwise. A hash records its own
parameters, so raising the cost later does not lock out existing accounts.

Tokens (`Tokens`) are `<payload>.<signature>`, both base64url without padding:
the payload is compact JSON of the purpose, the subject, the issue and expiry
times (integer microseconds since the epoch) and a nonce; the signature is
HMAC-SHA256 of the payload's text with the signing key. A token is accepted
only with a valid signature, for the purpose it was issued for, before it
expires. Tokens are signed, not encrypted: a subject (a user id) is readable.

The signing key comes from configuration (`signing_key`); the built-in
`DEMO_KEY` is accepted only by the demo, so that a deployment cannot run with
a key that everyone can read here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from attrs import frozen

from .errors import DomainError

DEMO_KEY = b"marketplace-demo-signing-key-not-for-production-use"
"""The demo's token signing key: public, so refused anywhere but in the demo."""
MIN_KEY_LENGTH = 32
"""The shortest signing key accepted, in bytes (HMAC-SHA256 gains nothing above 64)."""

PRODUCTION_COST = 2**15
"""scrypt's CPU/memory cost `n` outside tests: about 32 MiB and a tenth of a second per hash."""
BLOCK_SIZE = 8
PARALLELISM = 1
SALT_BYTES = 16
HASH_BYTES = 32
_SCHEME = "scrypt"

MIN_PASSWORD_LENGTH = 8

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class KeyConfigurationError(ValueError):
    """The token signing key is missing, too short, or the demo key outside the demo."""


class Purpose(StrEnum):
    """What a token lets its bearer do; a token works only for the purpose it was issued for."""

    SESSION = "session"
    VERIFY_EMAIL = "verify-email"
    RESET_PASSWORD = "reset-password"


def signing_key(configured: bytes | None, *, demo: bool) -> bytes:
    """The key to sign tokens with: `configured`, or `DEMO_KEY` when none is configured in the demo.

    Raises `KeyConfigurationError` outside the demo when no key is configured
    or the configured key is the demo key, and whenever a key is too short.
    """
    if configured is None:
        if demo:
            return DEMO_KEY
        raise KeyConfigurationError("no token signing key is configured: one is required outside the demo")
    if not demo and hmac.compare_digest(configured, DEMO_KEY):
        raise KeyConfigurationError("the built-in demo signing key is refused outside the demo")
    if len(configured) < MIN_KEY_LENGTH:
        raise KeyConfigurationError(f"the token signing key must be at least {MIN_KEY_LENGTH} bytes long")
    return configured


@frozen
class Claims:
    """What a valid token says: who it is about, what it is for, when it was issued and expires."""

    subject: str
    purpose: str
    issued_at: datetime
    expires_at: datetime
    nonce: str


def _unauthenticated(message: str) -> DomainError:
    return DomainError("unauthenticated", message, "token")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(microseconds: int) -> datetime:
    return _EPOCH + microseconds * _MICROSECOND


class Tokens:
    """Issues and verifies signed, expiring tokens with one key; `clock` gives the current time."""

    def __init__(
        self,
        key: bytes,
        clock: Callable[[], datetime],
        *,
        new_nonce: Callable[[], str] | None = None,
    ) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise KeyConfigurationError(f"the token signing key must be at least {MIN_KEY_LENGTH} bytes long")
        self._key = key
        self._clock = clock
        self._new_nonce = new_nonce or (lambda: secrets.token_urlsafe(12))

    def __repr__(self) -> str:
        return "Tokens(key=***)"

    def issue(
        self,
        subject: str,
        purpose: str,
        ttl: timedelta,
        *,
        now: datetime | None = None,
        nonce: str | None = None,
    ) -> str:
        """A token for `subject` and `purpose`, valid for `ttl` from `now` (default: the clock's time)."""
        issued_at = self._clock() if now is None else now
        payload = {
            "p": str(purpose),
            "s": subject,
            "i": _microseconds(issued_at),
            "e": _microseconds(issued_at + ttl),
            "n": self._new_nonce() if nonce is None else nonce,
        }
        body = _b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, purpose: str, *, now: datetime | None = None) -> Claims:
        """The claims of `token` if it is genuine, for `purpose` and unexpired at `now`.

        Raises `DomainError("unauthenticated", ..., "token")` otherwise.
        """
        body, dot, signature = token.partition(".")
        if not dot or not body.isascii() or not signature.isascii():
            raise _unauthenticated("malformed token")
        # The signature is checked before anything of the payload is read.
        if not hmac.compare_digest(signature, self._sign(body)):
            raise _unauthenticated("invalid token signature")
        claims = _claims(body)
        if claims.purpose != purpose:
            raise _unauthenticated("this token is not valid for this purpose")
        if (self._clock() if now is None else now) >= claims.expires_at:
            raise _unauthenticated("token expired")
        return claims

    def _sign(self, body: str) -> str:
        return _b64encode(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())


def _claims(body: str) -> Claims:
    """The claims in a payload whose signature is valid (so malformed means a bug, still refused)."""
    try:
        payload = json.loads(_b64decode(body))
    except (binascii.Error, ValueError):
        raise _unauthenticated("malformed token") from None
    fields = {"p": str, "s": str, "i": int, "e": int, "n": str}
    if type(payload) is not dict or any(type(payload.get(k)) is not t for k, t in fields.items()):
        raise _unauthenticated("malformed token")
    return Claims(
        subject=payload["s"],
        purpose=payload["p"],
        issued_at=_moment(payload["i"]),
        expires_at=_moment(payload["e"]),
        nonce=payload["n"],
    )


class PasswordHasher:
    """Hashes passwords with scrypt at cost `n = cost` and checks them against stored hashes."""

    def __init__(self, cost: int = PRODUCTION_COST, *, block_size: int = BLOCK_SIZE) -> None:
        if cost < 2 or cost & (cost - 1):
            raise ValueError(f"scrypt cost must be a power of 2 above 1, not {cost}")
        self.cost = cost
        self.block_size = block_size

    def __repr__(self) -> str:
        return f"PasswordHasher(cost={self.cost}, block_size={self.block_size})"

    def hash(self, password: str) -> str:
        """A fresh salted hash of `password`: `scrypt$n$r$p$salt$key`, base64url parts."""
        salt = secrets.token_bytes(SALT_BYTES)
        derived = _scrypt(password, salt, self.cost, self.block_size, PARALLELISM)
        return "$".join(
            (
                _SCHEME,
                str(self.cost),
                str(self.block_size),
                str(PARALLELISM),
                _b64encode(salt),
                _b64encode(derived),
            )
        )

    def verify(self, password: str, stored: str) -> bool:
        """Whether `password` is the one `stored` was made from (with the parameters `stored` records)."""
        scheme, n, r, p, salt, derived = stored.split("$")
        if scheme != _SCHEME:
            raise ValueError(f"unknown password hash scheme {scheme!r}")
        candidate = _scrypt(password, _b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(candidate, _b64decode(derived))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # NFKC: the same password typed on another keyboard or system gives the same bytes.
    secret = unicodedata.normalize("NFKC", password).encode("utf-8")
    needed = 128 * r * (n + p + 2)
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=needed + 2**20, dklen=HASH_BYTES)


def password_problem(password: str) -> str | None:
    """What is wrong with `password` as a new password, or None if the policy accepts it."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(set(password)) == 1:
        return "must not repeat a single character"
    return None
