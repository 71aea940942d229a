"""Mailers: where the notification service's e-mails go.

`Mailer` is the interface (one `send`); `RecordingMailer` keeps what it is
given (tests, and the demo, which also prints each e-mail); `SmtpMailer`
delivers through an SMTP server. An e-mail's `Message-ID` is derived from its
id, which stays the same when the same e-mail is sent again after a crash, so
that a receiver can drop the duplicate.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

from attrs import field, frozen

from .validation import email, identifier, text

MAX_BODY_LENGTH = 20_000
MAX_SUBJECT_LENGTH = 500
DEFAULT_SMTP_TIMEOUT = 10.0

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@frozen
class OutgoingEmail:
    """One plain-text e-mail to one recipient; `email_id` identifies it across retries."""

    email_id: str = field(validator=identifier)
    to: str = field(validator=email)
    subject: str = field(validator=text(max_length=MAX_SUBJECT_LENGTH))
    body: str = field(validator=text(max_length=MAX_BODY_LENGTH))


class Mailer(Protocol):
    """Sends e-mails; raises when an e-mail could not be handed over (it is then sent again later)."""

    def send(self, email: OutgoingEmail) -> None:
        """Hand `email` over for delivery."""


def render(email: OutgoingEmail) -> str:
    """An e-mail as a block of text, for a console."""
    return f"--- e-mail to {email.to}: {email.subject} ---\n{email.body}"


class RecordingMailer:
    """Keeps every e-mail it is given, in order; `echo` (say `print`) also shows each one as it is sent."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self._echo = echo
        self._sent: list[OutgoingEmail] = []
        self._changed = threading.Condition()

    @property
    def sent(self) -> list[OutgoingEmail]:
        """The e-mails sent so far (a copy)."""
        with self._changed:
            return list(self._sent)

    def sent_to(self, address: str) -> list[OutgoingEmail]:
        """The e-mails sent so far to `address` (compared without regard to case)."""
        return [e for e in self.sent if e.to.lower() == address.lower()]

    def send(self, email: OutgoingEmail) -> None:
        """Record `email` (and echo it)."""
        with self._changed:
            self._sent.append(email)
            self._changed.notify_all()
        if self._echo is not None:
            self._echo(render(email))

    def wait_for(self, count: int, timeout: float) -> list[OutgoingEmail]:
        """The e-mails sent, once there are at least `count`; `TimeoutError` after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._sent) >= count, timeout):
                raise TimeoutError(f"{len(self._sent)} e-mails sent after {timeout} s, expected {count}")
            return list(self._sent)


class SmtpMailer:
    """Sends each e-mail through an SMTP server, one connection per e-mail.

    With `username`, it logs in; that requires `starttls`, so that the
    password never crosses the network in clear.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = DEFAULT_SMTP_TIMEOUT,
    ) -> None:
        if username is not None and not starttls:
            raise ValueError("an SMTP login needs starttls: the password would travel in clear")
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout = timeout

    def __repr__(self) -> str:
        login = f", username={self.username!r}, password=***" if self.username is not None else ""
        return (
            f"SmtpMailer({self.host!r}, {self.port}, sender={self.sender!r}{login}, starttls={self.starttls})"
        )

    def message(self, email: OutgoingEmail) -> EmailMessage:
        """`email` as an RFC 5322 message from `sender`, with a Message-ID made from its id."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(email, self.sender)
        message.set_content(email.body)
        return message

    def send(self, email: OutgoingEmail) -> None:
        """Deliver `email` to the server; raises `smtplib.SMTPException` or `OSError` if it was not taken."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username is not None:
                smtp.login(self.username, self._password or "")
            smtp.send_message(self.message(email), from_addr=parseaddr(self.sender)[1], to_addrs=[email.to])


def message_id(email: OutgoingEmail, sender: str) -> str:
    """The Message-ID of `email`: its id at the sender's domain, the same every time it is sent."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "marketplace.invalid"
    local = email.email_id
    if not _DOT_ATOM.fullmatch(local):
        local = hashlib.sha256(local.encode("utf-8")).hexdigest()
    return f"<{local}@{domain}>"
