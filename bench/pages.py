"""How long the portal takes to render each page a tenant reads, with 100,000 leads in the
tenant, beside the same page of an empty tenant measured in the same run (the peer).

    python bench/pages.py [--leads 100000] [--attempts 200000] [--operators 100]
                          [--reps 30] [--sqlite] [--databases postgresql,sqlite]

The database is built by the migrations, like production's: a fresh PostgreSQL database on
127.0.0.1:5432 (trust auth as `postgres`; created and dropped by the script), and with
`--sqlite` a temporary SQLite file too. Rows go in fast (COPY on PostgreSQL, executemany in
chunks on SQLite), then the tables are analysed. Pages are then read by an ordinary role, as
the portal must connect (docs/architecture.md), so row-level security is in every plan.

Each page is read through Flask's test client (no network, server-side time only), signed
in as the tenant's admin (the API with a bearer token): a warm-up, then `--reps` rounds in
which every page is read once for the big tenant and once for the peer. The table shows p50
and p95 in ms, the peer's p50, their ratio, and the SQL statements one read runs. The target
of issue 4: every page under 100 ms at 100,000 leads (p95 here). Measured, never asserted.
The last line is one JSON object. `--try-sql FILE` runs SQL on the built PostgreSQL
database before measuring (an index or a policy tried by hand before it becomes a
migration); `--keep` keeps that database for EXPLAIN.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "bench password 1"
TARGET_MS = 100.0
CHUNK = 10_000


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Anna Boris Olga Ivan Maria Sergey Elena Dmitry Natalia Pavel Irina Alexey Tatiana "
    "Mikhail Svetlana Nikolay Yulia Andrey Ksenia Roman Mary John Linda James Susan "
    "Robert Karen David Lisa Mark"
)
LAST = _words(
    "Ivanov Petrov Sidorov Smirnov Kuznetsov Popov Vasiliev Sokolov Mikhailov Novikov "
    "Fedorov Morozov Volkov Alekseev Lebedev Semenov Egorov Pavlov Kozlov Stepanov "
    "Nikolaev Orlov Andreev Makarov Zakharov Smith Johnson Williams Brown Jones Miller "
    "Davis Garcia Wilson Taylor Moore Martin Lee Walker Hall"
)
CITIES = ("Moscow", "Kazan", "Omsk", "Tver", "New York", "Boston", "Denver", "Austin")
#: (outcome, weight among failed attempts, SIP code, reason)
FAILURES = (
    ("no_answer", 50, 487, "Request Terminated"),
    ("busy", 17, 486, "Busy Here"),
    ("unavailable", 23, 480, "Temporarily Unavailable"),
    ("technical_error", 10, 503, "Service Unavailable"),
)
MAX_ATTEMPTS = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def say(text: str) -> None:
    print(text, flush=True)


# --- the database -----------------------------------------------------------------------


def create_postgres_database() -> tuple[str, str]:
    """A fresh database and an ordinary role that may use it: (database name, role)."""
    from sqlalchemy import create_engine, text

    tag = uuid.uuid4().hex[:10]
    name, role = f"autocall_bench_{tag}", f"autocall_bench_{tag}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    admin.dispose()
    return name, role


def grant_role(database_url: str, role: str) -> str:
    """Let the ordinary role read and write the built tables; its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        connection.execute(
            text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
        )
        connection.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    engine.dispose()
    return database_url.replace("postgres@", f"{role}@")


def drop_postgres_database(name: str, role: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def make_app(database_url: str, redis_prefix: str):
    from webapp import create_app

    app = create_app(
        {
            "env": "testing",
            "secret_key": "bench",
            "database_url": database_url,
            "redis_url": REDIS_URL,
            "redis_prefix": redis_prefix,
        }
    )
    app.config["WTF_CSRF_ENABLED"] = False  # the bench signs in with a plain POST
    return app


def bulk_insert(app, table, columns: tuple[str, ...], rows: Iterable[tuple], what: str) -> int:
    """Rows into `table` fast: COPY on PostgreSQL, executemany in chunks elsewhere."""
    from sqlalchemy import insert

    from webapp.extensions import db

    done = 0
    started = time.perf_counter()
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            raw = db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
                        done += 1
                        if done % 50_000 == 0:
                            say(f"  {what}: {done:,}")
                raw.commit()
            finally:
                raw.close()
        else:
            batch: list[dict] = []
            for row in rows:
                batch.append(dict(zip(columns, row, strict=True)))
                if len(batch) == CHUNK:
                    db.session.execute(insert(table), batch)
                    done += len(batch)
                    batch = []
                    if done % 50_000 == 0:
                        say(f"  {what}: {done:,}")
            if batch:
                db.session.execute(insert(table), batch)
                done += len(batch)
            db.session.commit()
    say(f"  {what}: {done:,} in {time.perf_counter() - started:.1f} s")
    return done


# --- the tenants ------------------------------------------------------------------------


@dataclass
class Tenant:
    """What the pages of one tenant need: who signs in, and objects to open."""

    id: int
    admin_email: str
    bearer: str
    lead_id: int  # a lead with attempts
    operator_id: int
    team_id: int
    far_before: int  # a `before=` near the oldest lead: a deep page
    name_part: str  # part of a name that some leads have
    phone_prefix: str
    external_id: str
    campaign_id: int  # its default campaign
    extra: dict = field(default_factory=dict)


@contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its production cost takes ~50 ms a hash; the bench makes a hundred logins."""
    from argon2 import PasswordHasher

    import webapp.models.user

    kept = webapp.models.user._hasher
    webapp.models.user._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield
    finally:
        webapp.models.user._hasher = kept


def _people(tenant, slug: str, operators: int, teams: int, supervisors: int) -> tuple[int, int]:
    """Teams, operators with logins, supervisors; (first operator id, first team id)."""
    from webapp.extensions import db
    from webapp.models import Role, Team
    from webapp.services.accounts import create_operator, new_user

    team_rows = [Team(tenant_id=tenant.id, name=f"Team {n + 1}") for n in range(teams)]
    db.session.add_all(team_rows)
    db.session.flush()
    first_operator = None
    for n in range(operators):
        operator = create_operator(
            tenant,
            name=f"{FIRST[n % len(FIRST)]} {LAST[(n * 7) % len(LAST)]} {n + 1}",
            email=f"operator{n + 1}@{slug}.example",
            extension=str(100 + n),
            password=PASSWORD,
            team_id=team_rows[n % teams].id,
        )
        operator.active = n % 10 != 9
        db.session.flush()
        first_operator = first_operator or operator.id
    for n in range(supervisors):
        new_user(f"supervisor{n + 1}@{slug}.example", PASSWORD, Role.SUPERVISOR, tenant)
    db.session.commit()
    return first_operator, team_rows[0].id


LEAD_COLUMNS = (
    "id",
    "tenant_id",
    "campaign_id",
    "phone",
    "name",
    "external_id",
    "card",
    "priority",
    "time_zone",
    "status",
    "attempts",
    "next_attempt_at",
    "last_outcome",
    "last_operator_id",
    "created_at",
)
ATTEMPT_COLUMNS = (
    "tenant_id",
    "campaign_id",
    "lead_id",
    "operator_id",
    "dialed_uri",
    "refer_to",
    "outcome",
    "detail",
    "sip_code",
    "sip_reason",
    "invite_at",
    "ringing_at",
    "answer_at",
    "refer_at",
    "end_at",
    "transfer_result",
)


def _history(rng: random.Random, leads: int, attempts: int) -> list[int]:
    """How many attempts each lead had: seven leads in ten were dialed at least once."""
    counts = [0] * leads
    dialed = [i for i in range(leads) if rng.random() < 0.7] or [0]
    spare = attempts
    for i in dialed:  # everyone dialed once, then the rest at random, at most MAX_ATTEMPTS
        if spare == 0:
            break
        counts[i] = 1
        spare -= 1
    while spare:
        i = rng.choice(dialed)
        if counts[i] < MAX_ATTEMPTS:
            counts[i] += 1
            spare -= 1
        elif all(counts[j] >= MAX_ATTEMPTS for j in dialed):
            break
    return counts


def _rows(
    tenant_id: int,
    campaign_id: int,
    first_id: int,
    counts: list[int],
    operator_ids: list[int],
    rng: random.Random,
    now: datetime,
    as_json: bool,
) -> tuple[list, list]:
    """The leads and their attempts, consistent with each other (status, last outcome,
    attempts, next attempt), oldest first."""
    leads, attempts = [], []
    weights = [weight for _, weight, _, _ in FAILURES]
    span = timedelta(days=90)
    total = len(counts)
    for n, count in enumerate(counts):
        lead_id = first_id + n
        created = now - span + span * n / max(total, 1)
        phone = f"+7916{n:07d}" if n % 3 else f"+1212{n:07d}"
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        card = {
            "order": f"#{100000 + n}",
            "city": rng.choice(CITIES),
            "amount": rng.randrange(10, 5000),
        }
        status, last_outcome, last_operator, next_attempt = "new", None, None, None
        moment = created
        for k in range(count):
            moment = moment + timedelta(minutes=rng.randrange(5, 180))
            answered = k == count - 1 and rng.random() < 0.3
            if answered:
                outcome, code, reason = "answered", 200, "OK"
                operator = rng.choice(operator_ids)
                last_operator = operator
            else:
                outcome, _, code, reason = rng.choices(FAILURES, weights)[0]
                operator = None
            attempts.append(
                (
                    tenant_id,
                    campaign_id,
                    lead_id,
                    operator,
                    f"sip:{phone}@pbx.example:5060",
                    "sip:101@pbx.example:5060" if answered else None,
                    outcome,
                    "no_free_operator" if outcome == "technical_error" and k % 2 else None,
                    code,
                    reason,
                    moment,
                    moment + timedelta(seconds=2),
                    moment + timedelta(seconds=9) if answered else None,
                    moment + timedelta(seconds=9.05) if answered else None,
                    moment + timedelta(seconds=rng.randrange(10, 300)),
                    "succeeded" if answered else None,
                )
            )
            last_outcome = outcome
        if count:
            if last_outcome == "answered":
                status = "reached"
            elif count >= MAX_ATTEMPTS:
                status = "exhausted"
            else:
                status = "retry"
                next_attempt = moment + timedelta(minutes=rng.choice((5, 10, 90)))
        roll = rng.random()
        if status in ("new", "retry") and roll < 0.04:
            status, next_attempt = "cancelled", None
        elif status in ("new", "retry") and roll < 0.05:
            status, next_attempt = "do_not_call", None
        elif status in ("new", "retry") and roll < 0.052:
            status = "dialing"
        leads.append(
            (
                lead_id,
                tenant_id,
                campaign_id,
                phone,
                name,
                f"crm-{tenant_id}-{n}" if n % 5 else None,
                json.dumps(card) if as_json else card,
                0 if n % 20 else 10,
                "Europe/Moscow" if n % 3 else None,
                status,
                count,
                next_attempt,
                last_outcome,
                last_operator,
                created,
            )
        )
    return leads, attempts


def build_tenant(
    app, name: str, leads: int, attempts: int, operators: int, do_not_call: int, seed: int = 4
) -> Tenant:
    """A tenant with its admin, people, leads, attempts and do-not-call list."""
    from sqlalchemy import func, select, text

    from webapp.extensions import db
    from webapp.models import Attempt, DoNotCall, Lead, Operator
    from webapp.services.accounts import create_tenant_with_admin
    from webapp.services.api_access import create_token
    from webapp.services.campaigns import default_campaign

    slug = name.lower().replace(" ", "-")
    rng = random.Random(seed)
    with app.app_context(), cheap_password_hashing():
        admin = create_tenant_with_admin(name, f"admin@{slug}.example", PASSWORD)
        tenant = admin.tenant
        tenant_id, admin_email = tenant.id, admin.email
        first_operator, first_team = _people(
            tenant, slug, operators, teams=max(1, operators // 20), supervisors=min(5, operators)
        )
        operator_ids = list(
            db.session.scalars(select(Operator.id).where(Operator.tenant_id == tenant_id))
        )
        _token, bearer = create_token(tenant_id, "Bench CRM")
        first_id = (db.session.scalar(select(func.max(Lead.id))) or 0) + 1
        postgres = db.engine.dialect.name == "postgresql"
        campaign_id = default_campaign(tenant).id
    counts = _history(rng, leads, attempts)
    lead_rows, attempt_rows = _rows(
        tenant_id,
        campaign_id,
        first_id,
        counts,
        operator_ids,
        rng,
        datetime.now(UTC),
        as_json=postgres,
    )
    bulk_insert(app, Lead.__table__, LEAD_COLUMNS, lead_rows, f"{name}: leads")
    bulk_insert(app, Attempt.__table__, ATTEMPT_COLUMNS, attempt_rows, f"{name}: attempts")
    entries = (
        (tenant_id, f"+7495{n:07d}", n % 10 == 0, "asked not to call", datetime.now(UTC))
        for n in range(do_not_call)
    )
    bulk_insert(
        app,
        DoNotCall.__table__,
        ("tenant_id", "number", "prefix", "note", "created_at"),
        entries,
        f"{name}: do-not-call entries",
    )
    with app.app_context():
        if postgres:
            db.session.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('leads', 'id'), "
                    "(SELECT max(id) FROM leads))"
                )
            )
            db.session.commit()
    # The lead page opens a lead with the most attempts, near the newest.
    busiest = max(range(len(counts) - 1, max(-1, len(counts) - 1000), -1), key=counts.__getitem__)
    name_part = lead_rows[len(lead_rows) // 2][LEAD_COLUMNS.index("name")].split()[1]
    return Tenant(
        id=tenant_id,
        admin_email=admin_email,
        bearer=bearer,
        lead_id=first_id + busiest,
        operator_id=first_operator,
        team_id=first_team,
        far_before=first_id + min(len(counts), 50) if len(counts) > 100 else first_id + 1,
        name_part=name_part,
        phone_prefix="+7916000",
        external_id=f"crm-{tenant_id}-1",
        campaign_id=campaign_id,
    )


def analyse(app) -> None:
    from sqlalchemy import text

    from webapp.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        else:
            db.session.execute(text("ANALYZE"))
            db.session.commit()


# --- the pages --------------------------------------------------------------------------

STATUSES = ("new", "dialing", "retry", "reached", "exhausted", "cancelled", "do_not_call")
OUTCOMES = ("answered", "no_answer", "busy", "unavailable", "technical_error")


def pages(t: Tenant) -> list[tuple[str, str, bool]]:
    """(name, path, through the API) of every page a tenant's admin reads."""
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    soon = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    listed = [
        ("leads", "/leads/", False),
        ("leads far page", f"/leads/?before={t.far_before}", False),
        ("leads search name", f"/leads/?q={t.name_part}", False),
        ("leads search no match", "/leads/?q=Zzyzx", False),
        ("leads search number", f"/leads/?q={t.phone_prefix.replace('+', '%2B')}", False),
        ("leads search CRM id", f"/leads/?q={t.external_id}", False),
        *((f"leads status={s}", f"/leads/?status={s}", False) for s in STATUSES),
        *((f"leads outcome={o}", f"/leads/?outcome={o}", False) for o in OUTCOMES),
        ("leads status+outcome", "/leads/?status=retry&outcome=busy", False),
        ("leads far page filtered", f"/leads/?status=reached&before={t.far_before}", False),
        ("lead page", f"/leads/{t.lead_id}", False),
        ("import upload", "/leads/import", False),
        ("operators", "/operators/", False),
        ("operator page", f"/operators/{t.operator_id}", False),
        ("team page", f"/operators/teams/{t.team_id}", False),
        ("people", "/people/", False),
        ("settings sip accounts", "/settings/sip", False),
        ("settings company", "/settings/company", False),
        ("campaigns", "/campaigns/", False),
        ("campaign calling", f"/campaigns/{t.campaign_id}/calling", False),
        ("settings api", "/settings/api", False),
        ("do-not-call", "/do-not-call/", False),
        ("do-not-call search", "/do-not-call/?q=%2B749500001", False),
        ("api leads", "/api/v1/leads", True),
        ("api leads status", "/api/v1/leads?status=retry", True),
        (
            "api leads phone",
            f"/api/v1/leads?phone={t.phone_prefix.replace('+', '%2B')}0001",
            True,
        ),
        ("api leads created", f"/api/v1/leads?created_from={day}", True),
        (
            "api leads next attempt",
            f"/api/v1/leads?next_attempt_from={day}&next_attempt_to={soon}",
            True,
        ),
        ("api lead", f"/api/v1/leads/{t.lead_id}", True),
        ("api lead attempts", f"/api/v1/leads/{t.lead_id}/attempts", True),
        ("api do-not-call", "/api/v1/do-not-call", True),
    ]
    return listed


class Reader:
    """A signed-in admin's browser (and its CRM's bearer) on the test client, counting the
    SQL statements of each read."""

    def __init__(self, app, tenant: Tenant):
        from sqlalchemy import event

        from webapp.extensions import db

        self.app, self.tenant = app, tenant
        self.client = app.test_client()
        answer = self.client.post(
            "/login", data={"email": tenant.admin_email, "password": PASSWORD}
        )
        if answer.status_code != 302:
            raise RuntimeError(f"signing in as {tenant.admin_email}: {answer.status_code}")
        self.statements = 0
        with app.app_context():
            engine = db.engine

        def count(*_args) -> None:
            self.statements += 1

        event.listen(engine, "before_cursor_execute", count)

    def read(self, path: str, api: bool) -> tuple[float, int]:
        """Seconds to answer, and statements run."""
        headers = {"Authorization": f"Bearer {self.tenant.bearer}"} if api else {}
        before = self.statements
        started = time.perf_counter()
        answer = self.client.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.data[:300]!r}")
        return elapsed, self.statements - before


def measure(
    app, big: Tenant, peer: Tenant, reps: int, only: Callable[[str], bool] = lambda _: True
) -> dict:
    """Every page, `reps` rounds, the big tenant and the peer in turn."""
    readers = (Reader(app, big), Reader(app, peer))
    plans = [[p for p in pages(t) if only(p[0])] for t in (big, peer)]
    times: dict[str, tuple[list, list]] = {name: ([], []) for name, _, _ in plans[0]}
    statements: dict[str, int] = {}
    for rep in range(reps + 1):  # the first round warms caches and templates up
        for (name, big_path, api), (_, peer_path, _) in zip(*plans, strict=True):
            for side, (reader, path) in enumerate(
                ((readers[0], big_path), (readers[1], peer_path))
            ):
                elapsed, count = reader.read(path, api)
                if rep:
                    times[name][side].append(elapsed * 1000)
                if side == 0:
                    statements[name] = count
    results = {}
    for name, (ours, theirs) in times.items():
        p50, peer_p50 = percentile(ours, 50), percentile(theirs, 50)
        results[name] = {
            "p50_ms": round(p50, 2),
            "p95_ms": round(percentile(ours, 95), 2),
            "peer_p50_ms": round(peer_p50, 2),
            "peer_p95_ms": round(percentile(theirs, 95), 2),
            "ratio": round(p50 / peer_p50, 2) if peer_p50 else None,
            "statements": statements[name],
        }
    return results


def table(results: dict) -> str:
    lines = [f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'peer p50':>9} {'ratio':>6} {'SQL':>4}"]
    for name, r in results.items():
        flag = "  over 100 ms" if r["p95_ms"] >= TARGET_MS else ""
        lines.append(
            f"{name:<28} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} "
            f"{r['peer_p50_ms']:>9.2f} {r['ratio'] or 0:>6.2f} "
            f"{r['statements']:>4}{flag}"
        )
    return "\n".join(lines)


# --- a run ------------------------------------------------------------------------------


def run(
    kind: str,
    leads: int,
    attempts: int,
    operators: int,
    do_not_call: int,
    reps: int,
    workdir: Path,
    keep: bool = False,
    try_sql: str | None = None,
) -> dict:
    """Build and measure on one database; the figures of every page."""
    import redis

    from webapp.cli import upgrade_database

    prefix = f"ac-bench-{uuid.uuid4().hex[:10]}:"
    created = None
    if kind == "postgresql":
        created = create_postgres_database()
        build_url = f"{PG_SERVER}/{created[0]}"
    else:
        build_url = f"sqlite:///{workdir / 'pages.db'}"
    try:
        say(f"{kind}: building the schema with the migrations")
        started = time.perf_counter()
        upgrade_database(
            {
                "env": "testing",
                "database_url": build_url,
                "redis_url": REDIS_URL,
                "redis_prefix": prefix,
            }
        )
        build_app = make_app(build_url, prefix)
        peer = build_tenant(build_app, "Peer", leads=1, attempts=5, operators=1, do_not_call=1)
        big = build_tenant(build_app, "Big", leads, attempts, operators, do_not_call)
        with build_app.app_context():
            from sqlalchemy import text

            from webapp.extensions import db

            if try_sql:  # an index or policy tried by hand, before it becomes a migration
                say(f"{kind}: running {try_sql}")
                db.session.execute(text(Path(try_sql).read_text()))
                db.session.commit()
        analyse(build_app)
        with build_app.app_context():
            db.engine.dispose()
        build_seconds = round(time.perf_counter() - started, 1)
        say(f"{kind}: built in {build_seconds} s; measuring {reps} rounds")
        read_url = grant_role(build_url, created[1]) if created else build_url
        app = make_app(read_url, prefix)
        results = measure(app, big, peer, reps)
        with app.app_context():
            from webapp.extensions import db

            db.engine.dispose()
        say(table(results))
        return {"build_seconds": build_seconds, "pages": results}
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
        if created and keep:
            say(f"kept: {PG_SERVER}/{created[0]} (read as role {created[1]}); drop it after")
        elif created:
            drop_postgres_database(*created)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=200_000)
    parser.add_argument("--operators", type=int, default=100)
    parser.add_argument("--do-not-call", type=int, default=5_000)
    parser.add_argument("--reps", type=int, default=30, help="rounds of every page")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file too")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument(
        "--try-sql", metavar="FILE", help="SQL run on PostgreSQL after the build (try an index)"
    )
    parser.add_argument(
        "--databases", default=None, help="comma-separated: postgresql, sqlite (default postgresql)"
    )
    args = parser.parse_args(argv)
    kinds = (args.databases or "postgresql" + (",sqlite" if args.sqlite else "")).split(",")
    workdir = Path(tempfile.mkdtemp(prefix="autocall-bench-pages-"))
    say(
        f"{args.leads:,} leads, {args.attempts:,} attempts, {args.operators} operators, "
        f"{args.do_not_call:,} do-not-call entries; {args.reps} rounds"
    )
    databases = {}
    for kind in kinds:
        databases[kind] = run(
            kind,
            args.leads,
            args.attempts,
            args.operators,
            args.do_not_call,
            args.reps,
            workdir,
            args.keep,
            args.try_sql if kind == "postgresql" else None,
        )
    over = sorted(
        {
            name
            for figures in databases.values()
            for name, r in figures["pages"].items()
            if r["p95_ms"] >= TARGET_MS
        }
    )
    slowest = {
        kind: max(figures["pages"].items(), key=lambda item: item[1]["p95_ms"])[0]
        for kind, figures in databases.items()
    }
    result = {
        "benchmark": "pages",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "leads": args.leads,
        "attempts": args.attempts,
        "operators": args.operators,
        "do_not_call": args.do_not_call,
        "reps": args.reps,
        "databases": databases,
        "targets": {"every_page_p95_under_100ms": not over, "pages_over": over, "slowest": slowest},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
