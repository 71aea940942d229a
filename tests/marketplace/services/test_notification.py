"""The notification service: which e-mail each event sends to whom, and each e-mail sent exactly once.

The service runs with a `RecordingMailer` and `public_url=http://localhost:8000`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import cast

import attrs
import pykka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.codec import Envelope
from marketplace.events import (
    Event,
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
from marketplace.mail import OutgoingEmail, RecordingMailer
from marketplace.service import Service
from marketplace.services.notification import EMAILS, OUTBOX, EmailStatus, NotificationService
from tests import strategies
from tests.marketplace.harness import START, ServiceHarness, running

PUBLIC_URL = "http://localhost:8000"
ORDER_LINK = f"{PUBLIC_URL}/orders/order1"
DUE = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

VERIFICATION = VerificationEmailRequested(
    user_id="ann1",
    username="ann",
    email="ann@example.com",
    verify_link=f"{PUBLIC_URL}/verify-email?token=abc.def",
    reason=VerificationReason.SIGN_UP,
)
RESET = PasswordResetRequested(
    user_id="ann1",
    username="ann",
    email="ann@example.com",
    reset_link=f"{PUBLIC_URL}/reset-password?token=ghi.jkl",
    expires_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
)
CHANGED = PasswordChanged(
    user_id="ann1",
    username="ann",
    email="ann@example.com",
    reason=PasswordChangeReason.CHANGE,
    changed_at=START,
)
OFFER = OfferSent(
    offer_id="offer1",
    conversation_id="conv1",
    gig_id="gig1",
    gig_title="A logo for your café",
    seller_id="sam1",
    seller_username="sam",
    buyer_id="ann1",
    buyer_username="ann",
    buyer_email="ann@example.com",
    price_cents=150_000,
    delivery_days=3,
    description="Three drafts and the final files.",
    offer_link=f"{PUBLIC_URL}/offers/offer1",
)
PLACED = OrderPlaced(
    order_id="order1",
    gig_id="gig1",
    gig_title="A logo",
    buyer_id="ann1",
    buyer_username="ann",
    buyer_email="ann@example.com",
    seller_id="sam1",
    seller_username="sam",
    seller_email="sam@example.com",
    price_cents=1234,
    service_fee_cents=268,
    total_cents=1502,
    seller_earnings_cents=987,
    placed_at=START,
    due_at=DUE,
)
DELIVERED = OrderDelivered(
    order_id="order1",
    gig_title="A logo",
    buyer_id="ann1",
    buyer_username="ann",
    buyer_email="ann@example.com",
    seller_id="sam1",
    seller_username="sam",
    delivered_at=START,
)
EXTENSION_REQUESTED = OrderExtensionRequested(
    order_id="order1",
    gig_title="A logo",
    buyer_id="ann1",
    buyer_username="ann",
    buyer_email="ann@example.com",
    seller_id="sam1",
    seller_username="sam",
    original_due_at=DUE,
    requested_due_at=LATER,
    reason="The printer broke.",
)
EXTENSION_APPROVED = OrderExtensionDecided(
    order_id="order1",
    gig_title="A logo",
    buyer_id="ann1",
    buyer_username="ann",
    seller_id="sam1",
    seller_username="sam",
    seller_email="sam@example.com",
    decision=ExtensionDecision.APPROVED,
    original_due_at=DUE,
    requested_due_at=LATER,
)
COMPLETED = OrderCompleted(
    order_id="order1",
    gig_id="gig1",
    gig_title="A logo",
    buyer_id="ann1",
    seller_id="sam1",
    seller_username="sam",
    seller_email="sam@example.com",
    seller_earnings_cents=987,
    completed_at=START,
)
CANCELLED = OrderCancelled(
    order_id="order1",
    gig_id="gig1",
    gig_title="A logo",
    buyer_id="ann1",
    buyer_username="ann",
    buyer_email="ann@example.com",
    seller_id="sam1",
    seller_username="sam",
    seller_email="sam@example.com",
    cancelled_by=Party.BUYER,
    reason="Changed my mind.",
    refund_cents=1502,
    cancelled_at=START,
)


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def notification(mailer: RecordingMailer) -> Iterator[ServiceHarness]:
    yield from running(NotificationService, mailer=mailer, public_url=PUBLIC_URL)


def only_email(mailer: RecordingMailer) -> OutgoingEmail:
    [email] = mailer.sent
    return email


def envelope_of(event: Event, message_id: str = "msg1") -> Envelope:
    return Envelope.start(event, producer="test", message_id=message_id, occurred_at=START)


class Crash(Exception):
    """An injected crash."""


def crash_at(point: str) -> Callable[[str, str], None]:
    def fault(service: str, where: str) -> None:
        if where == point:
            raise Crash(f"{service} crashed at {where}")

    return fault


def restart(
    notification: ServiceHarness,
    mailer: RecordingMailer,
    faults: Callable[[str, str], None] | None,
) -> None:
    """Replace the harness's actor by a new one on the same store, with `mailer` and `faults`."""
    notification.stop()
    context = attrs.evolve(notification.context, faults=faults)
    ref = NotificationService.start(context, None, mailer=mailer, public_url=PUBLIC_URL)
    notification.ref = cast("pykka.ActorRef[Service]", ref)


class FlakyMailer(RecordingMailer):
    """Fails the first `failures` sends (having sent them anyway if `record_failures`), then sends."""

    def __init__(self, failures: int, *, record_failures: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.record_failures = record_failures

    def send(self, email: OutgoingEmail) -> None:
        if self.failures > 0:
            self.failures -= 1
            if self.record_failures:
                super().send(email)
            raise ConnectionRefusedError("SMTP server down")
        super().send(email)


# What the service is.


def test_notification_consumes_the_email_events_publishes_nothing_and_answers_nothing() -> None:
    assert NotificationService.consumes() == {
        VerificationEmailRequested,
        PasswordResetRequested,
        PasswordChanged,
        OfferSent,
        OrderPlaced,
        OrderDelivered,
        OrderExtensionRequested,
        OrderExtensionDecided,
        OrderCompleted,
        OrderCancelled,
    }
    assert NotificationService.publishes == frozenset()
    assert NotificationService.answers() == frozenset()


# Accounts.


def test_a_verification_request_sends_the_verify_link(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    assert notification.deliver(VERIFICATION) == []
    email = only_email(mailer)
    assert (email.to, email.subject) == ("ann@example.com", "Verify your e-mail address")
    assert VERIFICATION.verify_link in email.body
    assert email.body.startswith("Hi ann,")


def test_a_resent_verification_says_it_is_a_new_link(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(attrs.evolve(VERIFICATION, reason=VerificationReason.RESEND))
    assert "new link" in only_email(mailer).body


def test_a_reset_request_sends_the_reset_link_and_its_expiry(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(RESET)
    email = only_email(mailer)
    assert (email.to, email.subject) == ("ann@example.com", "Reset your password")
    assert RESET.reset_link in email.body
    assert "2026-01-05 10:00 UTC" in email.body


@pytest.mark.parametrize(
    ("reason", "how"),
    [(PasswordChangeReason.CHANGE, "from your account"), (PasswordChangeReason.RESET, "reset link")],
)
def test_a_password_change_is_announced_to_the_user(
    notification: ServiceHarness, mailer: RecordingMailer, reason: PasswordChangeReason, how: str
) -> None:
    notification.deliver(attrs.evolve(CHANGED, reason=reason))
    email = only_email(mailer)
    assert (email.to, email.subject) == ("ann@example.com", "Your password was changed")
    assert how in email.body
    assert f"{PUBLIC_URL}/forgot-password" in email.body


# Chat.


def test_a_custom_offer_goes_to_the_buyer_with_its_terms_and_link(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(OFFER)
    email = only_email(mailer)
    assert (email.to, email.subject) == ("ann@example.com", "Custom offer from sam")
    for shown in ("$1,500.00", "3 days", OFFER.description, OFFER.offer_link, "A logo for your café"):
        assert shown in email.body


# Orders.


def test_a_placed_order_tells_the_seller_and_gives_the_buyer_a_receipt(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(PLACED)
    [to_seller] = mailer.sent_to("sam@example.com")
    [receipt] = mailer.sent_to("ann@example.com")
    assert len(mailer.sent) == 2
    assert to_seller.subject == "You received an order: A logo"
    assert "ann ordered" in to_seller.body
    assert "Your earnings: $9.87" in to_seller.body
    assert receipt.subject == "Your receipt for A logo"
    for line in ("Price: $12.34", "Service fee: $2.68", "Total paid: $15.02", "2026-01-12 09:00 UTC"):
        assert line in receipt.body
    assert ORDER_LINK in to_seller.body and ORDER_LINK in receipt.body


def test_a_delivered_order_asks_the_buyer_for_a_review(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(DELIVERED)
    email = only_email(mailer)
    assert (email.to, email.subject) == ("ann@example.com", "Your order is ready for review: A logo")
    assert ORDER_LINK in email.body


def test_an_extension_request_shows_the_buyer_both_dates_and_the_reason(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(EXTENSION_REQUESTED)
    email = only_email(mailer)
    assert (email.to, email.subject) == ("ann@example.com", "Extension requested: A logo")
    for shown in ("2026-01-12 09:00 UTC", "2026-01-15 09:00 UTC", "The printer broke.", ORDER_LINK):
        assert shown in email.body


@pytest.mark.parametrize(
    ("decision", "subject", "due"),
    [
        (ExtensionDecision.APPROVED, "Extension approved: A logo", "now due 2026-01-15 09:00 UTC"),
        (ExtensionDecision.REJECTED, "Extension rejected: A logo", "still due 2026-01-12 09:00 UTC"),
    ],
)
def test_the_seller_hears_the_extension_decision(
    notification: ServiceHarness, mailer: RecordingMailer, decision: ExtensionDecision, subject: str, due: str
) -> None:
    notification.deliver(attrs.evolve(EXTENSION_APPROVED, decision=decision))
    email = only_email(mailer)
    assert (email.to, email.subject) == ("sam@example.com", subject)
    assert due in email.body


def test_a_completed_order_tells_the_seller_the_payment_is_released(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(COMPLETED)
    email = only_email(mailer)
    assert (email.to, email.subject) == ("sam@example.com", "Order completed, payment released: A logo")
    assert "$9.87" in email.body


def test_a_cancelled_order_tells_the_buyer_of_the_refund_and_the_seller_of_the_cancellation(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(CANCELLED)
    [to_buyer] = mailer.sent_to("ann@example.com")
    [to_seller] = mailer.sent_to("sam@example.com")
    assert to_buyer.subject == "Order cancelled, refund issued: A logo"
    assert "You cancelled" in to_buyer.body and "$15.02" in to_buyer.body
    assert to_seller.subject == "Order cancelled: A logo"
    assert "ann cancelled" in to_seller.body and "Changed my mind." in to_seller.body


def test_a_cancellation_without_a_reason_shows_none(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver(attrs.evolve(CANCELLED, reason="", cancelled_by=Party.SELLER))
    to_buyer, to_seller = mailer.sent_to("ann@example.com")[0], mailer.sent_to("sam@example.com")[0]
    assert "sam cancelled" in to_buyer.body and "You cancelled" in to_seller.body
    assert "Reason" not in to_buyer.body


EXPECTED_RECIPIENTS: dict[type[Event], Callable[[Event], list[str]]] = {
    VerificationEmailRequested: lambda e: [e.email],  # type: ignore[attr-defined]
    PasswordResetRequested: lambda e: [e.email],  # type: ignore[attr-defined]
    PasswordChanged: lambda e: [e.email],  # type: ignore[attr-defined]
    OfferSent: lambda e: [e.buyer_email],  # type: ignore[attr-defined]
    OrderPlaced: lambda e: [e.seller_email, e.buyer_email],  # type: ignore[attr-defined]
    OrderDelivered: lambda e: [e.buyer_email],  # type: ignore[attr-defined]
    OrderExtensionRequested: lambda e: [e.buyer_email],  # type: ignore[attr-defined]
    OrderExtensionDecided: lambda e: [e.seller_email],  # type: ignore[attr-defined]
    OrderCompleted: lambda e: [e.seller_email],  # type: ignore[attr-defined]
    OrderCancelled: lambda e: [e.buyer_email, e.seller_email],  # type: ignore[attr-defined]
}


@given(st.one_of(*(strategies.EVENT_STRATEGIES[kind]() for kind in EXPECTED_RECIPIENTS)))
def test_every_event_sends_its_emails_to_the_addresses_it_carries(event: Event) -> None:
    mailer = RecordingMailer()
    for notification in running(NotificationService, mailer=mailer, public_url=PUBLIC_URL):
        notification.deliver(event)
    assert sorted(e.to for e in mailer.sent) == sorted(EXPECTED_RECIPIENTS[type(event)](event))
    links = [
        getattr(event, name) for name in ("verify_link", "reset_link", "offer_link") if hasattr(event, name)
    ]
    if hasattr(event, "order_id"):
        links.append(f"{PUBLIC_URL}/orders/")
    for email in mailer.sent:
        assert email.subject.strip() and "\n" not in email.subject
        assert all(link in email.body for link in links)


# Exactly once.


def test_emails_are_recorded_as_sent_with_the_message_that_caused_them(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver_envelope(envelope_of(PLACED, "placed-1"))
    state = notification.store.snapshot()
    records = list(state[EMAILS].values())
    assert [r.status for r in records] == [EmailStatus.SENT, EmailStatus.SENT]
    assert {r.cause_message_id for r in records} == {"placed-1"}
    assert {r.email_id for r in records} == {e.email_id for e in mailer.sent}
    assert state.get(OUTBOX, {}) == {}


def test_a_redelivered_event_sends_nothing_again(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    envelope = envelope_of(PLACED)
    notification.deliver_envelope(envelope)
    notification.deliver_envelope(envelope)
    assert len(mailer.sent) == 2


def test_the_same_event_in_two_messages_sends_twice(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    notification.deliver_envelope(envelope_of(DELIVERED, "msg1"))
    notification.deliver_envelope(envelope_of(DELIVERED, "msg2"))
    assert len(mailer.sent) == 2


def test_a_crash_before_commit_sends_nothing_and_the_redelivery_sends_once(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    restart(notification, mailer, crash_at("before-commit"))
    envelope = envelope_of(PLACED)
    with pytest.raises(Crash):
        notification.deliver_envelope(envelope)
    assert mailer.sent == []
    assert notification.store.snapshot().get(EMAILS, {}) == {}
    restart(notification, mailer, None)
    notification.deliver_envelope(envelope)
    notification.deliver_envelope(envelope)
    assert sorted(e.to for e in mailer.sent) == ["ann@example.com", "sam@example.com"]


def test_a_crash_after_commit_sends_the_pending_emails_on_redelivery(
    notification: ServiceHarness, mailer: RecordingMailer
) -> None:
    restart(notification, mailer, crash_at("after-commit"))
    envelope = envelope_of(PLACED)
    with pytest.raises(Crash):
        notification.deliver_envelope(envelope)
    assert mailer.sent == []
    assert len(notification.store.snapshot()[OUTBOX]) == 2
    restart(notification, mailer, None)
    notification.deliver_envelope(envelope)
    notification.deliver_envelope(envelope)
    assert sorted(e.to for e in mailer.sent) == ["ann@example.com", "sam@example.com"]


def test_a_failed_send_fails_the_delivery_and_the_email_goes_out_on_redelivery(
    notification: ServiceHarness,
) -> None:
    flaky = FlakyMailer(failures=1)
    restart(notification, flaky, None)
    envelope = envelope_of(DELIVERED)
    with pytest.raises(ConnectionRefusedError):
        notification.deliver_envelope(envelope)
    assert flaky.sent == []
    restart(notification, flaky, None)
    notification.deliver_envelope(envelope)
    assert [e.to for e in flaky.sent] == ["ann@example.com"]
    assert notification.store.snapshot()[OUTBOX] == {}


def test_an_email_left_pending_goes_out_with_the_next_event(notification: ServiceHarness) -> None:
    flaky = FlakyMailer(failures=1)
    restart(notification, flaky, None)
    with pytest.raises(ConnectionRefusedError):
        notification.deliver_envelope(envelope_of(DELIVERED, "msg1"))
    restart(notification, flaky, None)
    notification.deliver_envelope(envelope_of(COMPLETED, "msg2"))
    assert sorted(e.to for e in flaky.sent) == ["ann@example.com", "sam@example.com"]


def test_an_email_resent_after_a_lost_confirmation_keeps_its_id(notification: ServiceHarness) -> None:
    # The one duplicate left: the mailer took the e-mail but the process died before marking it sent.
    mailer = FlakyMailer(failures=1, record_failures=True)
    restart(notification, mailer, None)
    envelope = envelope_of(DELIVERED)
    with pytest.raises(ConnectionRefusedError):
        notification.deliver_envelope(envelope)
    restart(notification, mailer, None)
    notification.deliver_envelope(envelope)
    first, second = mailer.sent
    assert first == second
