"""How fast one engine host dials: attempts per second with 1, 10 and 100 tenants, the delay
from a new lead to its INVITE, and from answer to REFER, against SIPp playing the PBXes; then
the largest number of tenants again with `--campaigns` running campaigns each (their leads
spread over them), beside the same tenants with one (issue 17: at least 0.8 of its attempts
per second; the two runs take `--turns` turns each and their means are compared, so that the
machine's load and the database's growth fall on both alike), and the new-lead-to-INVITE
delay of both.

    python bench/engine.py [--tenants 1,10,100] [--seconds 10] [--campaigns 5] [--turns 2]
                           [--database URL]

Each tenant has enough operators that pacing never waits; nine leads in ten answer busy
(486) and one in ten answers and is transferred, so the engine does the whole cycle: claim,
INVITE, outcome, REFER for some, CDR, retry time. The peer, measured in the same run, is the
bare user agent (`UserAgent.place_call` in a loop, same PBX, same concurrency, no database,
no Redis): the ratio says what the engine's bookkeeping costs. Targets (issue 5): at least
300 attempts per second per host process, new-lead-to-INVITE p99 under 200 ms.

Uses the machine's Redis (127.0.0.1:6379, keys under a unique prefix, deleted after) and
SIPp; the database is a temporary SQLite file unless --database names an empty one.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sipp import SIPp  # noqa: E402  (the SIPp harness of the tests)

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Operators on line in all tenants together: enough that pacing never waits for one (a
#: transferred customer keeps an operator about three seconds here: transfer, the PBX's
#: BYE, one second of wrap-up).
OPERATORS = 300


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


class World:
    """A database with tenants dialing SIPp PBXes, their operators on line."""

    def __init__(
        self, database_url: str, prefix: str, pbxes: list[SIPp], tenants: int, campaigns: int = 1
    ):
        self.operators = max(10, OPERATORS // tenants)
        self.campaigns = campaigns
        #: tenant -> its campaigns, the default first
        self.campaign_ids: dict[int, list[int]] = {}
        from webapp import create_app
        from webapp.extensions import db

        self.app = create_app(
            {
                "env": "testing",
                "database_url": database_url,
                "redis_url": REDIS_URL,
                "redis_prefix": prefix,
            }
        )
        self.database_url = database_url
        self.prefix = prefix
        with self.app.app_context():
            db.drop_all()
            db.create_all()
        self.tenants = [self._tenant(n, pbxes[n % len(pbxes)]) for n in range(tenants)]

    def _tenant(self, n: int, pbx: SIPp) -> int:
        from webapp import bus
        from webapp.extensions import db
        from webapp.models import Campaign, Operator, Role, SipAccount, Tenant, User

        with self.app.app_context():
            tenant = Tenant(name=f"Bench {n}", dialing_enabled=True)
            db.session.add(tenant)
            db.session.flush()
            account = SipAccount(
                tenant_id=tenant.id,
                name="Bench trunk",
                host=pbx.host,
                port=pbx.port,
                username=f"bench{n}",
            )
            db.session.add(account)
            db.session.flush()
            rules = dict(
                sip_account_id=account.id,
                pacing_mode="progressive",
                calling_hours_start=clock(0),
                calling_hours_end=clock(0),
                max_calls_at_once=1000,
                max_calls_per_second=1000,
                max_attempts=100,
                wrap_up_timeout_seconds=1,
                ring_timeout_seconds=10,
            )
            default = db.session.scalar(
                db.select(Campaign).where(Campaign.tenant_id == tenant.id, Campaign.is_default)
            )
            for key, value in rules.items():
                setattr(default, key, value)
            extra = [
                Campaign(tenant_id=tenant.id, name=f"C{k}", key=f"c{k}", **rules)
                for k in range(1, self.campaigns)
            ]
            db.session.add_all(extra)
            db.session.flush()
            default = default.id
            self.campaign_ids[tenant.id] = [default, *(c.id for c in extra)]
            for k in range(self.operators):
                user = User(
                    email=f"op{k}@t{n}.bench",
                    role=Role.OPERATOR.value,
                    tenant=tenant,
                    password_hash="-",
                )
                db.session.add(user)
                db.session.flush()
                db.session.add(
                    Operator(
                        tenant_id=tenant.id, user_id=user.id, name=f"Op {k}", extension=str(100 + k)
                    )
                )
            db.session.commit()
            presence = bus.presence(tenant.id)
            for operator_id in db.session.scalars(
                db.select(Operator.id).where(Operator.tenant_id == tenant.id)
            ):
                presence.go_on_line(operator_id)
            return tenant.id

    def load_leads(self, per_tenant: int) -> None:
        """Bulk leads: nine in ten busy (...2), one in ten answered (...0)."""
        from webapp.extensions import db
        from webapp.models import Lead

        with self.app.app_context():
            rows = [
                {
                    "tenant_id": t,
                    "campaign_id": self.campaign_ids[t][k % self.campaigns],
                    "phone": f"+1555{t:03d}{k:04d}{'0' if k % 10 == 0 else '2'}",
                    "name": "",
                    "card": {},
                    "priority": 0,
                    "status": "new",
                    "attempts": 0,
                    "created_at": datetime.now(UTC),
                }
                for t in self.tenants
                for k in range(per_tenant)
            ]
            db.session.execute(db.insert(Lead), rows)
            db.session.commit()

    def attempts(self) -> list:
        from webapp.extensions import db
        from webapp.models import Attempt

        with self.app.app_context():
            return db.session.execute(
                db.select(
                    Attempt.invite_at,
                    Attempt.end_at,
                    Attempt.answer_at,
                    Attempt.refer_at,
                    Attempt.outcome,
                    Attempt.lead_id,
                )
            ).all()

    def close(self) -> None:
        import redis

        from webapp.extensions import db

        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(self.prefix + "*"))
        if keys:
            client.delete(*keys)


def _seconds(moment) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def run_host(world: World, until, timeout: float):
    """Run one engine host in a thread until `until()` is true; returns the wall time."""
    from tests.engine.dialing import HostThread

    host = HostThread(
        world.database_url, REDIS_URL, world.prefix, capacity=max(1, len(world.tenants))
    )
    started = time.monotonic()
    with host:
        deadline = started + timeout
        while time.monotonic() < deadline and not until():
            time.sleep(0.2)
    return time.monotonic() - started


def throughput(
    tenants: int, seconds: float, database_url: str, pbxes: list[SIPp], campaigns: int = 1
) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    world = World(database_url, prefix, pbxes, tenants, campaigns)
    try:
        per_tenant = max(50, int(600 * seconds / tenants))
        world.load_leads(per_tenant)
        total = per_tenant * tenants
        run_host(world, lambda: len(world.attempts()) >= total, timeout=seconds)
        rows = [r for r in world.attempts() if r.end_at is not None]
        first = min(_seconds(r.invite_at) for r in rows)
        last = max(_seconds(r.end_at) for r in rows)
        answered = [r for r in rows if r.refer_at is not None and r.answer_at is not None]
        answer_to_refer = [_seconds(r.refer_at) - _seconds(r.answer_at) for r in answered]
        return {
            "tenants": tenants,
            "campaigns_each": campaigns,
            "attempts": len(rows),
            "attempts_per_second": round(len(rows) / (last - first), 1),
            "answered": len(answered),
            "answer_to_refer_p99_ms": ms(percentile(answer_to_refer, 99)),
        }
    finally:
        world.close()


def new_lead_latency(leads: int, database_url: str, pbx: SIPp, campaigns: int = 1) -> dict:
    """Leads created one by one through the portal's service while the engine waits (spread
    over the tenant's campaigns)."""
    from webapp.extensions import db
    from webapp.models import Lead, Tenant
    from webapp.services.leads import NewLead, create_lead

    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    world = World(database_url, prefix, [pbx], 1, campaigns)
    tenant_id = world.tenants[0]
    spread = world.campaign_ids[tenant_id]
    try:
        from tests.engine.dialing import HostThread

        with HostThread(world.database_url, REDIS_URL, prefix, idle_poll=600):
            time.sleep(1.5)  # registered, idle
            with world.app.app_context():
                tenant = db.session.get(Tenant, tenant_id)
                for k in range(leads):
                    campaign = spread[k % len(spread)]
                    create_lead(tenant, NewLead(phone=f"+1555999{k:03d}2", campaign_id=campaign))
                    time.sleep(0.02)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(world.attempts()) < leads:
                time.sleep(0.1)
        with world.app.app_context():
            created = dict(db.session.execute(db.select(Lead.id, Lead.created_at)).all())
        delays = [_seconds(r.invite_at) - _seconds(created[r.lead_id]) for r in world.attempts()]
        return {
            "campaigns_each": campaigns,
            "leads": leads,
            "dialed": len(delays),
            "new_lead_to_invite_p50_ms": ms(percentile(delays, 50)),
            "new_lead_to_invite_p99_ms": ms(percentile(delays, 99)),
        }
    finally:
        world.close()


async def bare_user_agent(seconds: float, pbx: SIPp, concurrency: int) -> dict:
    """The peer: the same calls through the user agent alone."""
    from engine.sip.ua import Account, UserAgent

    done = 0
    async with UserAgent(Account(pbx.host, pbx.port, "peer"), local_host="127.0.0.1") as ua:
        deadline = time.monotonic() + seconds

        async def caller(k: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < deadline:
                n += 1
                digit = "0" if n % 10 == 0 else "2"
                await ua.place_call(
                    f"sip:+1555{k:03d}{n:05d}{digit}@{pbx.host}:{pbx.port}",
                    "sip:100@pbx",
                    bye_grace=0.0,
                )
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(caller(k) for k in range(concurrency)))
        return {"calls": done, "calls_per_second": round(done / (time.monotonic() - started), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--campaigns", type=int, default=5, help="campaigns per tenant, last run")
    parser.add_argument(
        "--turns", type=int, default=2, help="runs of one and of several campaigns, in turns"
    )
    parser.add_argument("--database", default=None, help="an empty database (default SQLite)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.tenants.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="autocall-bench-"))
    database_url = args.database or f"sqlite:///{workdir / 'bench.db'}"
    fill = {"ring_ms": 0}
    # SIPp's sockets get the user agent's 4 MiB receive buffer (as bench/cps.py gives them):
    # with the kernel's default, a burst of one engine's calls overflowed the PBX's socket,
    # SIPp lost an ACK or a REFER and dropped the call, and the engine host took a REFER
    # timeout and an unanswered BYE (42 s) to drain.
    buffer = ["-buff_size", str(4 << 20)]
    pbxes = [
        SIPp("pbx.xml", workdir, calls=10**7, timeout=3600, fill=fill, extra=buffer)
        for _ in range(2)
    ]
    try:
        peer = asyncio.run(bare_user_agent(args.seconds, pbxes[0], 20))
        print(
            f"peer: bare user agent, 20 calls at a time: {peer['calls_per_second']} calls/s",
            flush=True,
        )
        steps = []
        for tenants in counts:
            step = throughput(tenants, args.seconds, database_url, pbxes)
            step["ratio_to_bare_user_agent"] = round(
                step["attempts_per_second"] / peer["calls_per_second"], 2
            )
            steps.append(step)
            print(
                f"{tenants:>4} tenants: {step['attempts_per_second']:>7} attempts/s "
                f"({step['ratio_to_bare_user_agent']}x the bare UA), answer->REFER p99 "
                f"{step['answer_to_refer_p99_ms']} ms",
                flush=True,
            )
        # The same tenants with one campaign and with several, in turns (the first turn's
        # one-campaign run is the last step's): the load of the machine and the database's
        # growth fall on both alike.
        ones, manys = [steps[-1]], []
        for turn in range(args.turns):
            if turn:
                ones.append(throughput(counts[-1], args.seconds, database_url, pbxes))
            manys.append(throughput(counts[-1], args.seconds, database_url, pbxes, args.campaigns))
        many = dict(manys[-1])
        many["attempts_per_second"] = round(mean(m["attempts_per_second"] for m in manys), 1)
        many["turns"] = [
            {"one_campaign": o["attempts_per_second"], "campaigns": m["attempts_per_second"]}
            for o, m in zip(ones, manys, strict=True)
        ]
        many["ratio_to_one_campaign"] = round(
            many["attempts_per_second"] / mean(o["attempts_per_second"] for o in ones), 2
        )
        print(
            f"{counts[-1]:>4} tenants with {args.campaigns} campaigns each: "
            f"{many['attempts_per_second']:>7} attempts/s ({many['ratio_to_one_campaign']}x the "
            f"same tenants with one campaign, means of {args.turns} turns: "
            + ", ".join(f"{t['campaigns']} vs {t['one_campaign']}" for t in many["turns"])
            + ")",
            flush=True,
        )
        latency = new_lead_latency(100, database_url, pbxes[1])
        latency_many = new_lead_latency(100, database_url, pbxes[1], args.campaigns)
        for measured in (latency, latency_many):
            print(
                f"new lead -> INVITE, {measured['campaigns_each']} campaign(s): p50 "
                f"{measured['new_lead_to_invite_p50_ms']} ms, "
                f"p99 {measured['new_lead_to_invite_p99_ms']} ms",
                flush=True,
            )
    finally:
        for pbx in pbxes:
            pbx.stop()
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    worst = min(step["attempts_per_second"] for step in steps)
    result = {
        "bench": "engine",
        "database": database_url.split(":")[0],
        "peer": peer,
        "steps": steps,
        "campaign_run": many,
        **latency,
        "with_campaigns": latency_many,
        "peak_rss_mb": peak_mb,
        "targets": {
            "attempts_per_second_300": worst >= 300,
            "new_lead_to_invite_p99_under_200ms": (latency["new_lead_to_invite_p99_ms"] or 1e9)
            < 200,
            "campaigns_at_least_0_8_of_one": many["ratio_to_one_campaign"] >= 0.8,
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
