"""The demo: one whole story through the gateway, every event and e-mail printed as it happens.

Two people sign up and verify their addresses (with the token from the link
in their e-mail), Bob becomes a seller and publishes a gig, Alice finds it,
they chat, Bob sends a custom offer that Alice accepts, the order is placed,
Bob asks for more time and Alice approves, Bob delivers, Alice completes,
and both review. After each step the demo waits until every event of the
step has been handled, then prints the event lines that the services'
delivery hook recorded (producer -> consumer, type, key fields) and the
e-mails the mailer sent. At the end: the seller's figures, the gig's rating,
the order, and how many messages the transport routed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime

import attrs
from attrs import frozen

from . import mail
from .bootstrap import bootstrap, random_id, utc_now
from .codec import Envelope
from .commands.gig import GigCategory, GigView
from .commands.order import OrderView
from .commands.users import SellerView
from .config import Settings
from .events import Event, ExtensionDecision
from .gateway import Marketplace

Out = Callable[[str], None]
STEP_TIMEOUT = 60.0
PASSWORD = "correct horse battery"


def _money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def summarize(event: Event) -> str:
    """The key fields of `event` on one line: ids shortened, money in dollars, a few others."""
    parts = []
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if field.name.endswith("_id") and isinstance(value, str):
            parts.append(f"{field.name[:-3]}={value[:8]}")
        elif field.name.endswith("_cents") and isinstance(value, int):
            parts.append(f"{field.name[:-6]}={_money(value)}")
        elif field.name in ("rating", "kind", "decision", "count", "reason", "cancelled_by"):
            parts.append(f"{field.name}={value}")
    return " ".join(parts)


class StoryPrinter:
    """Collects what the hooks report during a step and prints it when the step is over."""

    def __init__(self, out: Out) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._events: list[tuple[datetime, str]] = []
        self._emails: list[mail.OutgoingEmail] = []

    def event(self, consumer: str, envelope: Envelope) -> None:
        """Delivery hook: `consumer` has handled `envelope`."""
        line = f"  {envelope.producer:>6} -> {consumer:<12} {envelope.type:<24} {summarize(envelope.event)}"
        with self._lock:
            self._events.append((envelope.occurred_at, line.rstrip()))

    def email(self, email: mail.OutgoingEmail) -> None:
        """Mailer hook: `email` was sent."""
        with self._lock:
            self._emails.append(email)

    def step(self, title: str) -> None:
        """Print the title of the next step."""
        self._out(f"\n== {title}")

    def say(self, text: str) -> None:
        """Print a line of narration."""
        self._out(f"  {text}")

    def flush(self) -> None:
        """Print the events and e-mails of the step that just ended, in a stable order."""
        with self._lock:
            events, self._events = sorted(self._events), []
            emails, self._emails = self._emails, []
        for _when, line in events:
            self._out(line)
        for email in sorted(emails, key=lambda e: (e.to, e.subject)):
            self._out("  " + mail.render(email).replace("\n", "\n  | "))


class _Mailbox(mail.RecordingMailer):
    """Records e-mails and tells the printer about each one as it is sent."""

    def __init__(self, printer: StoryPrinter) -> None:
        super().__init__()
        self._printer = printer

    def send(self, email: mail.OutgoingEmail) -> None:
        super().send(email)
        self._printer.email(email)

    def link_token(self, to: str, path: str) -> str:
        """The token of the last link to `path` e-mailed to `to` (the person clicking it)."""
        for email in reversed(self.sent):
            match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_.\-]+)", email.body)
            if email.to == to and match:
                return match.group(1)
        raise LookupError(f"no {path} link e-mailed to {to}")


@frozen
class Figures:
    """How the story ended: the seller's profile and figures, the gig, the order."""

    seller: SellerView
    gig: GigView
    order: OrderView


def run_demo(
    settings: Settings,
    *,
    out: Out = print,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = random_id,
) -> int:
    """Run the story in this process, on the transport the settings name; returns the exit status."""
    printer = StoryPrinter(out)
    mailbox = _Mailbox(printer)
    out(f"marketplace demo on {settings.describe()}")
    app = bootstrap(
        settings, mailer=mailbox, observe=printer.event, clock=clock, new_id=new_id, demo=True, isolate=True
    )
    with app:
        tell_story(
            app.marketplace,
            settle=lambda: app.wait_until_quiet(STEP_TIMEOUT),
            link_token=mailbox.link_token,
            printer=printer,
        )
    stats = app.transport.stats()  # once closed: every confirm is in
    out(f"\nmessages routed by the transport: {stats.published} ({stats.dead_lettered} dead-lettered)")
    return 0


def tell_story(
    market: Marketplace,
    *,
    settle: Callable[[], None],
    link_token: Callable[[str, str], str],
    printer: StoryPrinter,
) -> Figures:
    """Play the story through the gateway `market`; return the final figures.

    `settle` returns once every event of a step has been handled; `link_token(to,
    path)` finds the token of a link e-mailed to `to` (the person clicking it).
    """

    def step(title: str, action: Callable[[], None]) -> None:
        printer.step(title)
        action()
        settle()
        printer.flush()

    people = {"alice": "alice@example.com", "bob": "bob@example.com"}

    def sign_up() -> None:
        for name, email in people.items():
            market.accounts.sign_up(username=name, email=email, password=PASSWORD, country="Spain")
            printer.say(f"{name} signed up")

    def verify() -> None:
        for name, email in people.items():
            market.accounts.verify_email(token=link_token(email, "/verify-email"))
            printer.say(f"{name} verified {email}")

    step("Alice and Bob sign up", sign_up)
    step("They verify their addresses with the links they were e-mailed", verify)
    alice = market.session(market.accounts.sign_in(email=people["alice"], password=PASSWORD).token)
    bob = market.session(market.accounts.sign_in(email=people["bob"], password=PASSWORD).token)

    gig_ids: list[str] = []

    def open_shop() -> None:
        bob.profile.become_seller(
            full_name="Bob Builder", description="Logos and brand identities.", skills=("logo design",)
        )
        gig = bob.gigs.create(
            title="I will design a minimalist logo",
            description="A clean, modern logo with three revisions and all source files.",
            category=GigCategory.DESIGN,
            tags=("logo", "branding"),
            price_cents=4_000,
            delivery_days=3,
        )
        gig_ids.append(gig.gig_id)
        printer.say(f"bob is a seller; gig '{gig.title}' at {_money(gig.price_cents)}")

    step("Bob becomes a seller and publishes a gig", open_shop)
    gig_id = gig_ids[0]

    def search() -> None:
        page = market.gigs.search(text="minimalist logo", max_price_cents=10_000)
        for found in page.items:
            printer.say(f"found '{found.title}' by {found.seller_username} at {_money(found.price_cents)}")

    step("Alice searches for a logo", search)
    conversation_ids: list[str] = []

    def chat() -> None:
        conversation = alice.chat.start(seller_id=bob.user_id, gig_id=gig_id)
        conversation_ids.append(conversation.conversation_id)
        alice.chat.send_message(conversation_id=conversation.conversation_id, text="Could you do it in teal?")
        bob.chat.send_message(conversation_id=conversation.conversation_id, text="Sure, with five revisions.")
        printer.say("alice and bob exchanged two messages")

    step("They chat", chat)
    offer_ids: list[str] = []

    def offer() -> None:
        sent = bob.chat.send_offer(
            conversation_id=conversation_ids[0],
            gig_id=gig_id,
            price_cents=6_000,
            delivery_days=4,
            description="Teal logo, five revisions, all source files.",
        )
        offer_ids.append(sent.offer_id)
        accepted = alice.chat.accept_offer(offer_id=sent.offer_id)
        printer.say(f"offer of {_money(sent.price_cents)} in {sent.delivery_days} days: {accepted.status}")

    step("Bob sends a custom offer and Alice accepts it", offer)
    order_ids: list[str] = []

    def place() -> None:
        order = alice.orders.place_from_offer(offer_id=offer_ids[0])
        order_ids.append(order.order_id)
        printer.say(
            f"order placed: price {_money(order.price_cents)}, fee {_money(order.service_fee_cents)}, "
            f"total {_money(order.total_cents)}, payment {order.payment_id[:8]}"
        )

    step("Alice places the order", place)
    order_id = order_ids[0]

    def extension() -> None:
        bob.orders.request_extension(
            order_id=order_id, extra_days=2, reason="The client asked for teal variants."
        )
        decided = alice.orders.decide_extension(order_id=order_id, decision=ExtensionDecision.APPROVED)
        printer.say(f"extension approved; due {decided.due_at:%Y-%m-%d}")

    step("Bob asks for two more days and Alice approves", extension)
    step("Bob delivers", lambda: printer.say(f"order {bob.orders.deliver(order_id=order_id).status}"))
    step(
        "Alice completes the order",
        lambda: printer.say(f"order {alice.orders.complete(order_id=order_id).status}"),
    )

    def review() -> None:
        alice.reviews.add(order_id=order_id, rating=5, comment="Beautiful work, fast and friendly.")
        bob.reviews.add(order_id=order_id, rating=5, comment="Clear brief, prompt feedback.")
        printer.say("both reviewed")

    step("Both review", review)

    seller = market.profiles.seller(seller_id=bob.user_id)
    gig = market.gigs.get(gig_id=gig_id)
    order = alice.orders.get(order_id=order_id)
    printer.step("Final figures")
    printer.say(
        f"seller {seller.username}: ongoing {seller.ongoing_jobs}, completed {seller.completed_jobs}, "
        f"cancelled {seller.cancelled_jobs}, earnings {_money(seller.total_earnings_cents)}, "
        f"gigs {seller.total_gigs}, rating {seller.ratings_sum}/{seller.ratings_count}"
    )
    printer.say(f"gig '{gig.title}': rating {gig.ratings_sum}/{gig.ratings_count}")
    printer.say(
        f"order {order.status}: total {_money(order.total_cents)}, seller earns "
        f"{_money(order.seller_earnings_cents)}, buyer review "
        f"{'yes' if order.buyer_review else 'no'}, seller review {'yes' if order.seller_review else 'no'}"
    )
    return Figures(seller, gig, order)
