"""How long the staff pages take over every tenant's attempts: billing for a month (all
tenants, and one tenant's twelve months) and ops (SIP codes of the last hour and day), on
PostgreSQL read by an ordinary role under row-level security, as the portal connects.

    python bench/staff.py [--tenants 1000] [--attempts 5000] [--days 180] [--reps 10]
                          [--several-campaigns 0.1] [--keep]

A fresh database is built by the migrations; `--tenants` tenants get `--attempts` attempts
each, spread over the last `--days` days (generated in SQL: INSERT ... SELECT over
generate_series), then the tables are analysed. A share of the tenants (`--several-campaigns`)
has a second campaign with half of its attempts: billing reads their minutes per campaign
from the hourly roll-up (docs/billing.md, Campaigns). Each page is read through Flask's test
client signed in as staff (server-side time only): a warm-up, then `--reps` reads; the table
shows p50 and p95 in ms. The billing pages are read twice: first with every attempt read raw
(the peer), then after the reports' roll-up (webapp/services/rollup.py, which billing sums),
with the ratio. Measured, never asserted. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import (  # noqa: E402
    create_postgres_database,
    drop_postgres_database,
    grant_role,
    make_app,
    percentile,
    say,
)

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PASSWORD = "bench password 1"

LOAD = """
INSERT INTO attempts (tenant_id, lead_id, campaign_id, dialed_uri, outcome, detail, sip_code,
                      invite_at, answer_at, end_at, transfer_result)
SELECT t.id, l.id, CASE WHEN o.g % 2 = 0 AND c.id IS NOT NULL THEN c.id ELSE l.campaign_id END,
       'sip:79160000000@pbx', o.outcome, NULL, o.code, o.invite_at,
       CASE WHEN o.outcome = 'answered' THEN o.invite_at + interval '8 seconds' END,
       o.invite_at + CASE WHEN o.outcome = 'answered'
                          THEN interval '8 seconds' + (o.r * 300) * interval '1 second'
                          ELSE interval '20 seconds' END,
       CASE WHEN o.outcome = 'answered' THEN 'succeeded' END
FROM tenants t JOIN leads l ON l.tenant_id = t.id
LEFT JOIN campaigns c ON c.tenant_id = t.id AND NOT c.is_default
CROSS JOIN LATERAL (
    SELECT now() - (random() * :days) * interval '1 day' AS invite_at, r, g,
           CASE WHEN r < 0.3 THEN 'answered' WHEN r < 0.5 THEN 'busy'
                WHEN r < 0.8 THEN 'no_answer' ELSE 'unavailable' END AS outcome,
           CASE WHEN r < 0.3 THEN 200 WHEN r < 0.5 THEN 486 WHEN r < 0.8 THEN 487
                WHEN r < 0.95 THEN 404 ELSE 503 END AS code
    FROM (SELECT random() AS r, g FROM generate_series(1, :attempts) g
          WHERE t.id IS NOT NULL) s
) o
WHERE t.id BETWEEN :low AND :high
"""


def build(owner_url: str, tenants: int, attempts: int, days: int, several: float = 0.0) -> int:
    """Load the tenants, a lead each, a second campaign for the share `several` of them, and
    their attempts; returns the attempts loaded."""
    from sqlalchemy import create_engine, text

    from webapp.extensions import db
    from webapp.models import Tenant

    with make_app(owner_url, "bench-staff:").app_context():  # the models' defaults
        db.session.add_all(Tenant(name=f"Tenant {n}") for n in range(1, tenants + 1))
        db.session.commit()
        db.engine.dispose()
    engine = create_engine(owner_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO leads (tenant_id, campaign_id, phone, name, card, priority, "
                "status, attempts, created_at) SELECT t.id, c.id, '+79160000000', 'Lead', "
                "'{}', 0, 'retry', 1, now() FROM tenants t "
                "JOIN campaigns c ON c.tenant_id = t.id AND c.is_default"
            )
        )
        if several > 0:
            connection.execute(
                text(
                    "INSERT INTO campaigns (tenant_id, name, key, state, is_default, "
                    "created_at, state_changed_at) SELECT id, 'Second', 'second', 'running', "
                    "false, now(), now() FROM tenants WHERE id % :every = 0"
                ),
                {"every": max(1, round(1 / several))},
            )
        low, high = connection.execute(text("SELECT min(id), max(id) FROM tenants")).one()
    started = time.monotonic()
    step = max(1, 200_000 // attempts)
    for first in range(low, high + 1, step):
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL autocall.tenant_id = 'all'"))
            connection.execute(
                text(LOAD),
                {"days": days, "attempts": attempts, "low": first, "high": first + step - 1},
            )
        done = first + step - low
        say(
            f"  attempts of {min(done, tenants)}/{tenants} tenants, "
            f"{time.monotonic() - started:.0f} s"
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
        loaded = connection.execute(text("SELECT count(*) FROM attempts")).scalar()
    engine.dispose()
    return loaded


def measure(client, pages: dict[str, str], reps: int) -> dict[str, dict]:
    """p50 and p95 (ms, server side through the test client) of each page, after a warm-up."""
    results = {}
    say(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8}")
    for label, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm-up
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        results[label] = {
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
        }
        say(f"{label:34} {results[label]['p50_ms']:8.1f} {results[label]['p95_ms']:8.1f}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=5000, help="per tenant")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument(
        "--several-campaigns", type=float, default=0.1, help="share of tenants with two"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    from flask_migrate import upgrade

    from webapp.extensions import db
    from webapp.services.accounts import create_staff

    name, role = create_postgres_database()
    owner_url = f"{PG_SERVER}/{name}"
    try:
        migrator = make_app(owner_url, "bench-staff:")
        with migrator.app_context():
            upgrade()
            db.engine.dispose()
        total = args.tenants * args.attempts
        say(f"loading {total:,} attempts of {args.tenants} tenants over {args.days} days")
        loaded = build(owner_url, args.tenants, args.attempts, args.days, args.several_campaigns)
        app = make_app(grant_role(owner_url, role), f"bench-staff-{uuid.uuid4().hex[:6]}:")
        with app.app_context():
            create_staff("bench-staff@autocall.example", PASSWORD)
            month = time.strftime("%Y-%m", time.gmtime(time.time() - 40 * 86400))
        client = app.test_client()
        client.post("/login", data={"email": "bench-staff@autocall.example", "password": PASSWORD})
        pages = {
            "billing, every tenant, a month": f"/staff/billing?month={month}",
            "billing CSV, a month": f"/staff/billing.csv?month={month}",
            "billing, one tenant, 12 months": "/staff/billing/1",
            "ops (SIP codes hour and day)": "/staff/ops",
        }
        billing = [label for label in pages if label.startswith("billing")]
        # The peer, in the same run: billing summed from the raw attempts, before any roll-up.
        say("\nbefore the roll-up (every attempt read raw):")
        raw = measure(client, {label: pages[label] for label in billing}, args.reps)
        say("\nrolling up (what the cron job keeps doing every minute)")
        started = time.perf_counter()
        with app.app_context():
            from webapp.services.rollup import roll_up_all

            while roll_up_all():  # at most a month of hours per tenant a run
                pass
        rollup_seconds = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        with app.app_context():  # the job's every-minute run when nothing new has come
            roll_up_all()
        idle_run_ms = round((time.perf_counter() - started) * 1000, 1)
        say(
            f"rolled up in {rollup_seconds} s; a run with nothing new to roll up: "
            f"{idle_run_ms} ms\n\nafter the roll-up:"
        )
        results = measure(client, pages, args.reps)
        ratios = {
            label: round(raw[label]["p50_ms"] / results[label]["p50_ms"], 1) for label in billing
        }
        for label, ratio in ratios.items():
            say(f"{label}: {ratio}x faster from the roll-up than raw (p50)")
        with app.app_context():
            db.engine.dispose()
        print(
            json.dumps(
                {
                    "bench": "staff",
                    "tenants": args.tenants,
                    "attempts": loaded,
                    "days": args.days,
                    "several_campaigns": args.several_campaigns,
                    "rollup_seconds": rollup_seconds,
                    "rollup_idle_run_ms": idle_run_ms,
                    "pages": results,
                    "raw": raw,
                    "raw_over_rolled": ratios,
                }
            )
        )
    finally:
        if args.keep:
            say(f"kept database {name} (role {role})")
        else:
            drop_postgres_database(name, role)
    return 0


if __name__ == "__main__":
    sys.exit(main())
