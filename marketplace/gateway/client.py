"""The gateway's link to the services: one request/reply call, retried safely."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from transports import RemoteError, RequestTimeout, Transport, TransportClosed, TransportError

from .. import protocol
from ..commands import Command, Query, Request
from ..errors import DomainError
from ..wiring import Wiring

log = logging.getLogger(__name__)

R = TypeVar("R")


class ServiceUnavailable(Exception):
    """A service did not answer, even after retries: the outcome of a command is unknown."""


class ServiceClient:
    """Sends commands and queries to services and returns their replies.

    A call that times out or loses its connection is sent again with the same
    idempotency key, so a command the service already applied is answered
    from its record instead of being applied twice.
    """

    def __init__(
        self,
        transport: Transport,
        wiring: Wiring,
        *,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        timeout: float = 10.0,
        attempts: int = 3,
    ) -> None:
        self._transport = transport
        self._wiring = wiring
        self._clock = clock
        self._new_id = new_id
        self._timeout = timeout
        self._attempts = attempts

    def send(
        self,
        service: str,
        body: Command | Query,
        expect: type[R],
        *,
        actor_id: str | None = None,
        correlation_id: str | None = None,
    ) -> R:
        """Send `body` to `service` and return its reply, which must be an `expect`.

        Raises `DomainError` when the service refuses, `ServiceUnavailable` when
        it does not answer after every attempt.
        """
        key = self._new_id()
        correlation_id = correlation_id or key
        last_error: Exception | None = None
        for attempt in range(1, self._attempts + 1):
            request = Request(
                body,
                request_id=self._new_id(),
                idempotency_key=key,
                correlation_id=correlation_id,
                sent_at=self._clock(),
                actor_id=actor_id,
            )
            try:
                reply = self._transport.call(
                    self._wiring.commands_exchange,
                    service,
                    protocol.request_message(request),
                    timeout=self._timeout,
                )
            except RemoteError as error:
                raise DomainError(error.code, error.message, error.details.get("field") or None) from None
            except TransportClosed:
                raise
            except (RequestTimeout, TransportError) as error:
                log.warning("%s to %s: attempt %d failed: %s", request.type, service, attempt, error)
                last_error = error
                continue
            result = protocol.decode_reply(reply.body)
            if not isinstance(result, expect):
                raise TypeError(f"{service} answered {request.type} with {type(result).__name__}")
            return result
        raise ServiceUnavailable(f"{service} did not answer {type(body).__name__}: {last_error}")
