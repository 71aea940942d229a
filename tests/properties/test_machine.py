"""Every story of the machine holds on the stepping memory transport whatever the faults, and on RabbitMQ."""

from __future__ import annotations

import functools

import pytest
from hypothesis import strategies as st

from tests import strategies

from .drain import FAULTS, Drain
from .machine import MarketplaceMachine
from .running import BROKER_STEPS, LONG_RUN, STEPS, fewer_examples, machine_test, run_every_example
from .systems import OnRabbitMQ, SteppedMemory, System


class MarketplaceOnMemoryWithFaults(MarketplaceMachine):
    """The marketplace on the stepping memory transport; cascades drained in drawn orders, with faults."""

    drains = strategies.drains(FAULTS)

    def start(self) -> list[System]:
        return [SteppedMemory(self.clock, record=self.record_fault)]


_EXAMPLES = fewer_examples(1)
_memory_machine = machine_test(MarketplaceOnMemoryWithFaults, examples=_EXAMPLES, steps=STEPS)


# `wraps` keeps the marks of a Hypothesis test, so that `--hypothesis-show-statistics` shows the faults.
@pytest.mark.slow
@LONG_RUN
@functools.wraps(_memory_machine)
def test_every_story_holds_on_memory_whatever_the_faults() -> None:
    run_every_example(MarketplaceOnMemoryWithFaults, examples=_EXAMPLES, steps=STEPS, test=_memory_machine)
    assert set(MarketplaceOnMemoryWithFaults.faults_seen) == FAULTS, MarketplaceOnMemoryWithFaults.faults_seen


@pytest.mark.rabbitmq
@pytest.mark.slow
@LONG_RUN
def test_every_story_holds_on_rabbitmq(rabbitmq_url: str) -> None:
    class MarketplaceOnRabbitMQ(MarketplaceMachine):
        """The marketplace on RabbitMQ, no faults injected; each rule waits until everything is settled."""

        drains = st.just(Drain())

        def start(self) -> list[System]:
            return [OnRabbitMQ(rabbitmq_url, self.clock)]

    run_every_example(MarketplaceOnRabbitMQ, examples=fewer_examples(10), steps=BROKER_STEPS)
