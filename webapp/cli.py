"""`autocall`: the one command-line entry point for people.

Each subcommand is a small function; heavy imports happen inside them so that
`autocall --help` stays instant.
"""

from __future__ import annotations

import argparse
import getpass
import sys


def upgrade_database(config=None) -> None:
    """Bring the database schema to the newest migration (what `flask db upgrade` does)."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(config)
    with app.app_context():
        upgrade()


def cmd_run(args: argparse.Namespace) -> int:
    from webapp.config import VAR_DIR, Config
    from webapp.launcher import run_service

    config = Config.from_env()
    if config.database_url.startswith("sqlite:///"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    upgrade_database(config)
    return run_service(config, host=args.host, port=args.port)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from webapp.config import VAR_DIR, Config

    config = Config.from_env()
    if config.database_url.startswith("sqlite:///"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    upgrade_database(config)
    print("The database schema is up to date.")
    return 0


def cmd_create_staff(args: argparse.Namespace) -> int:
    """Platform staff cannot sign up in the portal; the operator of the service adds them."""
    from webapp import create_app
    from webapp.services.accounts import EmailTaken, create_staff

    password = getpass.getpass("Password for the new staff account: ")
    if len(password) < 10:
        print("The password needs at least 10 characters.", file=sys.stderr)
        return 1
    app = create_app()
    with app.app_context():
        try:
            create_staff(args.email, password)
        except EmailTaken:
            print(f"An account with {args.email} already exists.", file=sys.stderr)
            return 1
    print(f"Staff account {args.email} created.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocall", description="AutoCall Cloud: a multi-tenant outbound dialer."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the whole service on this machine (Ctrl-C stops it)")
    run.add_argument("--host", default="127.0.0.1", help="address the portal listens on")
    run.add_argument("--port", type=int, default=None, help="portal port (default 5000)")
    run.set_defaults(func=cmd_run)

    upgrade = sub.add_parser(
        "db-upgrade", help="create or upgrade the database schema (same as `flask db upgrade`)"
    )
    upgrade.set_defaults(func=cmd_db_upgrade)

    staff = sub.add_parser("create-staff", help="add a platform staff account (asks a password)")
    staff.add_argument("email")
    staff.set_defaults(func=cmd_create_staff)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
