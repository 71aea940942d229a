"""The demo tells the whole story, in memory and on RabbitMQ, and both tell the same one."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from marketplace.config import Settings
from marketplace.demo import run_demo
from tests.marketplace.harness import FakeClock, sequential_ids

FAST = {"kdf_cost": 2**4, "retry_attempts": 3, "retry_delay": 0.05, "request_timeout": 10.0}


def tell(transport_url: str) -> list[str]:
    """The demo's output lines on `transport_url`, with a fake clock and sequential ids."""
    lines: list[str] = []
    status = run_demo(
        Settings(transport_url=transport_url, **FAST),  # type: ignore[arg-type]
        out=lambda text: lines.extend(text.split("\n")),
        clock=FakeClock(),
        new_id=sequential_ids(),
    )
    assert status == 0
    return lines


def normalized(lines: list[str]) -> list[str]:
    """The lines with what differs between runs taken out: ids, tokens, the transport's URL and counts."""
    text = "\n".join(lines)
    text = re.sub(r"token=[A-Za-z0-9_.\-]+", "token=TOKEN", text)
    text = re.sub(r"\bid\d{4}\b", "ID", text)
    text = re.sub(r"demo on transport \S+", "demo on transport URL", text)
    text = re.sub(r"messages routed by the transport: \d+", "messages routed by the transport: N", text)
    return text.split("\n")


def test_the_demo_tells_the_whole_story_in_memory() -> None:
    text = "\n".join(tell("memory://"))
    for title in (
        "Alice and Bob sign up",
        "They verify their addresses",
        "Bob becomes a seller and publishes a gig",
        "Alice searches for a logo",
        "They chat",
        "Bob sends a custom offer and Alice accepts it",
        "Alice places the order",
        "Bob asks for two more days and Alice approves",
        "Bob delivers",
        "Alice completes the order",
        "Both review",
    ):
        assert f"== {title}" in text
    for line in (
        "auth -> users        UserRegistered",
        "gig -> users        GigCreated",
        "chat -> notification OfferSent",
        "order -> users        OrderPlaced",
        "order -> notification OrderExtensionDecided",
        "review -> order        ReviewAdded",
        "users -> gig          GigReviewed",
    ):
        assert line in text
    assert "e-mail to alice@example.com: Verify your e-mail address" in text
    assert "e-mail to bob@example.com: You received an order" in text or "e-mail to bob@example.com" in text
    assert "seller bob: ongoing 0, completed 1, cancelled 0, earnings $48.00, gigs 1, rating 5/1" in text
    assert "rating 5/1" in text
    assert "order completed: total $63.30, seller earns $48.00, buyer review yes, seller review yes" in text
    assert re.search(r"messages routed by the transport: \d+ \(0 dead-lettered\)", text)


@pytest.mark.rabbitmq
def test_the_demo_tells_the_same_story_on_rabbitmq(rabbitmq_url: str) -> None:
    on_rabbitmq = tell(rabbitmq_url)
    in_memory = tell("memory://")
    assert normalized(on_rabbitmq) == normalized(in_memory)


def test_python_dash_m_marketplace_runs_the_demo_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "marketplace"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "MARKETPLACE_KDF_COST": "16"},
    )
    assert result.returncode == 0, result.stderr
    assert "== Final figures" in result.stdout
    assert "seller bob: ongoing 0, completed 1" in result.stdout
