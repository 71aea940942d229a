"""Every example in `examples/` runs to its end here and says what it showed, so that none rots."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from marketplace.services import SERVICES
from transports.rabbitmq_node import ThrowawayNode

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RUN_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
RUN_HERE = {"several_processes.py"}
"""The examples this module runs; a new example needs a test here."""


def run_example(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `examples/<name>` as a reader would, without any MARKETPLACE_ setting of ours.

    On timeout the example gets SIGTERM (it stops what it started), then its
    whole process group SIGKILL, so that no service process outlives the test.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("MARKETPLACE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [sys.executable, str(EXAMPLES / name), *arguments]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as example:
        try:
            stdout, stderr = example.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            example.terminate()
            try:
                stdout, stderr = example.communicate(timeout=STOP_TIMEOUT)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(example.pid, signal.SIGKILL)
            pytest.fail(f"{name} did not finish in {RUN_TIMEOUT} s:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, example.returncode, stdout, stderr)


def assert_several_processes_succeeded(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    ready = re.findall(r"^  ready: (\w+) \(pid (\d+)\) on ", result.stdout, re.MULTILINE)
    assert sorted(name for name, _pid in ready) == sorted(service.name for service in SERVICES)
    assert len({pid for _name, pid in ready}) == len(SERVICES)
    assert "final figures match the in-process demo" in result.stdout
    assert "every service exited with status 0" in result.stdout


def test_every_example_is_run_by_this_module() -> None:
    assert {path.name for path in EXAMPLES.glob("*.py")} == RUN_HERE


def test_several_processes_on_the_sessions_broker_end_with_the_in_process_figures(
    rabbitmq_url: str,
) -> None:
    assert_several_processes_succeeded(run_example("several_processes.py", "--amqp-url", rabbitmq_url))


def test_several_processes_on_a_node_of_its_own_end_with_the_in_process_figures(
    rabbitmq_node: ThrowawayNode,
) -> None:
    # Without --amqp-url the example starts a node of its own and reads the queues with
    # rabbitmqctl; it needs what the session's node needs (rabbitmq-server), not that node.
    assert_several_processes_succeeded(run_example("several_processes.py"))
