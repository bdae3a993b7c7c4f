"""`autocall`: the one command-line entry point for people.

Each subcommand is a small function; heavy imports happen inside them so that
`autocall --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys


def cmd_run(args: argparse.Namespace) -> int:
    from webapp.config import Config
    from webapp.launcher import run_service

    return run_service(Config.from_env(), host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocall", description="AutoCall Cloud: a multi-tenant outbound dialer."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the whole service on this machine (Ctrl-C stops it)")
    run.add_argument("--host", default="127.0.0.1", help="address the portal listens on")
    run.add_argument("--port", type=int, default=None, help="portal port (default 5000)")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
