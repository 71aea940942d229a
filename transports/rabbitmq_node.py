"""A throwaway RabbitMQ node of its own, for tests, benchmarks and examples.

    with ThrowawayNode() as node:
        transport = transports.connect(node.url)
        node.restart()  # durable queues and persistent messages survive

Each node gets a unique name (`mkt-<random>@localhost`), free ports for AMQP,
Erlang distribution and its own `epmd`, and a data directory under a fresh
temporary directory; it listens on 127.0.0.1 only, so that several can run
beside each other and beside a system broker. `cleanup()` (or leaving the
`with` block) stops the node, its `epmd` and removes the directory, so that
nothing is left running.

Needs the Debian package `rabbitmq-server` (which brings Erlang and `epmd`);
`missing_requirements()` says what is absent. Run as root, the node and
`rabbitmqctl` run as the `rabbitmq` user, like the packaged service; run as
another user, they run as that user. Only the standard library is used, so
this module can be imported without pika.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn
from urllib.parse import quote

__all__ = ["NodeError", "ThrowawayNode", "missing_requirements"]

_SBIN_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/sbin", "/usr/local/sbin")
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_POLL = 0.1


class NodeError(RuntimeError):
    """The node failed to start, stop or answer a `rabbitmqctl` command."""


def _find(name: str) -> str | None:
    # The Debian wrapper in /usr/sbin switches to the rabbitmq user with `su` and a
    # fixed HOME; the scripts behind it honour our environment, so prefer those.
    for directory in _SBIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def missing_requirements() -> str | None:
    """Why a node cannot be started here (a sentence), or None when it can."""
    missing = [name for name in ("rabbitmq-server", "rabbitmqctl", "epmd") if _find(name) is None]
    if missing:
        return (
            f"{', '.join(missing)} not found: install the Debian package rabbitmq-server "
            "(apt-get install rabbitmq-server)"
        )
    return None


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback, outside the kernel's range for outgoing connections.

    A port from that range could be taken by a client's outgoing connection
    (a reconnecting one, say) while the node is down for a restart.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = random.sample(range(10000, max(low, 10000 + 10 * count)), k=10 * count)
    chosen: list[int] = []
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise NodeError(f"no {count} free ports found between 10000 and {low}")


def _answers_amqp(host: str, port: int) -> bool:
    """Whether an AMQP 0-9-1 broker on `host:port` answers the protocol header."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as s:
            s.sendall(_AMQP_HEADER)
            # A method frame (type 1) carrying Connection.Start means the listener is up.
            return s.recv(1) == b"\x01"
    except OSError:
        return False


def _epmd_answers(port: int) -> bool:
    """Whether an epmd on `port` answers a NAMES request (it replies with its own port first)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"\x00\x01n")
            return s.recv(4) == port.to_bytes(4, "big")
    except OSError:
        return False


def _end_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate `process` and its group, killing them if they outlive `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
    # Helpers the group leader left behind (erl_child_setup, the disk monitor's shell).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _end_all(processes: list[subprocess.Popen[bytes]], data_dir: str | None) -> None:
    # Safety net run at interpreter exit when cleanup() was never called.
    for process in processes:
        _end_process_group(process, timeout=5.0)
    processes.clear()
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)


class ThrowawayNode:
    """A private RabbitMQ node on loopback with its own name, ports, epmd and data directory.

    `start()` returns once the node answers AMQP on `url`. `restart()` keeps the
    name, ports and data, so durable queues and persistent messages survive it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        config: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
        base_dir: str | None = None,
    ) -> None:
        """Prepare (not start) a node; `config` adds `rabbitmq.conf` settings."""
        reason = missing_requirements()
        if reason is not None:
            raise NodeError(reason)
        self.host = host
        self.name = f"mkt-{secrets.token_hex(4)}@localhost"
        self.amqp_port, self.dist_port, self.epmd_port = _free_ports(3)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._config = dict(config or {})
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._uid, self._gid = self._run_as()
        self.data_dir = tempfile.mkdtemp(prefix="mkt-rabbitmq-", dir=base_dir)
        self._prepare_data_dir()
        self._finalizer = weakref.finalize(self, _end_all, self._processes, self.data_dir)

    # -- what callers use -----------------------------------------------------------

    @property
    def url(self) -> str:
        """The AMQP URL of the default vhost, as user guest."""
        return self.url_for("/")

    def url_for(self, vhost: str) -> str:
        """The AMQP URL of `vhost` on this node, as user guest."""
        return f"amqp://guest:guest@{self.host}:{self.amqp_port}/{quote(vhost, safe='')}"

    @property
    def running(self) -> bool:
        """Whether the node's process is alive."""
        return self._server is not None and self._server.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the node's process group leader, while it runs."""
        return self._server.pid if self.running and self._server is not None else None

    @property
    def pids(self) -> list[int]:
        """Process ids this node started and that may still run (node and epmd)."""
        return [p.pid for p in self._processes if p.poll() is None]

    def start(self) -> None:
        """Start the node (and its epmd) and wait until it answers AMQP."""
        if self.running:
            return
        if not self._finalizer.alive:
            raise NodeError(f"node {self.name} was cleaned up; create a new one")
        self._start_epmd()
        deadline = time.monotonic() + self.start_timeout
        with open(os.path.join(self.data_dir, "server.out"), "ab") as out:
            self._server = self._spawn([self._tool("rabbitmq-server")], stdout=out, env=self._environment())
        self._processes.append(self._server)
        while not _answers_amqp(self.host, self.amqp_port):
            if self._exited_within(self._server, deadline):
                self._abandon_start(f"exited with {self._server.returncode} while starting")
        # rabbitmqctl connects to the node through its Erlang distribution,
        # which is up before the AMQP listener; nothing more to wait for.

    def stop(self) -> None:
        """Stop the node with `rabbitmqctl stop`, killing it if it does not exit in time."""
        server = self._server
        if server is None:
            return
        if server.poll() is None:
            # A wedged node fails `stop` or ignores it; _end_process_group then kills it.
            with contextlib.suppress(NodeError):
                self.ctl("stop", timeout=self.stop_timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=self.stop_timeout)
        _end_process_group(server, timeout=5.0)
        self._forget(server)
        self._server = None

    def kill(self) -> None:
        """Kill the node abruptly (SIGKILL), as a crash would; `start()` brings it back."""
        server = self._server
        if server is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        _end_process_group(server, timeout=5.0)
        self._forget(server)
        self._server = None

    def restart(self) -> None:
        """Stop and start the node with the same name, ports and data."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the node and its epmd and remove the data directory."""
        try:
            self.stop()
        finally:
            if self._epmd is not None:
                _end_process_group(self._epmd, timeout=5.0)
                self._forget(self._epmd)
                self._epmd = None
            self._finalizer()

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run `rabbitmqctl -n <node> *args` against this node and return its output."""
        if self._epmd is None or self._epmd.poll() is not None:
            # rabbitmqctl would start an `epmd -daemon` of its own on our port, which nobody stops.
            raise NodeError(f"node {self.name} was never started or was cleaned up")
        command = [self._tool("rabbitmqctl"), "-n", self.name, "--quiet", *args]
        try:
            result = subprocess.run(
                command,
                env=self._environment(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                user=self._uid,
                group=self._gid,
                extra_groups=None if self._uid is None else [],
            )
        except subprocess.TimeoutExpired as e:
            raise NodeError(f"rabbitmqctl {' '.join(args)} timed out after {timeout} s") from e
        output = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip() or output.strip()
            raise NodeError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): {error}")
        return output

    def close_all_connections(
        self, reason: str = "closed by ThrowawayNode", *, vhost: str | None = None
    ) -> None:
        """Close every client connection (of `vhost` only, when given), as a broker failure would."""
        scope = ["--global"] if vhost is None else ["-p", vhost]
        self.ctl("close_all_connections", *scope, reason)

    def add_vhost(self, name: str) -> str:
        """Create vhost `name` with full permissions for guest; return its URL."""
        self.ctl("add_vhost", name)
        self.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return self.url_for(name)

    def delete_vhost(self, name: str) -> None:
        """Delete vhost `name` and everything in it."""
        self.ctl("delete_vhost", name)

    def __enter__(self) -> ThrowawayNode:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ThrowawayNode {self.name} {state} amqp={self.host}:{self.amqp_port}>"

    # -- how it is done ---------------------------------------------------------------

    @staticmethod
    def _run_as() -> tuple[int | None, int | None]:
        # As root, run like the packaged service (the `rabbitmq` user) rather than as root.
        if os.geteuid() != 0:
            return None, None
        try:
            user = pwd.getpwnam("rabbitmq")
        except KeyError:
            return None, None
        return user.pw_uid, user.pw_gid

    def _tool(self, name: str) -> str:
        path = _find(name)
        if path is None:
            raise NodeError(f"{name} not found: install the Debian package rabbitmq-server")
        return path

    def _prepare_data_dir(self) -> None:
        root = Path(self.data_dir)
        home = root / "home"
        home.mkdir()
        # Our own cookie in our own HOME: the node and rabbitmqctl read the same file,
        # whatever user runs them and whatever ~/.erlang.cookie holds.
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")
        (root / "rabbitmq.conf").write_text("".join(f"{k} = {v}\n" for k, v in self._config.items()))
        root.chmod(0o755)
        if self._uid is not None and self._gid is not None:
            for path in [root, *root.rglob("*")]:
                os.chown(path, self._uid, self._gid)

    def _environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        d = self.data_dir
        return {
            **base,
            "HOME": os.path.join(d, "home"),
            "LC_ALL": "C.UTF-8",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_FEATURE_FLAGS_FILE": os.path.join(d, "feature_flags"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": os.path.join(d, "pid"),
            # Distribution on loopback only, like AMQP.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _spawn(
        self, command: Sequence[str], *, stdout: IO[bytes], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C in the terminal does not reach it (cleanup does),
        # and the whole group can be signalled at once.
        return subprocess.Popen(
            list(command),
            env=env,
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self._uid,
            group=self._gid,
            extra_groups=None if self._uid is None else [],
        )

    def _start_epmd(self) -> None:
        # The node would otherwise start `epmd -daemon`, which outlives it; one we
        # started ourselves, on the node's own port, is ours to stop.
        if self._epmd is not None and self._epmd.poll() is None:
            return
        with open(os.path.join(self.data_dir, "epmd.out"), "ab") as out:
            self._epmd = self._spawn(
                [self._tool("epmd"), "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                stdout=out,
                env=self._environment(),
            )
        self._processes.append(self._epmd)
        deadline = time.monotonic() + 10.0
        while not _epmd_answers(self.epmd_port):
            if self._exited_within(self._epmd, deadline):
                raise NodeError(f"epmd on port {self.epmd_port} exited with {self._epmd.returncode}")

    def _exited_within(self, process: subprocess.Popen[bytes], deadline: float) -> bool:
        """Wait a moment for `process` to exit; raise NodeError once `deadline` passed."""
        try:
            process.wait(timeout=_POLL)
            return True
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() > deadline:
            self._abandon_start("did not answer in time")
        return False

    def _abandon_start(self, what: str) -> NoReturn:
        """Stop what a failed start left running (data kept for cleanup) and raise NodeError."""
        message = f"node {self.name} {what}\n{self._diagnostics()}"
        for process in list(self._processes):
            _end_process_group(process, timeout=5.0)
            self._forget(process)
        self._server = self._epmd = None
        raise NodeError(message)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        if process in self._processes:
            self._processes.remove(process)

    def _diagnostics(self) -> str:
        lines: list[str] = []
        for path in [Path(self.data_dir, "server.out"), *Path(self.data_dir, "log").glob("*.log")]:
            try:
                tail = path.read_text(errors="replace").splitlines()[-20:]
            except OSError:
                continue
            lines += [f"--- {path.name} (last lines)", *tail]
        return "\n".join(lines)
