"""The notification service: turns events into e-mails and sends each exactly once.

A handler renders the e-mails an event calls for and records them as pending,
in the same transaction that records the event as processed. Only after that
commit does `after_commit` send the pending e-mails through the mailer, each
marked sent in a transaction of its own once the mailer took it. So a crash
before the commit sends nothing (the redelivered event is handled afresh), a
redelivered event that was already processed renders nothing new, and an
e-mail is sent again only if the process died between handing it to the
mailer and marking it sent; it keeps its id, and so its Message-ID, so that
the receiving side can drop that duplicate.

If the mailer fails, the exception escapes: the event's delivery fails and is
retried, and the e-mails stay pending until a later `after_commit` sends them.
The service publishes nothing and answers no commands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from attrs import evolve, field, frozen

from ..events import (
    OfferSent,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderExtensionDecided,
    OrderExtensionRequested,
    OrderPlaced,
    PasswordChanged,
    PasswordResetRequested,
    VerificationEmailRequested,
)
from ..mail import MAX_BODY_LENGTH, MAX_SUBJECT_LENGTH, Mailer, OutgoingEmail
from ..service import Context, Service, Work, handles
from ..validation import email, identifier, member_of, optional, text, utc_datetime
from . import emails
from .emails import Draft, Links

EMAILS = "emails"
"""Collection of every e-mail written, by e-mail id."""
OUTBOX = "outbox"
"""Collection of the ids of the e-mails not yet sent, by e-mail id."""


class EmailStatus(StrEnum):
    """Where an e-mail is: written and waiting for the mailer, or taken by it."""

    PENDING = "pending"
    SENT = "sent"


@frozen
class Email:
    """An e-mail the service wrote because of a message (`cause_message_id`), and whether it went out."""

    email_id: str = field(validator=identifier)
    to: str = field(validator=email)
    subject: str = field(validator=text(max_length=MAX_SUBJECT_LENGTH))
    body: str = field(validator=text(max_length=MAX_BODY_LENGTH))
    cause_message_id: str | None = field(validator=optional(identifier))
    written_at: datetime = field(validator=utc_datetime)
    status: EmailStatus = field(default=EmailStatus.PENDING, validator=member_of(EmailStatus))
    sent_at: datetime | None = field(default=None, validator=optional(utc_datetime))

    def outgoing(self) -> OutgoingEmail:
        """This e-mail as the mailer takes it."""
        return OutgoingEmail(email_id=self.email_id, to=self.to, subject=self.subject, body=self.body)


class NotificationService(Service):
    """Sends the e-mails that the events of auth, chat and order call for."""

    name = "notification"
    publishes = frozenset()

    def __init__(
        self,
        context: Context,
        on_crash: Callable[[Service], None] | None = None,
        *,
        mailer: Mailer,
        public_url: str,
    ) -> None:
        super().__init__(context, on_crash)
        self._mailer = mailer
        self._links = Links(public_url)

    # Accounts.

    @handles(VerificationEmailRequested)
    def when_verification_email_requested(self, work: Work, event: VerificationEmailRequested) -> None:
        """The user gets the link that verifies their address."""
        _write(work, emails.verify_email(event))

    @handles(PasswordResetRequested)
    def when_password_reset_requested(self, work: Work, event: PasswordResetRequested) -> None:
        """The user gets the link that resets their password."""
        _write(work, emails.reset_password(event))

    @handles(PasswordChanged)
    def when_password_changed(self, work: Work, event: PasswordChanged) -> None:
        """The user is told their password changed."""
        _write(work, emails.password_changed(event, self._links))

    # Chat.

    @handles(OfferSent)
    def when_offer_sent(self, work: Work, event: OfferSent) -> None:
        """The buyer gets the seller's custom offer, with its link."""
        _write(work, emails.custom_offer(event))

    # Orders.

    @handles(OrderPlaced)
    def when_order_placed(self, work: Work, event: OrderPlaced) -> None:
        """The seller hears of the new order; the buyer gets the receipt."""
        _write(work, emails.order_received(event, self._links))
        _write(work, emails.order_receipt(event, self._links))

    @handles(OrderDelivered)
    def when_order_delivered(self, work: Work, event: OrderDelivered) -> None:
        """The buyer is asked to review the delivery."""
        _write(work, emails.order_delivered(event, self._links))

    @handles(OrderExtensionRequested)
    def when_order_extension_requested(self, work: Work, event: OrderExtensionRequested) -> None:
        """The buyer is asked to approve or reject a later due date."""
        _write(work, emails.extension_requested(event, self._links))

    @handles(OrderExtensionDecided)
    def when_order_extension_decided(self, work: Work, event: OrderExtensionDecided) -> None:
        """The seller hears the buyer's decision on the extension."""
        _write(work, emails.extension_decided(event, self._links))

    @handles(OrderCompleted)
    def when_order_completed(self, work: Work, event: OrderCompleted) -> None:
        """The seller hears the payment is released."""
        _write(work, emails.order_completed(event, self._links))

    @handles(OrderCancelled)
    def when_order_cancelled(self, work: Work, event: OrderCancelled) -> None:
        """The buyer hears of the refund, the seller of the cancellation."""
        _write(work, emails.order_cancelled_for_buyer(event, self._links))
        _write(work, emails.order_cancelled_for_seller(event, self._links))

    # Sending.

    def after_commit(self) -> None:
        """Send every pending e-mail, marking each sent in its own transaction once the mailer took it."""
        store = self.context.store
        with store.transaction() as tx:
            pending = [tx.get(EMAILS, email_id) for email_id in tx.values(OUTBOX)]
        for record in pending:
            self._mailer.send(record.outgoing())
            with store.transaction() as tx:
                tx.put(
                    EMAILS,
                    record.email_id,
                    evolve(record, status=EmailStatus.SENT, sent_at=self.context.clock()),
                )
                tx.delete(OUTBOX, record.email_id)


def _write(work: Work, draft: Draft) -> None:
    """Record `draft` as a pending e-mail, sent once this work has committed."""
    record = Email(
        email_id=work.new_id(),
        to=draft.to,
        subject=draft.subject,
        body=draft.body,
        cause_message_id=work.cause_id,
        written_at=work.now,
    )
    work.put(EMAILS, record.email_id, record)
    work.put(OUTBOX, record.email_id, record.email_id)
