"""The topology is derived from the services' declarations and matches the specification's graph."""

from __future__ import annotations

import pytest
from attrs import frozen

from marketplace.codec import Envelope
from marketplace.commands import Command, Done
from marketplace.events import GigCreated, OfferSent
from marketplace.service import UndeclaredEvent, Work, handles
from marketplace.services import SERVICES, ChatService, GigService
from marketplace.wiring import Wiring
from tests.marketplace.harness import START, ServiceHarness

# The specification (shared/seed/inter-service-communication.es.md), edge by edge:
# producer -> consumers. Written here by hand, never derived from the code.
SPECIFICATION = {
    "auth": {"notification", "users"},
    "users": {"gig"},
    "gig": {"users"},
    "chat": {"notification"},
    "order": {"users", "notification"},
    "review": {"users", "order"},
    "notification": set(),
}


def test_the_derived_event_graph_is_the_specifications_graph_edge_by_edge() -> None:
    derived = Wiring(SERVICES).graph()
    expected = {
        (producer, consumer) for producer, consumers in SPECIFICATION.items() for consumer in consumers
    }
    assert sorted(derived - expected) == [], "edges the specification does not have"
    assert sorted(expected - derived) == [], "edges of the specification that are missing"


def test_notification_only_receives_and_auth_chat_review_only_send() -> None:
    graph = Wiring(SERVICES).graph()
    assert not {c for p, c in graph if p == "notification"}
    assert not {p for p, c in graph if c in ("auth", "chat", "review")}


def test_every_service_has_its_name_and_the_seven_are_all_there() -> None:
    assert sorted(s.name for s in SERVICES) == sorted(SPECIFICATION)


def test_the_topology_has_a_queue_per_consumer_and_per_answering_service_and_nothing_else() -> None:
    wiring = Wiring(SERVICES, prefix="t.")
    topology = wiring.topology()
    consumers = {c for _, c in wiring.graph()}
    answering = {s.name for s in SERVICES if s.answers()}
    assert {q.name for q in topology.queues} == {f"t.{c}.events" for c in consumers} | {
        f"t.{s}.commands" for s in answering
    }
    assert "t.notification.commands" not in {q.name for q in topology.queues}
    for binding in topology.bindings:
        if binding.exchange.startswith("t.events."):
            producer = binding.exchange.removeprefix("t.events.")
            consumer = binding.queue.removeprefix("t.").removesuffix(".events")
            assert (producer, consumer) in wiring.graph()


def test_routing_an_event_its_producer_did_not_declare_is_refused() -> None:
    wiring = Wiring(SERVICES)
    offer_from_gig = Envelope.start(
        OfferSent(
            offer_id="o1",
            conversation_id="c1",
            gig_id="g1",
            gig_title="A gig",
            seller_id="s1",
            seller_username="sam",
            buyer_id="b1",
            buyer_username="bea",
            buyer_email="bea@example.com",
            price_cents=1000,
            delivery_days=2,
            description="Offer",
            offer_link="http://localhost:8000/offers/o1",
        ),
        producer="gig",
        message_id="m1",
        occurred_at=START,
    )
    with pytest.raises(UndeclaredEvent, match="gig does not publish OfferSent"):
        wiring.route(offer_from_gig)
    gig_created = Envelope.start(
        GigCreated(gig_id="g1", seller_id="s1"), producer="gig", message_id="m2", occurred_at=START
    )
    assert wiring.route(gig_created) == ("events.gig", "GigCreated")


@frozen
class AnnounceGig(Command):
    """Test-only: asks chat to publish a gig event, which chat never declared."""


class RogueChat(ChatService):
    """Chat with one handler that tries to publish on an edge that does not exist."""

    @handles(AnnounceGig)
    def announce(self, work: Work, command: AnnounceGig) -> Done:
        work.emit(GigCreated(gig_id="g1", seller_id="s1"))
        return Done()


def test_a_service_refuses_at_run_time_to_publish_an_event_it_did_not_declare() -> None:
    harness = ServiceHarness(RogueChat, public_url="http://localhost:8000")
    try:
        with pytest.raises(UndeclaredEvent, match="chat does not publish GigCreated"):
            harness.request(AnnounceGig(), actor_id="u1")
        assert harness.published == []
    finally:
        if harness.ref.is_alive():
            harness.stop()


def test_a_wiring_with_an_event_nobody_consumes_is_refused() -> None:
    with pytest.raises(ValueError, match="published but consumed by no service"):
        Wiring([GigService])
