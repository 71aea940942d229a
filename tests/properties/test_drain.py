"""Drains and printed programs read back as what they were: a failing example replays exactly."""

from __future__ import annotations

from hypothesis import given

from tests import strategies

from .drain import FAULTS, Action, Drain, Move
from .replay import without_faults


@given(strategies.drains(FAULTS))
def test_a_drain_prints_as_the_code_that_builds_it_again(drain: Drain) -> None:
    assert eval(repr(drain), {"Drain": Drain}) == drain


def test_a_drain_is_written_as_picks_and_actions() -> None:
    drain = Drain((Move(0), Move(2, Action.CRASH), Move(1, Action.CRASH_BEFORE_COMMIT)))
    assert repr(drain) == "Drain('0 2:crash 1:crash-before-commit')"
    assert Drain("0 2:crash 1:crash-before-commit") == drain


def test_taking_a_fault_kind_out_of_a_program_leaves_its_other_moves_as_they_were() -> None:
    program = [
        "state = Machine()",
        "state.complete(buyer=User('bob'), drain=Drain('0 2:crash 1:crash-before-commit 3:crash'))",
    ]
    assert without_faults(program, {Action.CRASH}) == [
        "state = Machine()",
        "state.complete(buyer=User('bob'), drain=Drain('0 2 1:crash-before-commit 3'))",
    ]
