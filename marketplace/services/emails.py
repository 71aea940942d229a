"""What the marketplace's e-mails say, and the links of the site they point to.

One function per kind of e-mail, each taking the event that calls for it and
returning a `Draft` (recipient, subject, plain-text body) for the
notification service to queue. `Links` builds the site's public addresses
(the auth service uses it for the verification and reset links).
Money is shown in dollars (`$1,234.56`), times in UTC.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from attrs import field, frozen

from ..events import (
    ExtensionDecision,
    OfferSent,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderExtensionDecided,
    OrderExtensionRequested,
    OrderPlaced,
    Party,
    PasswordChanged,
    PasswordChangeReason,
    PasswordResetRequested,
    VerificationEmailRequested,
    VerificationReason,
)
from ..validation import link

SIGNATURE = "-- \nThe Marketplace team"


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


@frozen
class Links:
    """The public addresses of the site, under `public_url` (such as `https://market.example`)."""

    public_url: str = field(converter=_without_trailing_slash, validator=link)

    def verify_email(self, token: str) -> str:
        """The page that verifies an address with `token`."""
        return f"{self.public_url}/verify-email?token={quote(token, safe='')}"

    def reset_password(self, token: str) -> str:
        """The page that sets a new password with `token`."""
        return f"{self.public_url}/reset-password?token={quote(token, safe='')}"

    def forgot_password(self) -> str:
        """The page that sends a password reset link."""
        return f"{self.public_url}/forgot-password"

    def order(self, order_id: str) -> str:
        """The page of an order."""
        return f"{self.public_url}/orders/{quote(order_id, safe='')}"


@frozen
class Draft:
    """An e-mail written but not yet queued."""

    to: str
    subject: str
    body: str


def dollars(cents: int) -> str:
    """An amount of cents in dollars: `$1,234.56`."""
    return f"${cents // 100:,}.{cents % 100:02d}"


def when(moment: datetime) -> str:
    """A time as e-mails show it: `2026-01-05 09:00 UTC`."""
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _letter(to: str, subject: str, greeting_name: str, *paragraphs: str) -> Draft:
    body = "\n\n".join((f"Hi {greeting_name},", *paragraphs, SIGNATURE))
    return Draft(to=to, subject=subject, body=body + "\n")


# Accounts.


def verify_email(event: VerificationEmailRequested) -> Draft:
    """To the new user: confirm your address."""
    opening = (
        "Welcome to the marketplace! Please confirm your e-mail address by opening this link:"
        if event.reason is VerificationReason.SIGN_UP
        else "Here is a new link to confirm your e-mail address:"
    )
    return _letter(
        event.email,
        "Verify your e-mail address",
        event.username,
        f"{opening}\n{event.verify_link}",
        "If you did not sign up, you can ignore this e-mail.",
    )


def reset_password(event: PasswordResetRequested) -> Draft:
    """To the user who forgot their password: the reset link, valid for one hour."""
    return _letter(
        event.email,
        "Reset your password",
        event.username,
        f"To choose a new password, open this link:\n{event.reset_link}",
        f"The link works once, until {when(event.expires_at)}.",
        "If you did not ask for it, you can ignore this e-mail: your password stays as it is.",
    )


def password_changed(event: PasswordChanged, links: Links) -> Draft:
    """To the user: your password changed (and what to do if it was not you)."""
    how = "with a reset link" if event.reason is PasswordChangeReason.RESET else "from your account"
    return _letter(
        event.email,
        "Your password was changed",
        event.username,
        f"Your password was changed {how} on {when(event.changed_at)}.",
        f"If this was not you, reset your password now:\n{links.forgot_password()}",
    )


# Chat.


def custom_offer(event: OfferSent) -> Draft:
    """To the buyer: a seller's custom offer."""
    return _letter(
        event.buyer_email,
        f"Custom offer from {event.seller_username}",
        event.buyer_username,
        f"{event.seller_username} sent you a custom offer for \u201c{event.gig_title}\u201d:",
        event.description,
        f"Price: {dollars(event.price_cents)}\nDelivery: {_days(event.delivery_days)}",
        f"See the offer and accept it here:\n{event.offer_link}",
    )


# Orders.


def order_received(event: OrderPlaced, links: Links) -> Draft:
    """To the seller: a buyer placed an order."""
    return _letter(
        event.seller_email,
        f"You received an order: {event.gig_title}",
        event.seller_username,
        f"{event.buyer_username} ordered \u201c{event.gig_title}\u201d.",
        f"Price: {dollars(event.price_cents)}\n"
        f"Your earnings: {dollars(event.seller_earnings_cents)}\n"
        f"Due: {when(event.due_at)}",
        f"Order details:\n{links.order(event.order_id)}",
    )


def order_receipt(event: OrderPlaced, links: Links) -> Draft:
    """To the buyer: the receipt of the order (price, service fee, total)."""
    return _letter(
        event.buyer_email,
        f"Your receipt for {event.gig_title}",
        event.buyer_username,
        f"Thank you for your order of \u201c{event.gig_title}\u201d from {event.seller_username}.",
        f"Price: {dollars(event.price_cents)}\n"
        f"Service fee: {dollars(event.service_fee_cents)}\n"
        f"Total paid: {dollars(event.total_cents)}",
        f"Expected delivery: {when(event.due_at)}",
        f"Order details:\n{links.order(event.order_id)}",
    )


def order_delivered(event: OrderDelivered, links: Links) -> Draft:
    """To the buyer: the order is ready for review."""
    return _letter(
        event.buyer_email,
        f"Your order is ready for review: {event.gig_title}",
        event.buyer_username,
        f"{event.seller_username} delivered your order of \u201c{event.gig_title}\u201d "
        f"on {when(event.delivered_at)}.",
        f"Review the delivery and complete the order here:\n{links.order(event.order_id)}",
    )


def extension_requested(event: OrderExtensionRequested, links: Links) -> Draft:
    """To the buyer: the seller asks for a later due date."""
    return _letter(
        event.buyer_email,
        f"Extension requested: {event.gig_title}",
        event.buyer_username,
        f"{event.seller_username} asks for more time on your order of \u201c{event.gig_title}\u201d.",
        f"Current due date: {when(event.original_due_at)}\n"
        f"Requested due date: {when(event.requested_due_at)}",
        f"Reason: {event.reason}",
        f"Approve or reject the request here:\n{links.order(event.order_id)}",
    )


def extension_decided(event: OrderExtensionDecided, links: Links) -> Draft:
    """To the seller: the buyer approved or rejected the extension."""
    if event.decision is ExtensionDecision.APPROVED:
        subject = f"Extension approved: {event.gig_title}"
        outcome = (
            f"{event.buyer_username} approved your request: "
            f"the order is now due {when(event.requested_due_at)}."
        )
    else:
        subject = f"Extension rejected: {event.gig_title}"
        outcome = (
            f"{event.buyer_username} rejected your request for {when(event.requested_due_at)}: "
            f"the order is still due {when(event.original_due_at)}."
        )
    return _letter(
        event.seller_email,
        subject,
        event.seller_username,
        outcome,
        f"Order details:\n{links.order(event.order_id)}",
    )


def order_completed(event: OrderCompleted, links: Links) -> Draft:
    """To the seller: the buyer completed the order, the payment is released."""
    return _letter(
        event.seller_email,
        f"Order completed, payment released: {event.gig_title}",
        event.seller_username,
        f"The buyer accepted your delivery of \u201c{event.gig_title}\u201d on {when(event.completed_at)}.",
        f"Your earnings of {dollars(event.seller_earnings_cents)} have been released.",
        f"Order details:\n{links.order(event.order_id)}",
    )


def order_cancelled_for_buyer(event: OrderCancelled, links: Links) -> Draft:
    """To the buyer: the order was cancelled and refunded."""
    return _letter(
        event.buyer_email,
        f"Order cancelled, refund issued: {event.gig_title}",
        event.buyer_username,
        _cancellation(event, Party.BUYER),
        f"A refund of {dollars(event.refund_cents)} has been issued to you.",
        f"Order details:\n{links.order(event.order_id)}",
    )


def order_cancelled_for_seller(event: OrderCancelled, links: Links) -> Draft:
    """To the seller: the order was cancelled and the buyer refunded."""
    return _letter(
        event.seller_email,
        f"Order cancelled: {event.gig_title}",
        event.seller_username,
        _cancellation(event, Party.SELLER),
        f"The buyer has been refunded {dollars(event.refund_cents)}.",
        f"Order details:\n{links.order(event.order_id)}",
    )


def _cancellation(event: OrderCancelled, reader: Party) -> str:
    if event.cancelled_by is reader:
        who = "You"
    elif event.cancelled_by is Party.BUYER:
        who = event.buyer_username
    else:
        who = event.seller_username
    sentence = f"{who} cancelled the order of \u201c{event.gig_title}\u201d on {when(event.cancelled_at)}."
    return f"{sentence}\nReason: {event.reason}" if event.reason.strip() else sentence


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"
