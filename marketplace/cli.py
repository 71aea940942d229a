"""The command line: `python -m marketplace [demo]` runs the story, `serve` runs some services.

    python -m marketplace                                  # the demo, in memory
    python -m marketplace --transport amqp://guest:guest@127.0.0.1:5672/%2F
    python -m marketplace serve --services users,gig --transport amqp://...

Settings not given as flags come from the environment or a TOML file
(`marketplace.config`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from transports import TransportError

from .config import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--transport", help="transport URL: memory:// (default) or amqp://user:pass@host/vhost"
    )
    common.add_argument("--config", help="a TOML settings file (or MARKETPLACE_CONFIG)")
    common.add_argument("--prefix", help="a name prefix for every exchange and queue")
    common.add_argument("--mailer", choices=("console", "recording", "smtp"))
    parser = argparse.ArgumentParser(
        prog="python -m marketplace", description="A freelance-services marketplace.", parents=[common]
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("demo", parents=[common], help="run the whole story in one process (default)")
    serve = commands.add_parser("serve", parents=[common], help="run some services until SIGTERM or Ctrl-C")
    serve.add_argument(
        "--services", required=True, help="comma-separated: auth,users,gig,chat,order,review,..."
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        {"transport_url": args.transport, "prefix": args.prefix, "mailer": args.mailer},
        config_file=args.config,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "serve":
        names = [name.strip() for name in args.services.split(",") if name.strip()]
        if not names:
            print("error: --services names no service", file=sys.stderr)
            return 2
        return serve(settings, names)
    from .demo import run_demo

    return run_demo(settings)


def serve(settings: Settings, services: list[str]) -> int:
    """Run `services` until SIGTERM or SIGINT, then stop cleanly.

    Prints `ready: <services> (pid <pid>) on <transport>` once every service
    consumes its queues, so that whoever started the process knows when to
    rely on it and which process it is. Returns 0 after a clean stop, 2 for
    unusable settings or service names, 1 when the broker cannot be reached.
    """
    from .bootstrap import bootstrap

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        app = bootstrap(settings, services=services, gateway=False)
    except (ValueError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TransportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with app:
        print(f"ready: {', '.join(app.services)} (pid {os.getpid()}) on {settings.describe()}", flush=True)
        stop.wait()
        print("stopping", flush=True)
    print("stopped", flush=True)
    return 0
