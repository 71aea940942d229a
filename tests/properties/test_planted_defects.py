"""The machine finds defects planted in the users service, each through its own fault kind.

For each defect, a bounded search of the machine on the stepping memory
transport (faults of that kind only, no shrinking) must fail on the invariant
the defect breaks. The program Hypothesis printed then replays to the same
failure, and the same program with its faults of that kind turned into plain
deliveries passes: the fault is what finds the defect.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests import strategies

from .defects import (
    users_commit_ratings_early,
    users_forget_what_they_processed,
    users_keep_the_last_completion,
)
from .drain import Action
from .machine import MarketplaceMachine
from .replay import printed_program, replay, without_faults
from .systems import SteppedMemory, System

SEARCH = settings(
    max_examples=100,
    stateful_step_count=50,
    phases=[Phase.generate],
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)
"""A bounded search: at most 100 examples of 50 steps, stopping at the first failure, not shrunk."""

Defect = Callable[[], AbstractContextManager[None]]

DEFECTS = [
    pytest.param(
        users_forget_what_they_processed,
        {Action.DUPLICATE, Action.REDELIVER, Action.CRASH_AFTER_COMMIT},
        "jobs and earnings|gig count|ratings",
        id="a consumer that is not idempotent, found by deliveries of a message it handled",
    ),
    pytest.param(
        users_keep_the_last_completion,
        {Action.CRASH, Action.CRASH_BEFORE_COMMIT},
        "recent delivery",
        id="last write instead of the maximum, found by a completion overtaken after a crash",
    ),
    pytest.param(
        users_commit_ratings_early,
        {Action.CRASH_BEFORE_COMMIT},
        "ratings",
        id="a change committed before its outgoing events, found by a crash before the commit",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("defect", "faults", "invariant"), DEFECTS)
def test_the_machine_finds_a_planted_defect_through_its_fault_kind(
    defect: Defect, faults: set[Action], invariant: str
) -> None:
    class Searching(MarketplaceMachine):
        drains = strategies.drains({Action.DELIVER, *faults}, min_moves=4)

        def start(self) -> list[System]:
            return [SteppedMemory(self.clock, record=self.record_fault)]

    with defect():
        with pytest.raises(AssertionError, match=invariant) as found:
            run_state_machine_as_test(Searching, settings=SEARCH)
        program = printed_program(found.value)
        with pytest.raises(AssertionError, match=invariant):
            replay(program, Searching)
        replay(without_faults(program, faults), Searching)
