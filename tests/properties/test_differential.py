"""The same operations end in the same state and the same e-mails on memory and on RabbitMQ."""

from __future__ import annotations

import pytest

from tests import strategies

from .drain import Action
from .machine import MarketplaceMachine
from .running import BROKER_STEPS, LONG_RUN, fewer_examples, run_every_example
from .systems import OnRabbitMQ, SteppedMemory, System


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

    run_every_example(MarketplaceOnMemoryAndRabbitMQ, examples=fewer_examples(20), steps=BROKER_STEPS)
