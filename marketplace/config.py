"""Settings, read at call time from flags, the environment, a TOML file and defaults, in that order.

Each setting, with its flag (where there is one), environment variable and default; the
TOML key is the setting's name (`transport_url = "amqp://..."`):

- `transport_url`: `--transport`, `MARKETPLACE_TRANSPORT_URL`, `memory://`
- `prefix` (names of exchanges and queues): `--prefix`, `MARKETPLACE_PREFIX`, none
- `secret_key` (token signing key): `MARKETPLACE_SECRET_KEY`, none (the demo uses its own)
- `public_url` (links in e-mails): `MARKETPLACE_PUBLIC_URL`, `http://localhost:8000`
- `mailer` (`console`, `recording` or `smtp`): `--mailer`, `MARKETPLACE_MAILER`, `console`
- `smtp_host`, `smtp_port`, `smtp_sender`, `smtp_username`, `smtp_password`, `smtp_starttls`:
  `MARKETPLACE_SMTP_HOST` (and so on), `127.0.0.1`, 25, `marketplace@localhost`, none, none, false
- `kdf_cost` (scrypt's N for passwords): `MARKETPLACE_KDF_COST`, 16384
- `request_timeout` (seconds): `MARKETPLACE_REQUEST_TIMEOUT`, 10
- `retry_attempts`, `retry_delay` (seconds): `MARKETPLACE_RETRY_ATTEMPTS`, `MARKETPLACE_RETRY_DELAY`, 5, 0.5

The TOML file is named by `--config` or `MARKETPLACE_CONFIG`. `MARKETPLACE_AMQP_URL`
is not read here: it only tells the test suite which broker to use.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import field, frozen, validators

from transports import RetryPolicy, mask_password

MAILERS = ("console", "recording", "smtp")


@frozen
class Settings:
    """Everything the composition root needs to build the marketplace."""

    transport_url: str = "memory://"
    prefix: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    public_url: str = "http://localhost:8000"
    mailer: str = field(default="console", validator=validators.in_(MAILERS))
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "marketplace@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    kdf_cost: int = field(default=2**14, validator=validators.ge(2))
    request_timeout: float = field(default=10.0, validator=validators.gt(0))
    retry_attempts: int = field(default=5, validator=validators.ge(1))
    retry_delay: float = field(default=0.5, validator=validators.gt(0))

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every queue."""
        return RetryPolicy(max_attempts=self.retry_attempts, initial_delay=self.retry_delay, max_delay=30.0)

    def describe(self) -> str:
        """A one-line summary safe to print (no secrets)."""
        return f"transport {mask_password(self.transport_url)}, mailer {self.mailer}"


_ENVIRONMENT = {
    "transport_url": "MARKETPLACE_TRANSPORT_URL",
    "prefix": "MARKETPLACE_PREFIX",
    "secret_key": "MARKETPLACE_SECRET_KEY",
    "public_url": "MARKETPLACE_PUBLIC_URL",
    "mailer": "MARKETPLACE_MAILER",
    "smtp_host": "MARKETPLACE_SMTP_HOST",
    "smtp_port": "MARKETPLACE_SMTP_PORT",
    "smtp_sender": "MARKETPLACE_SMTP_SENDER",
    "smtp_username": "MARKETPLACE_SMTP_USERNAME",
    "smtp_password": "MARKETPLACE_SMTP_PASSWORD",
    "smtp_starttls": "MARKETPLACE_SMTP_STARTTLS",
    "kdf_cost": "MARKETPLACE_KDF_COST",
    "request_timeout": "MARKETPLACE_REQUEST_TIMEOUT",
    "retry_attempts": "MARKETPLACE_RETRY_ATTEMPTS",
    "retry_delay": "MARKETPLACE_RETRY_DELAY",
}
CONFIG_FILE_VARIABLE = "MARKETPLACE_CONFIG"


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it and where it came from."""


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Settings from `flags` (None values ignored), then `environ`, then the TOML file, then defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, tuple[Any, str]] = {}
    path = config_file or environ.get(CONFIG_FILE_VARIABLE)
    if path:
        for name, value in _read_toml(path).items():
            values[name] = (value, f"{path}: {name}")
    for name, variable in _ENVIRONMENT.items():
        if variable in environ:
            values[name] = (environ[variable], variable)
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = (value, f"--{name.replace('_', '-')}")
    converted = {name: _convert(name, value, source) for name, (value, source) in values.items()}
    try:
        return Settings(**converted)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid settings: {error}") from None


def _read_toml(path: str) -> dict[str, Any]:
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(_ENVIRONMENT))
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {', '.join(unknown)}")
    return document


_TYPES: dict[str, type] = {
    "smtp_port": int,
    "kdf_cost": int,
    "retry_attempts": int,
    "request_timeout": float,
    "retry_delay": float,
    "smtp_starttls": bool,
}


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _convert(name: str, value: Any, source: str) -> Any:
    kind = _TYPES.get(name, str)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool and isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    if kind in (int, float) and isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return kind(value)
        except ValueError:
            pass
    if kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"{source}: {value!r} is not a valid {kind.__name__} for {name}")
