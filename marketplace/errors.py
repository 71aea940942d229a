"""The one error a service raises when it refuses something: a code, the field or rule, a message."""

from __future__ import annotations


class DomainError(Exception):
    """A refused command, or an event that cannot apply: `{code, field, message}`.

    `code` is stable and machine-readable (`not-found`, `forbidden`,
    `invalid-state`, `invalid`, `conflict`, `unauthenticated`, ...); `field`
    names the offending field or rule when there is one. Raised inside a
    handler, nothing of that handler is applied: for a command the caller gets
    this error back, for an event the message is dead-lettered with it.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({field})" if field else ""))
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        """The error as `{code, field, message}`."""
        return {"code": self.code, "field": self.field, "message": self.message}


def not_found(what: str, field: str) -> DomainError:
    """`what` does not exist (or is not visible to the caller)."""
    return DomainError("not-found", f"{what} not found", field)


def forbidden(message: str, field: str | None = None) -> DomainError:
    """The caller may not do this."""
    return DomainError("forbidden", message, field)


def invalid_state(message: str, field: str | None = None) -> DomainError:
    """Not possible in the current state of the thing."""
    return DomainError("invalid-state", message, field)


def invalid(field: str, message: str) -> DomainError:
    """A field's value breaks a rule."""
    return DomainError("invalid", message, field)


def conflict(message: str, field: str | None = None) -> DomainError:
    """It clashes with what exists (a taken e-mail address, a second review)."""
    return DomainError("conflict", message, field)
