"""Field validators shared by the events (and by any attrs class of the domain).

Each validator has the attrs signature `(instance, attribute, value)` and
raises `ValidationError` naming the field, so that the codec can report which
field of a message was wrong. Types are checked exactly: `bool` is not an
integer here, although Python says it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from attrs import Attribute

Validator = Callable[[Any, "Attribute[Any]", Any], None]
"""The attrs validator signature."""

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 5000
MAX_EMAIL_LENGTH = 254
MAX_LINK_LENGTH = 2048
MIN_RATING = 1
MAX_RATING = 5

# Visible ASCII only: ids are ours (uuid4 hex), never user input.
_ID = re.compile(rf"[!-~]{{1,{MAX_ID_LENGTH}}}")
# RFC 5321/5322 dot-atom local part and a hostname domain; ASCII only (no SMTPUTF8).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+{_LABEL})")
_ZERO = timedelta(0)


class ValidationError(ValueError):
    """A field holds a value the domain does not allow."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _is_int(value: object) -> bool:
    return type(value) is int  # also refuses bool and int subclasses such as enums


def _check_str(field: str, value: object) -> str:
    if type(value) is not str:
        raise ValidationError(field, f"expected a string, got {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (from a "\ud800" escape) cannot be sent on in UTF-8.
            raise ValidationError(field, "contains a lone surrogate code point") from None
    return value


def identifier(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """An id: 1 to 128 visible ASCII characters, no spaces."""
    if type(value) is not str or not _ID.fullmatch(value):
        raise ValidationError(
            attribute.name, f"{value!r} is not an id (1-{MAX_ID_LENGTH} visible ASCII characters)"
        )


def name(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """A name (username, title, country): printable, not blank, at most 200 characters."""
    checked = _check_str(attribute.name, value)
    if not checked.strip():
        raise ValidationError(attribute.name, "must not be blank")
    if len(checked) > MAX_NAME_LENGTH:
        raise ValidationError(attribute.name, f"longer than {MAX_NAME_LENGTH} characters")
    if not checked.isprintable():
        raise ValidationError(attribute.name, "contains a control or non-printable character")


def text(*, blank: bool = False, max_length: int = MAX_TEXT_LENGTH) -> Validator:
    """Free text (several lines allowed), blank only when `blank`, at most `max_length` characters."""

    def validate(_instance: object, attribute: Attribute[Any], value: object) -> None:
        checked = _check_str(attribute.name, value)
        if not blank and not checked.strip():
            raise ValidationError(attribute.name, "must not be blank")
        if len(checked) > max_length:
            raise ValidationError(attribute.name, f"longer than {max_length} characters")

    return validate


def email(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """A well-formed ASCII e-mail address, `local@domain.tld`."""
    if type(value) is not str:
        raise ValidationError(attribute.name, f"expected an e-mail address, got {type(value).__name__}")
    match = _EMAIL.fullmatch(value)
    if (
        match is None
        or len(value) > MAX_EMAIL_LENGTH
        or len(match.group(1)) > 64
        or match.group(2).rpartition(".")[2].isdigit()
    ):
        raise ValidationError(attribute.name, f"{value!r} is not a well-formed e-mail address")


def link(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """An absolute http(s) URL of at most 2048 ASCII characters."""
    if type(value) is not str:
        raise ValidationError(attribute.name, f"expected a URL, got {type(value).__name__}")
    ok = len(value) <= MAX_LINK_LENGTH and value.isascii() and value.isprintable() and " " not in value
    if ok:
        try:
            parts = urlsplit(value)
        except ValueError:
            ok = False
        else:
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    if not ok:
        raise ValidationError(attribute.name, f"{value!r} is not an absolute http(s) URL")


def cents(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """An amount of money: a non-negative integer number of cents."""
    if not _is_int(value):
        raise ValidationError(attribute.name, f"expected integer cents, got {type(value).__name__}")
    if value < 0:  # type: ignore[operator]
        raise ValidationError(attribute.name, f"{value} is negative")


def int_between(low: int, high: int) -> Validator:
    """An integer (not a bool) from `low` to `high`, both included."""

    def validate(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if not _is_int(value):
            raise ValidationError(attribute.name, f"expected an integer, got {type(value).__name__}")
        if not low <= value <= high:  # type: ignore[operator]
            raise ValidationError(attribute.name, f"{value} is not between {low} and {high}")

    return validate


rating = int_between(MIN_RATING, MAX_RATING)
"""A rating: an integer from 1 to 5."""


def utc_datetime(_instance: object, attribute: Attribute[Any], value: object) -> None:
    """A timezone-aware datetime in UTC (offset zero)."""
    if not isinstance(value, datetime):
        raise ValidationError(attribute.name, f"expected a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValidationError(attribute.name, "naive datetime: a UTC timezone is required")
    if offset != _ZERO:
        raise ValidationError(attribute.name, f"offset {offset} is not UTC")


def member_of(enum: type[Enum]) -> Validator:
    """A member of `enum` (its plain value is not enough: convert first)."""

    def validate(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if not isinstance(value, enum):
            allowed = ", ".join(repr(m.value) for m in enum)
            raise ValidationError(attribute.name, f"{value!r} is not a {enum.__name__} ({allowed})")

    return validate


def optional(validator: Validator) -> Validator:
    """None, or a value that `validator` accepts."""

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return validate


def tuple_of(item_type: type, *, max_length: int) -> Validator:
    """A tuple of at most `max_length` instances of `item_type`."""

    def validate(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if type(value) is not tuple:
            raise ValidationError(attribute.name, f"expected a tuple, got {type(value).__name__}")
        if len(value) > max_length:
            raise ValidationError(attribute.name, f"more than {max_length} items")
        for item in value:
            if not isinstance(item, item_type):
                raise ValidationError(attribute.name, f"item {item!r} is not a {item_type.__name__}")

    return validate


def plain_text(*, blank: bool = False, max_length: int) -> Validator:
    """Free text (see `validation.text`) without ASCII control characters other than tab and newlines.

    Those control characters have no place in what people write to each other
    or in an e-mail, and JSON spells each of them as a six-byte escape:
    refusing them keeps every character within four bytes, so that the pages
    of replies, sized for the codec's body limit, always fit.
    """
    free = text(blank=blank, max_length=max_length)

    def validate(instance: object, attribute: Attribute[Any], value: object) -> None:
        free(instance, attribute, value)
        assert isinstance(value, str)
        if any(char < " " and char not in "\t\n\r" for char in value):
            raise ValidationError(attribute.name, "contains a control character other than tab or newline")

    return validate
