"""Commands and queries the gateway sends to a service, and the replies it gets back.

Commands are imperative (`PlaceOrder`) and change state; queries (`SearchGigs`)
only read. Both travel inside a `Request` that says who asks (the user the
gateway authenticated, or nobody), the idempotency key that makes a retried
command harmless, and the correlation id of the flow it starts. Each
service's commands live in the module named after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from attrs import field, frozen

from ..validation import identifier, optional, utc_datetime


class Command:
    """Base of every command: asks a service to change something.

    A command's reply is kept with its idempotency key, so that a retry gets
    the same answer without the change being applied again. A command whose
    reply is a secret (a session token) and that is harmless to run again sets
    `KEEPS_REPLY = False`: a retry runs it again instead.
    """

    __slots__ = ()
    KEEPS_REPLY: ClassVar[bool] = True


class Query:
    """Base of every query: asks a service for facts; changes nothing."""

    __slots__ = ()


@frozen
class Request:
    """A command or query with who sent it and how to recognise a retry of it."""

    body: Command | Query
    request_id: str = field(validator=identifier)
    idempotency_key: str = field(validator=identifier)
    correlation_id: str = field(validator=identifier)
    sent_at: datetime = field(validator=utc_datetime)
    actor_id: str | None = field(default=None, validator=optional(identifier))

    @property
    def type(self) -> str:
        """The wire name of the command or query."""
        return type(self.body).__name__


class Reply:
    """Base of every reply: a frozen attrs class defined beside its command or query."""

    __slots__ = ()


@frozen
class Done(Reply):
    """The reply of a command that has nothing more to say than that it was applied."""
