"""A tiny SMTP server that keeps what it receives, for demos across processes and for tests.

    with MailSink() as sink:                      # 127.0.0.1, a free port
        mailer = SmtpMailer(sink.host, sink.port, "no-reply@market.example")
        mailer.send(email)                        # from this process or any other
        [received] = sink.received

It speaks just enough of RFC 5321 for `smtplib` (EHLO/HELO, MAIL FROM, RCPT
TO, DATA with dot-stuffing, RSET, NOOP, QUIT), with no authentication and no
TLS, and delivers nothing. A message is stored before the final `250` of its
DATA is sent, so once the client's `send_message` returns, the message is in
`received`; `wait_for` waits for messages sent from elsewhere.
"""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from types import TracebackType

from attrs import frozen

__all__ = ["MailSink", "Received"]

MAX_LINE = 10_000


@frozen
class Received:
    """One message as the sink received it: the envelope and the raw content."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        """The content parsed as an e-mail message."""
        return email.message_from_bytes(self.data, policy=email.policy.default)

    def body(self) -> str:
        """The text of a plain-text message, decoded."""
        return str(self.message().get_content())


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self._reply("220 localhost mail sink ready")
        mail_from: str | None = None
        rcpt_to: list[str] = []
        while line := self.rfile.readline(MAX_LINE):
            command = line.decode("ascii", "replace").rstrip("\r\n")
            verb = command[:4].upper()
            argument = command[4:].strip()
            if verb == "EHLO":
                self._reply("250-localhost", "250-8BITMIME", "250 SMTPUTF8")
            elif verb == "HELO":
                self._reply("250 localhost")
            elif verb == "MAIL" and argument.upper().startswith("FROM:"):
                mail_from, rcpt_to = _address(argument[5:]), []
                self._reply("250 OK")
            elif verb == "RCPT" and argument.upper().startswith("TO:"):
                if mail_from is None:
                    self._reply("503 need MAIL first")
                    continue
                rcpt_to.append(_address(argument[3:]))
                self._reply("250 OK")
            elif verb == "DATA":
                if mail_from is None or not rcpt_to:
                    self._reply("503 need MAIL and RCPT first")
                    continue
                self._reply("354 end data with <CR><LF>.<CR><LF>")
                self.server.store(Received(mail_from, tuple(rcpt_to), self._data()))
                mail_from, rcpt_to = None, []
                self._reply("250 OK: queued")
            elif verb == "RSET":
                mail_from, rcpt_to = None, []
                self._reply("250 OK")
            elif verb == "NOOP":
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("500 command not recognised")

    def _data(self) -> bytes:
        """The message up to the lone dot, unstuffed, with LF line ends (as `smtpd` stored it)."""
        lines = []
        while (line := self.rfile.readline(MAX_LINE)) not in (b".\r\n", b".\n", b""):
            line = line.rstrip(b"\r\n")
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(line + b"\n" for line in lines)

    def _reply(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode("ascii"))


def _address(argument: str) -> str:
    """The address in `<a@b> SIZE=...`."""
    address = argument.strip().split(" ", 1)[0]
    return address.removeprefix("<").removesuffix(">")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Session)
        self.changed = threading.Condition()
        self.received: list[Received] = []

    def store(self, message: Received) -> None:
        with self.changed:
            self.received.append(message)
            self.changed.notify_all()


class MailSink:
    """A running SMTP sink on `host` (loopback by default) and `port` (0: a free one); a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server(host, port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="mail-sink", daemon=True)

    @property
    def host(self) -> str:
        """The address it listens on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def received(self) -> list[Received]:
        """The messages received so far, in order (a copy)."""
        with self._server.changed:
            return list(self._server.received)

    def wait_for(self, match: Callable[[Received], bool], timeout: float) -> list[Received]:
        """The messages received that `match`, once there is one; `TimeoutError` after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._server.changed:
            while not (found := [r for r in self._server.received if match(r)]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"none of {len(self._server.received)} messages matched in {timeout} s"
                    )
                self._server.changed.wait(left)
            return found

    def __enter__(self) -> MailSink:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
