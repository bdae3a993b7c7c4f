"""The ops page: each tenant's engine as it published itself in Redis, SIP error rates
from the attempts of the last hour and day, queues, workers and engine hosts (real Redis)."""

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue, Worker

from tests.conftest import REDIS_PREFIX, REDIS_URL


def _recent_attempts(app, tenant_id):
    """Bravo, last hour: 200, 503, no response; earlier today: 486, 500.
    Hour: 3 finished, 2 errors (503, none). Day: 5 finished, 3 errors (503, none, 500)."""
    from webapp.extensions import db
    from webapp.models import Attempt, Lead

    now = datetime.now(UTC)
    with app.app_context():
        lead = db.session.scalar(db.select(Lead).where(Lead.tenant_id == tenant_id))
        for ago, code, outcome in (
            (10, 200, "answered"),
            (11, 503, "unavailable"),
            (12, None, "unavailable"),
            (300, 486, "busy"),
            (301, 500, "technical_error"),
            (13, None, None),
        ):  # the last: in progress, not counted
            at = now - timedelta(minutes=ago)
            end_at = at + timedelta(seconds=5) if outcome else None
            db.session.add(
                Attempt(
                    tenant_id=tenant_id,
                    lead_id=lead.id,
                    dialed_uri="sip:x@pbx",
                    outcome=outcome,
                    sip_code=code,
                    invite_at=at,
                    end_at=end_at,
                )
            )
        db.session.commit()


def test_error_rates_by_sip_code(app, dataset):
    from webapp.staff import reports

    _recent_attempts(app, dataset.bravo)
    now = datetime.now(UTC)
    with app.app_context():
        hour = reports.sip_codes(now - timedelta(hours=1))
        day = reports.sip_codes(now - timedelta(days=1))
    assert set(hour) == set(day) == {dataset.bravo}  # October's attempts are long gone
    assert (hour[dataset.bravo].total, hour[dataset.bravo].errors) == (3, 2)
    assert hour[dataset.bravo].by_code == {200: 1, 503: 1, None: 1}
    assert (day[dataset.bravo].total, day[dataset.bravo].errors) == (5, 3)
    assert day[dataset.bravo].codes == [(200, 1), (486, 1), (500, 1), (503, 1)]
    assert day[dataset.bravo].no_response == 1
    assert day[dataset.bravo].error_rate == pytest.approx(0.6)


def test_the_ops_page_shows_engines_queues_workers_and_hosts(app, staff, dataset):
    from engine.bus import TenantKeys, hosts_key

    _recent_attempts(app, dataset.bravo)
    redis = Redis.from_url(REDIS_URL)
    keys = TenantKeys(REDIS_PREFIX, dataset.romashka)
    redis.set(keys.lease, "engine-machine-1:4242:ab12", px=60_000)
    state = {
        "state": "waiting",
        "reason": "registration_failed",
        "detail": "wrong username or password",
        "in_flight": 4,
        "registration": "failed",
        "registration_detail": "wrong username or password",
        "engine": "engine-machine-1:4242:ab12/1f2e3d",
        "warning": "",
    }
    redis.hset(keys.state, mapping={k: json.dumps(v) for k, v in state.items()})
    redis.zadd(
        hosts_key(REDIS_PREFIX),
        {"engine-machine-1:4242:ab12": time.time(), "gone-machine:1:00": time.time() - 60},
    )
    default = Queue(f"{REDIS_PREFIX}default", connection=redis)
    default.empty()  # RQ's keys do not start with the test's prefix: no one else cleans them
    default.enqueue("builtins.print", "waiting")
    default.enqueue("builtins.print", "waiting too")
    worker = Worker(
        [Queue(f"{REDIS_PREFIX}engines", connection=redis)],
        connection=redis,
        name=f"ops-test-{time.time_ns()}",
    )
    worker.register_birth()
    engines = Queue(f"{REDIS_PREFIX}engines", connection=redis)
    try:
        page = staff.get("/staff/ops").get_data(as_text=True)
        # Other tests of the session may leave failed jobs and workers: what RQ says now.
        expected = {
            "default": (2, default.failed_job_registry.count, Worker.count(queue=default)),
            "engines": (
                engines.count,
                engines.failed_job_registry.count,
                Worker.count(queue=engines),
            ),
        }
    finally:
        worker.register_death()
        default.empty()
    assert expected["engines"][2] >= 1  # the worker registered above
    for name, numbers in expected.items():
        row = re.search(
            rf'<tr data-queue="{name}"><td>{name}</td><td>(\d+)</td><td>(\d+)</td>'
            r"<td>(\d+)</td></tr>",
            page,
        )
        assert tuple(int(n) for n in row.groups()) == numbers, name
    romashka = page[page.index(f'data-tenant="{dataset.romashka}"') :].split("</tr>")[0]
    assert "engine-machine-1:4242:ab12" in romashka
    assert "not dialing: The PBX refused the registration." in romashka
    assert "wrong username or password" in romashka
    assert '<td class="in-flight">4</td>' in romashka
    bravo = page[page.index(f'data-tenant="{dataset.bravo}"') :].split("</tr>")[0]
    assert "not running" in bravo
    assert '<td class="errors-hour">2 / 3 (66.7 %)</td>' in bravo
    assert '<td class="errors-day">3 / 5 (60.0 %)</td>' in bravo
    assert "200: 1, 486: 1, 500: 1, 503: 1, no response: 1" in bravo
    assert worker.name in page
    assert "Engine hosts alive: 1 (engine-machine-1:4242:ab12)" in page


def test_the_ops_page_in_russian(staff, dataset):
    staff.get("/lang/ru")
    page = staff.get("/staff/ops").get_data(as_text=True)
    assert "Очереди и обработчики" in page
