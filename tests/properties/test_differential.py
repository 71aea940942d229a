"""The same operations end in the same state and the same e-mails on memory and on RabbitMQ."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests import strategies

from .drain import Action
from .machine import MarketplaceMachine
from .systems import OnRabbitMQ, SteppedMemory, System
from .test_machine import (
    BROKER_STEPS,
    LONG_RUN,
    assert_every_example_ran,
    fewer_examples,
    threads_started_since,
)


@pytest.mark.rabbitmq
@pytest.mark.slow
@LONG_RUN
def test_the_same_operations_end_the_same_on_memory_and_on_rabbitmq(rabbitmq_url: str) -> None:
    class MarketplaceOnMemoryAndRabbitMQ(MarketplaceMachine):
        """Two marketplaces, one per transport, with the same ids and clock, driven by the same rules.

        After each step their observations must be equal, ids, times and e-mails
        included. The memory one drains its cascades in drawn orders (queues held
        back too), without faults: the comparison is of the transports.
        """

        drains = strategies.drains({Action.DELIVER, Action.HOLD})

        def start(self) -> list[System]:
            memory = SteppedMemory(self.clock, record=self.record_fault)
            try:
                return [memory, OnRabbitMQ(rabbitmq_url, self.clock)]
            except BaseException:
                memory.stop()
                raise

    before = set(threading.enumerate())
    run_state_machine_as_test(
        MarketplaceOnMemoryAndRabbitMQ,
        settings=settings(
            max_examples=fewer_examples(20),
            stateful_step_count=BROKER_STEPS,
            suppress_health_check=[HealthCheck.too_slow],
        ),
        _min_steps=BROKER_STEPS,
    )
    assert_every_example_ran(MarketplaceOnMemoryAndRabbitMQ, fewer_examples(20), BROKER_STEPS)
    assert threads_started_since(before) == []
