"""How long the reports take on a tenant with millions of CDRs in PostgreSQL.

    python bench/reports.py [--attempts 5000000] [--days 180] [--operators 50] [--reps 15]

A fresh PostgreSQL database on 127.0.0.1:5432 (trust auth as `postgres`; created and dropped
by the script) is built by the migrations; the tenant (zone Europe/Moscow), its operators,
leads and attempts go in by COPY (progress shown), spread over `--days` up to now, most in
the local day time, with operators' on-line sessions. One report is timed on raw rows first
(no roll-up yet), then the roll-up job runs (timed, in its monthly steps) and every report is
read `--reps` times by the admin through Flask's test client, as an ordinary role (so
row-level security is in every plan, as in production). The table shows p50 and p95 in ms
and the target; the last line is one JSON object. Measured, never asserted.

Targets (issue 7): summary, heat map and per-operator pages under 300 ms each, the call log's
first page under 100 ms, at 5,000,000 CDRs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pages as common

ZONE = "Europe/Moscow"
MOSCOW = timedelta(hours=3)
#: (outcome, detail, weight, SIP code, reason)
KINDS = (
    ("answered", None, 20, 200, "OK"),
    ("technical_error", "no_free_operator", 2, 200, "OK"),
    ("technical_error", "refer_refused", 0.5, 200, "OK"),
    ("technical_error", "transfer_failed", 0.5, 200, "OK"),
    ("no_answer", "ring_timeout", 40, 487, "Request Terminated"),
    ("busy", None, 12, 486, "Busy Here"),
    ("unavailable", None, 20, 480, "Temporarily Unavailable"),
    ("technical_error", None, 5, 503, "Service Unavailable"),
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
    "transfer_result_at",
    "end_at",
    "transfer_result",
    "transfer_sip_code",
    "transfer_sip_reason",
    "talk_ended_at",
    "wrap_up_ended_at",
)
LEAD_COLUMNS = (
    "id",
    "tenant_id",
    "campaign_id",
    "phone",
    "name",
    "card",
    "priority",
    "status",
    "attempts",
    "created_at",
)
MAX_ATTEMPTS = 5
TARGETS_MS = {"summary": 300, "heat map": 300, "operators": 300, "call log": 100}
say = common.say


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def _copy(app, table: str, columns, lines, total: int, what: str) -> None:
    """COPY text lines (tab-separated, \\N for null), saying how far it got as it goes."""
    from webapp.extensions import db

    started, done, step = time.perf_counter(), 0, max(1, (total or 5_000_000) // 10)
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            with raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                chunk = []
                for line in lines:
                    chunk.append(line)
                    done += 1
                    if len(chunk) == 20_000:
                        copy.write("".join(chunk))
                        chunk = []
                    if done % step == 0:
                        of = f" of {total:,}" if total else ""
                        seconds = time.perf_counter() - started
                        say(f"  {what}: {done:,}{of} ({seconds:.0f} s)")
                copy.write("".join(chunk))
            raw.commit()
        finally:
            raw.close()
    say(f"  {what}: {done:,} in {time.perf_counter() - started:.1f} s")


def _row(values) -> str:
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def generate(
    tenant_id: int,
    campaign_id: int,
    first_lead: int,
    attempts: int,
    days: int,
    operators: list[int],
    now: datetime,
    seed: int = 7,
):
    """Yields (lead line, attempt lines) per lead: 1 to 5 attempts, 90 minutes or more apart,
    in Moscow's day time, outcomes by KINDS; the lead's status follows its attempts. The same
    arguments yield the same rows, so leads and attempts are made in two passes (leads first:
    attempts refer to them) without holding millions of rows in memory."""
    rng = random.Random(seed)
    weights = [kind[2] for kind in KINDS]
    span = days * 86400
    lead_id, made = first_lead, 0
    s = timedelta(seconds=1)
    while made < attempts:
        count = min(attempts - made, rng.randint(1, MAX_ATTEMPTS))
        start = now - timedelta(seconds=rng.random() * span)
        local_hour = (start + MOSCOW).hour
        if local_hour < 9 or local_hour >= 21:  # calling hours, mostly
            start -= timedelta(hours=12)
        reached, lines, moment = False, [], start
        for _k in range(count):
            outcome, detail, _w, code, reason = rng.choices(KINDS, weights)[0]
            ring = rng.randint(2, 25)
            invite, ringing = moment, moment + s
            answer = refer = result_at = talk_end = wrap_end = operator = refer_to = None
            transfer = tcode = treason = None
            if code == 200:
                answer = ringing + ring * s
                end = answer + 2 * s
                if detail != "no_free_operator":
                    operator = rng.choice(operators)
                    refer, result_at = answer, answer + s
                    refer_to = f"sip:{operator}@pbx.example:5060"
                    if outcome == "answered":
                        transfer, tcode, treason = "succeeded", 200, "OK"
                        talk_end = result_at + rng.choice((3, 40, 90, 180, 400)) * s
                        wrap_end = talk_end + rng.choice((0, 10, 20, 45)) * s
                    else:
                        transfer = "failed"
                        tcode, treason = (
                            (405, "Method Not Allowed")
                            if detail == "refer_refused"
                            else (480, "Temporarily Unavailable")
                        )
            else:
                end = ringing + (ring if outcome == "no_answer" else 1) * s
            if end >= now:  # not yet happened
                break
            lines.append(
                _row(
                    (
                        tenant_id,
                        campaign_id,
                        lead_id,
                        operator,
                        "sip:+79160000000@pbx.example:5060",
                        refer_to,
                        outcome,
                        detail,
                        code,
                        reason,
                        _ts(invite),
                        _ts(ringing),
                        answer and _ts(answer),
                        refer and _ts(refer),
                        result_at and _ts(result_at),
                        _ts(end),
                        transfer,
                        tcode,
                        treason,
                        talk_end and _ts(talk_end),
                        wrap_end and _ts(wrap_end),
                    )
                )
            )
            if outcome == "answered":
                reached = True
                break
            moment = end + timedelta(minutes=rng.randint(90, 600))
        made += max(1, len(lines))
        tried = len(lines)
        status = (
            "reached"
            if reached
            else ("exhausted" if tried == MAX_ATTEMPTS else ("retry" if tried else "new"))
        )
        lead = _row(
            (
                lead_id,
                tenant_id,
                campaign_id,
                f"+7916{lead_id:07d}",
                f"Клиент {lead_id}",
                "{}",
                0,
                status,
                tried,
                _ts(start),
            )
        )
        yield lead, lines
        lead_id += 1


def sessions(tenant_id: int, operators: list[int], days: int, now: datetime) -> list[str]:
    """Each operator on line most days, 09:00-13:00 and 14:00-18:00 Moscow time."""
    rows = []
    first = (now - timedelta(days=days)).date()
    for n in range(days + 1):
        day = datetime.combine(first + timedelta(days=n), datetime.min.time(), UTC) - MOSCOW
        for operator in operators:
            if (operator + n) % 7 == 0:
                continue
            for begin, end in ((9, 13), (14, 18)):
                on, off = day + timedelta(hours=begin), day + timedelta(hours=end)
                if on >= now:
                    continue
                rows.append(
                    _row(
                        (
                            tenant_id,
                            operator,
                            _ts(on),
                            _ts(off) if off < now else None,
                            "console" if off < now else None,
                        )
                    )
                )
    return rows


def build(app, attempts: int, days: int, operators: int) -> dict:
    from sqlalchemy import func, select, text

    from webapp.extensions import db
    from webapp.models import Lead, Operator, Tenant
    from webapp.services.accounts import create_tenant_with_admin
    from webapp.services.campaigns import default_campaign

    with app.app_context(), common.cheap_password_hashing():
        admin = create_tenant_with_admin("Big", "admin@big.example", common.PASSWORD)
        tenant = admin.tenant
        tenant.time_zone = ZONE
        common._people(tenant, "big", operators, teams=max(1, operators // 10), supervisors=1)
        tenant_id = tenant.id
        campaign_id = default_campaign(tenant).id
        operator_ids = list(
            db.session.scalars(select(Operator.id).where(Operator.tenant_id == tenant_id))
        )
        first_lead = (db.session.scalar(select(func.max(Lead.id))) or 0) + 1
        db.session.commit()
        # A second, small tenant: its rows must never show (isolation at size).
        create_tenant_with_admin("Peer", "admin@peer.example", common.PASSWORD)
        db.session.get(Tenant, tenant_id)
    now = datetime.now(UTC)
    say(f"generating and loading about {attempts:,} attempts over {days} days")
    made = 0

    def lead_lines():
        nonlocal made
        for lead, lines in generate(
            tenant_id, campaign_id, first_lead, attempts, days, operator_ids, now
        ):
            made += len(lines)
            yield lead

    _copy(app, "leads", LEAD_COLUMNS, lead_lines(), None, "leads")
    _copy(
        app,
        "attempts",
        ATTEMPT_COLUMNS,
        (
            line
            for _, lines in generate(
                tenant_id, campaign_id, first_lead, attempts, days, operator_ids, now
            )
            for line in lines
        ),
        made,
        "attempts",
    )
    rows = sessions(tenant_id, operator_ids, days, now)
    columns = ("tenant_id", "operator_id", "on_line_at", "off_line_at", "off_line_why")
    _copy(app, "operator_sessions", columns, rows, len(rows), "on-line sessions")
    with app.app_context():
        db.session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))"
            )
        )
        db.session.commit()
    return {"tenant_id": tenant_id, "operator_id": operator_ids[0], "now": now}


def roll_up(app, tenant_id: int) -> float:
    from webapp.services import rollup

    started = time.perf_counter()
    with app.app_context():
        while True:
            step = time.perf_counter()
            hours = rollup.roll_up(tenant_id)
            if not hours:
                break
            say(f"  rolled up {hours} hours in {time.perf_counter() - step:.1f} s")
    return time.perf_counter() - started


def reports(built: dict, days: int) -> list[tuple[str, str]]:
    """(name, path) of every report read. Periods end today (Moscow)."""
    today = (built["now"] + MOSCOW).date()

    def period(n: int) -> str:
        return f"from={(today - timedelta(days=n - 1)).isoformat()}&to={today.isoformat()}"

    everything = period(days + 1)
    return [
        ("summary, 7 days", f"/reports/?{period(7)}"),
        ("summary, 30 days", f"/reports/?{period(30)}"),
        ("summary, all", f"/reports/?{everything}"),
        ("heat map + trend, 30 days", f"/reports/answers?{period(30)}"),
        ("heat map + trend, all", f"/reports/answers?{everything}"),
        ("heat map, all, by month", f"/reports/answers?{everything}&step=month"),
        ("operators, 7 days", f"/reports/operators?{period(7)}"),
        ("operators, all", f"/reports/operators?{everything}"),
        ("failed transfers, all", f"/reports/failed-transfers?{everything}"),
        ("call log, first page", "/reports/calls"),
        ("call log, all, first page", f"/reports/calls?{everything}"),
        ("call log, one operator", f"/reports/calls?{everything}&operator={built['operator_id']}"),
        ("call log, busy", f"/reports/calls?{everything}&outcome=busy"),
        ("call log, no free operators", f"/reports/calls?{everything}&detail=no_free_operator"),
    ]


def target_of(name: str) -> float | None:
    if name.startswith("call log, first page") or name.startswith("call log, all, first"):
        return TARGETS_MS["call log"]
    for key in ("summary", "heat map", "operators"):
        if name.startswith(key):
            return TARGETS_MS[key]
    return None


def read(client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    body = answer.get_data()
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path}: {answer.status_code} {body[:300]!r}")
    return elapsed * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--reps", type=int, default=15, help="reads of every report")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    import redis

    from webapp.cli import upgrade_database

    prefix = f"ac-bench-{uuid.uuid4().hex[:10]}:"
    name, role = common.create_postgres_database()
    build_url = f"{common.PG_SERVER}/{name}"
    try:
        say("building the schema with the migrations")
        upgrade_database(
            {
                "env": "testing",
                "database_url": build_url,
                "redis_url": common.REDIS_URL,
                "redis_prefix": prefix,
            }
        )
        build_app = common.make_app(build_url, prefix)
        started = time.perf_counter()
        built = build(build_app, args.attempts, args.days, args.operators)
        common.analyse(build_app)
        load_seconds = time.perf_counter() - started
        say(f"loaded and analysed in {load_seconds:.1f} s")

        read_app = common.make_app(common.grant_role(build_url, role), prefix)
        client = read_app.test_client()
        with common.cheap_password_hashing():
            signed = client.post(
                "/login", data={"email": "admin@big.example", "password": common.PASSWORD}
            )
        if signed.status_code != 302:
            raise RuntimeError(f"signing in: {signed.status_code}")
        plan = reports(built, args.days)
        say("the summary of everything from raw rows, before any roll-up (one read):")
        raw_ms = read(client, plan[2][1])
        say(f"  {raw_ms:.0f} ms")

        say("rolling up")
        rollup_seconds = roll_up(build_app, built["tenant_id"])
        common.analyse(build_app)
        say(f"  rolled up in {rollup_seconds:.1f} s")

        times: dict[str, list[float]] = {name_: [] for name_, _ in plan}
        for rep in range(args.reps + 1):  # the first round warms up
            for name_, path in plan:
                elapsed = read(client, path)
                if rep:
                    times[name_].append(elapsed)
        results = {}
        say(f"\n{'report':<32} {'p50 ms':>8} {'p95 ms':>8} {'target':>7}")
        for name_, values in times.items():
            p50, p95 = common.percentile(values, 50), common.percentile(values, 95)
            target = target_of(name_)
            results[name_] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "target_ms": target}
            flag = "" if target is None or p95 < target else "  over"
            say(f"{name_:<32} {p50:>8.1f} {p95:>8.1f} {target or '':>7}{flag}")
        met = all(r["p95_ms"] < r["target_ms"] for r in results.values() if r["target_ms"])
        with read_app.app_context():
            from webapp.extensions import db

            db.engine.dispose()
        with build_app.app_context():
            db.engine.dispose()
        print(
            json.dumps(
                {
                    "benchmark": "reports",
                    "attempts": args.attempts,
                    "days": args.days,
                    "operators": args.operators,
                    "reps": args.reps,
                    "load_seconds": round(load_seconds, 1),
                    "rollup_seconds": round(rollup_seconds, 1),
                    "summary_raw_ms": round(raw_ms, 1),
                    "reports": results,
                    "targets": {"every_target_met_p95": met},
                }
            ),
            flush=True,
        )
        return 0
    finally:
        client_ = redis.Redis.from_url(common.REDIS_URL)
        keys = list(client_.scan_iter(prefix + "*"))
        if keys:
            client_.delete(*keys)
        client_.close()
        if args.keep:
            say(f"kept: {build_url} (read as role {role}); drop it after")
        else:
            common.drop_postgres_database(name, role)


if __name__ == "__main__":
    sys.exit(main())
