"""`autocall`: the one command-line entry point for people.

Each subcommand is a small function; heavy imports happen inside them so that
`autocall --help` stays instant.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def upgrade_database(config=None, progress=None) -> None:
    """Bring the database schema to the newest migration (what `flask db upgrade` does).

    `progress(line)`, when given, hears which migrations will run, and each one as it ends
    with the seconds it took (long data migrations log their own progress as they go:
    webapp/migrating.py)."""
    import time

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app(config, serving=False)
    with app.app_context():
        if progress is not None:
            migrate = app.extensions["migrate"]
            script = ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory))
            with db.engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
            pending = [rev for rev in script.iterate_revisions("heads", current)]
            pending.reverse()  # oldest first
            if pending:
                progress(
                    f"Upgrading the database from {current or 'nothing'} to "
                    f"{pending[-1].revision}: {len(pending)} migration(s)."
                )
            clock = {"at": time.monotonic(), "start": time.monotonic()}

            def applied(ctx, step, heads, run_args) -> None:
                now = time.monotonic()
                revision = script.get_revision(step.up_revision_id)
                title = " ".join((revision.doc or "").split())  # its first paragraph, whole
                progress(f"  {step.up_revision_id} {title} ({now - clock['at']:.2f} s)")
                clock["at"] = now

            migrate.configure_args["on_version_apply"] = applied
            try:
                upgrade()
            finally:
                migrate.configure_args.pop("on_version_apply", None)
            if pending:
                progress(f"Done in {time.monotonic() - clock['start']:.2f} s.")
        else:
            upgrade()


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from webapp.config import VAR_DIR, Config
    from webapp.launcher import run_service

    config = Config.from_env()
    if config.database_url.startswith("sqlite:///"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    upgrade_database(config, progress=_say)
    return run_service(config, host=args.host, port=args.port, demo=args.demo)


def cmd_worker(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from webapp.config import Config
    from webapp.launcher import run_workers

    config = Config.from_env()
    if args.engine_workers is not None:
        config = replace(config, engine_workers=args.engine_workers)
    return run_workers(config)


def cmd_demo_pbx(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from engine.sim.pbx import serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from webapp.config import VAR_DIR, Config

    config = Config.from_env()
    if config.database_url.startswith("sqlite:///"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    upgrade_database(config, progress=_say)
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


def _pbx_address(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT or [IPv6]:PORT; the port defaults to 5060."""
    from engine.formats import parse_host_port

    try:
        return parse_host_port(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _saved_account(args: argparse.Namespace) -> dict:
    """`--tenant ID [--account NAME]`: the keyword arguments of the test call from a SIP
    account saved in the portal (the tenant's first one unless named), as its checks use it:
    its PBX, credentials and formats, its ring timeout, registering when it has a password.
    ValueError saying what is missing."""
    from sqlalchemy import select

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import SipAccount, Tenant
    from webapp.services.sip_accounts import engine_account
    from webapp.settings.checks import ring_timeout

    app = create_app(serving=False)
    with app.app_context():
        if db.session.get(Tenant, args.tenant) is None:
            raise ValueError(f"there is no tenant {args.tenant}")
        query = select(SipAccount).where(SipAccount.tenant_id == args.tenant)
        if args.account is not None:
            query = query.where(SipAccount.name == args.account)
        saved = db.session.scalars(query.order_by(SipAccount.id)).first()
        if saved is None:
            named = f" named {args.account!r}" if args.account is not None else ""
            raise ValueError(f"tenant {args.tenant} has no SIP account{named}")
        return {
            "sip_account": engine_account(saved, app.extensions["autocall.secrets"]),
            "dial_format": saved.dial_format,
            "refer_format": saved.refer_format,
            "refer_headers": saved.refer_headers,
            "ring_timeout": ring_timeout(saved) if args.ring_timeout is None else args.ring_timeout,
            "transfer_timeout": saved.transfer_wait_seconds,
            "register": args.register or saved.has_password,
        }


def cmd_test_call(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from engine.formats import FormatError
    from engine.probe import test_call
    from engine.sip.ua import Account

    if (args.pbx is None) == (args.tenant is None):
        print("autocall test-call: give --pbx (and --user), or --tenant", file=sys.stderr)
        return 2
    if args.tenant is not None:
        try:
            call = _saved_account(args)
        except ValueError as error:
            print(f"autocall test-call: {error}", file=sys.stderr)
            return 2
    else:
        if args.user is None:
            print("autocall test-call: --pbx needs --user", file=sys.stderr)
            return 2
        host, port = args.pbx
        try:
            ca_pem = args.ca_file.read_text() if args.ca_file else ""
        except OSError as error:
            print(f"autocall test-call: cannot read --ca-file: {error}", file=sys.stderr)
            return 2
        if args.sips and args.transport != "tls":
            print("autocall test-call: --sips needs --transport tls", file=sys.stderr)
            return 2
        call = {
            "sip_account": Account(
                host,
                port,
                args.user,
                args.password,
                auth_username=args.auth_user,
                realm=args.realm,
                transport=args.transport,
                tls_ca_pem=ca_pem,
                use_sips=args.sips,
            ),
            "dial_format": args.dial_format,
            "refer_format": args.refer_format,
            "refer_headers": "\n".join(args.refer_header),
            "ring_timeout": 30.0 if args.ring_timeout is None else args.ring_timeout,
            "register": args.register,
        }
    account = call.pop("sip_account")
    try:
        result = asyncio.run(
            test_call(account, args.number, args.refer_to, local_host=args.local_host, **call)
        )
    except FormatError as error:
        print(f"autocall test-call: {error.message}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a PBX name that does not resolve
        where = f"{account.host}:{account.port}"
        print(f"autocall test-call: cannot reach the PBX {where}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from engine.sim.callcentre import Workload, WorkloadError, simulate

    try:
        workload = Workload.load(args.workload)
    except WorkloadError as error:
        print(f"autocall simulate: {error}", file=sys.stderr)
        return 2
    print(json.dumps(simulate(workload, args.mode, args.seed, args.multiplier)))
    return 0


def _version() -> str:
    """The installed package's version (what `pip install` recorded)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autocall")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocall", description="AutoCall Cloud: a multi-tenant outbound dialer."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the whole service on this machine (Ctrl-C stops it)")
    run.add_argument("--host", default="127.0.0.1", help="address the portal listens on")
    run.add_argument("--port", type=int, default=None, help="portal port (default 5000)")
    run.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also run the demo PBX with a demo tenant, operators and leads (./dev run does)",
    )
    run.set_defaults(func=cmd_run)

    demo_pbx = sub.add_parser(
        "demo-pbx", help="run the demo PBX (a SIP server for trying the dialer without a real PBX)"
    )
    from engine.sim.pbx import add_arguments

    add_arguments(demo_pbx)
    demo_pbx.set_defaults(func=cmd_demo_pbx)

    worker = sub.add_parser(
        "worker",
        help="run this machine's workers: engine hosts, short jobs and the scheduler",
        description="Starts RQ workers for the `engines` queue (each runs one engine host: "
        "the dialing engines of up to AUTOCALL_ENGINE_CAPACITY tenants), one worker for the "
        "`default` queue with RQ's scheduler, and the cron scheduler that keeps enough engine "
        "hosts enqueued. SIGTERM or Ctrl-C drains the engine hosts: calls in flight end first.",
    )
    worker.add_argument(
        "--engine-workers",
        type=int,
        default=None,
        metavar="N",
        help="engine-host processes (default AUTOCALL_ENGINE_WORKERS, 1)",
    )
    worker.set_defaults(func=cmd_worker)

    call = sub.add_parser(
        "test-call",
        help="place one call through a PBX and transfer it; print the outcome as JSON",
        description="Register (optionally), dial NUMBER through the PBX, and when it answers "
        "transfer it to EXTENSION with REFER. Prints one JSON line with the outcome, the "
        "transfer result, SIP codes, reasons and timings. Exit status 0 when the attempt ran, "
        "whatever its outcome; 2 on bad arguments. The PBX and account are given with --pbx "
        "and --user, or read from the database: --tenant ID with --account NAME (the "
        "tenant's first SIP account by default), its formats and password included.",
    )
    call.add_argument(
        "--pbx", type=_pbx_address, metavar="HOST[:PORT]", help="the port is 5060 unless given"
    )
    call.add_argument(
        "--transport",
        choices=("udp", "tcp", "tls"),
        default="udp",
        help="how SIP travels to the PBX (with --pbx; --tenant uses the account's)",
    )
    call.add_argument(
        "--ca-file",
        type=Path,
        metavar="PEM",
        help="for TLS: the CA certificate(s) the PBX's certificate must chain to "
        "(default: the system's CAs)",
    )
    call.add_argument("--sips", action="store_true", help="for TLS: use sips: URIs")
    call.add_argument("--user", help="the SIP account's username (with --pbx)")
    call.add_argument("--tenant", type=int, metavar="ID", help="use a SIP account saved by it")
    call.add_argument(
        "--account", metavar="NAME", help="the saved SIP account's name (default: its first)"
    )
    call.add_argument("--password", default="", help="its password (visible to `ps`)")
    call.add_argument("--auth-user", default=None, help="auth username when it differs")
    call.add_argument("--realm", default=None, help="answer challenges only for this realm")
    call.add_argument("--number", required=True, help="the customer's number to dial")
    call.add_argument(
        "--refer-to",
        required=True,
        metavar="EXTENSION",
        help="the operator's extension to transfer to",
    )
    call.add_argument("--dial-format", default="+{number}@{host}:{port}")
    call.add_argument("--refer-format", default="{extension}@{host}:{port}")
    call.add_argument(
        "--refer-header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra REFER header, e.g. 'Referred-By: <sip:{extension}@{host}>'",
    )
    call.add_argument(
        "--ring-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="30 by default; with --tenant, the default campaign's when it uses the account",
    )
    call.add_argument(
        "--register",
        action="store_true",
        help="REGISTER before calling (with --tenant: when the account has a password)",
    )
    call.add_argument(
        "--local-host", default="", help="local address to bind (default: any, of the PBX's family)"
    )
    call.set_defaults(func=cmd_test_call)

    from engine.pacing_modes import MODES

    simulate = sub.add_parser(
        "simulate",
        help="run a call-centre workload through the pacer in simulated time; print JSON",
        description="Simulate one tenant's dialing (operators, ring times, answers, handle "
        "times: docs/pacing.md describes WORKLOAD.json; examples in engine/sim/workloads/) "
        "paced by the engine's own pacer, and print one JSON line: attempts, answered, "
        "abandoned, abandon rate, occupancy, operator idle time, leads reached per operator "
        "hour. Exit status 2 on a bad workload file.",
    )
    simulate.add_argument("workload", metavar="WORKLOAD.json")
    simulate.add_argument("--mode", required=True, choices=MODES, help="the pacing mode")
    simulate.add_argument(
        "--multiplier",
        type=float,
        default=1.0,
        help="the call multiplier (multiplier mode; adaptive starts there)",
    )
    simulate.add_argument("--seed", type=int, default=0, help="random seed (same seed, same run)")
    simulate.set_defaults(func=cmd_simulate)

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
