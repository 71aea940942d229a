"""Replaying the program Hypothesis printed for a failing example of the machine, as it was or changed.

Hypothesis attaches the failing program to the error it raises (its notes:
`state = Machine()`, then one line per rule and invariant); every value in it
prints as code that builds it again (`User('ann')`, `Drain('0 1:crash')`), so
that the program runs as it is, outside Hypothesis, to the same end.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from marketplace.commands.gig import GigStatus
from marketplace.commands.order import OrderStatus
from marketplace.events import ExtensionDecision, Party

from .drain import Action, Drain
from .machine import MarketplaceMachine
from .model import Attempt, Gig, Offer, Order, User

_STATE = re.compile(r"state = (\w+)\(\)")


def printed_program(error: BaseException) -> list[str]:
    """The program Hypothesis printed for the failing example that raised `error`."""
    notes = list(getattr(error, "__notes__", []))
    starts = [n for n, note in enumerate(notes) if _STATE.fullmatch(note)]
    assert starts, f"no program among the notes of {error!r}: {notes}"
    program = []
    for line in notes[starts[-1] :]:
        if not (line.startswith("state") and ("=" in line or line.startswith("state."))):
            break
        program.append(line)
    return program


def without_faults(program: list[str], faults: Collection[Action]) -> list[str]:
    """`program` with every move that injects one of `faults` turned into a plain delivery."""
    kinds = "|".join(re.escape(str(fault)) for fault in faults)
    return [re.sub(rf"\b(\d+):(?:{kinds})(?=[ '])", r"\1", line) for line in program]


def replay(program: list[str], machine: type[MarketplaceMachine]) -> None:
    """Run `program` on a fresh `machine` (whatever class it named), then tear the machine down."""
    namespace: dict[str, object] = {
        "Attempt": Attempt,
        "Drain": Drain,
        "ExtensionDecision": ExtensionDecision,
        "Gig": Gig,
        "GigStatus": GigStatus,
        "Offer": Offer,
        "Order": Order,
        "OrderStatus": OrderStatus,
        "Party": Party,
        "User": User,
    }
    first, *steps = [line for line in program if line != "state.teardown()"]
    assert _STATE.fullmatch(first), f"a program starts by making its machine, not with {first!r}"
    namespace["state"] = state = machine()
    try:
        exec("\n".join(steps), namespace)
    finally:
        state.teardown()
