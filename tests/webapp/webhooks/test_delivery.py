"""Webhook deliveries end to end on the portal's side: the engine's store announces a batch
of finished attempts, a real RQ worker runs the jobs (and RQ's scheduler the retries), and
a real HTTP server on 127.0.0.1 receives the POSTs. Nothing is lost when Redis is away: the
deliveries wait in the database and the sweep sends them."""

from __future__ import annotations

import dataclasses
import socket
import time
from datetime import UTC, datetime

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from engine.outcomes import Outcome
from engine.sip import ua
from engine.store import Finished
from tests.webapp.jobs import run_jobs
from tests.webapp.webhooks.receiver import Receiver
from webapp.config import DEV_ENCRYPTION_KEY
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.models import Attempt, Lead, WebhookDelivery, WebhookEndpoint
from webapp.services import webhooks
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox
from webapp.webhooks import delivery

SECRET = "alpha-secret"  # the fixture tenant's webhook (tests/conftest.py make_tenant)


@pytest.fixture
def config_overrides():
    return {"webhook_retry_seconds": "1,1"}


def point_at(app, tenant, url: str, active: bool = True) -> None:
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, tenant.webhook_id)
        endpoint.url, endpoint.active = url, active
        db.session.commit()


def fixture_attempt(app, tenant) -> int:
    with app.app_context():
        return db.session.scalar(select(Attempt.id).where(Attempt.tenant_id == tenant.id))


def announce(app, tenant_id: int, attempt_ids: list[int]) -> list[int]:
    """What the engine's store does: record the deliveries in the transaction that wrote these
    CDRs, then, after the commit, enqueue their job. Returns the deliveries' ids."""
    with app.app_context():
        with db.engine.begin() as connection:
            ids = webhooks.record_finished(connection, tenant_id, attempt_ids)
        if ids:
            webhooks.announce(queue(WEBHOOKS), tenant_id, ids)
        return ids


def deliveries(app, tenant_id: int) -> list[WebhookDelivery]:
    with app.app_context():
        rows = db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == tenant_id)
            .order_by(WebhookDelivery.id)
        ).all()
        db.session.expunge_all()
        return rows


def run_jobs_until(app, condition, timeout: float = 15.0) -> None:
    """Run the due jobs, retries included (the worker's scheduler enqueues those that are
    due), until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the jobs did not get there in time"
        run_jobs(app, with_scheduler=True)
        time.sleep(0.2)


def test_a_finished_attempt_is_posted_as_json_and_signed(app, tenant_a):
    attempt_id = fixture_attempt(app, tenant_a)
    with Receiver(200) as receiver:
        point_at(app, tenant_a, receiver.url)
        announce(app, tenant_a.id, [attempt_id])
        run_jobs(app)
    [received] = receiver.received
    [row] = deliveries(app, tenant_a.id)
    assert received.signed_with(SECRET) and not received.signed_with("another-secret")
    assert received.headers["X-AutoCall-Delivery"] == str(row.id)
    assert received.headers["Content-Type"] == "application/json"
    body = received.json
    assert (body["event"], body["v"]) == ("attempt.finished", 1)
    attempt = body["attempt"]
    assert attempt["id"] == attempt_id and attempt["lead_id"] == tenant_a.lead_id
    assert attempt["lead_external_id"] == "alpha-crm-1"
    assert attempt["campaign"]["key"] == "default" and attempt["campaign"]["id"] > 0
    assert attempt["phone"].startswith("+15550100")
    assert attempt["operator_id"] == tenant_a.operator_id
    assert (attempt["outcome"], attempt["sip_code"], attempt["sip_reason"]) == (
        "answered",
        200,
        "OK",
    )
    assert attempt["transfer_result"] == "succeeded"
    assert datetime.fromisoformat(attempt["invite_at"]).utcoffset().total_seconds() == 0
    assert attempt["end_at"] is None and attempt["detail"] is None
    assert (row.state, row.tries, row.status_code, row.error) == ("delivered", 1, 200, None)
    assert row.attempt_id == attempt_id and row.event == "attempt.finished"


def test_a_receiver_answering_500_is_tried_again_with_backoff(app, tenant_a):
    attempt_id = fixture_attempt(app, tenant_a)
    with Receiver(500, 200) as receiver:
        point_at(app, tenant_a, receiver.url)
        announce(app, tenant_a.id, [attempt_id])
        run_jobs(app)
        [row] = deliveries(app, tenant_a.id)
        assert (row.state, row.tries, row.status_code) == ("waiting", 1, 500)
        assert row.error == "answered 500 Internal Server Error"
        wait = row.next_try_at.replace(tzinfo=UTC) - row.created_at.replace(tzinfo=UTC)
        assert 0.5 < wait.total_seconds() < 3  # the first delay of "1,1"
        run_jobs_until(app, lambda: len(receiver.received) == 2)
    first, second = receiver.received
    assert first.headers["X-AutoCall-Delivery"] == second.headers["X-AutoCall-Delivery"]
    assert first.body == second.body and second.signed_with(SECRET)
    [row] = deliveries(app, tenant_a.id)
    assert (row.state, row.tries, row.status_code, row.error) == ("delivered", 2, 200, None)
    assert row.next_try_at is None and row.delivered_at is not None


def test_a_receiver_that_is_down_is_given_up_with_the_reason(app, tenant_a):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    point_at(app, tenant_a, f"http://127.0.0.1:{port}/hooks")
    second = add_attempt(app, tenant_a)
    announce(app, tenant_a.id, [fixture_attempt(app, tenant_a), second])

    def given_up() -> bool:
        rows = deliveries(app, tenant_a.id)
        return len(rows) == 2 and all(row.state == "failed" for row in rows)

    run_jobs_until(app, given_up)
    for row in deliveries(app, tenant_a.id):
        assert row.tries == 3  # the first try and the two retries of "1,1"
        assert row.status_code is None and row.error == "cannot connect: Connection refused"
        assert row.next_try_at is None and row.delivered_at is None


def test_production_refuses_private_addresses_unless_allowed(app, tenant_a):
    config = app.extensions["autocall.config"]
    attempt_id = fixture_attempt(app, tenant_a)
    with Receiver(200) as receiver:
        point_at(app, tenant_a, receiver.url)
        app.extensions["autocall.config"] = dataclasses.replace(config, env="production")
        announce(app, tenant_a.id, [attempt_id])
        run_jobs(app)
        assert receiver.received == []
        [row] = deliveries(app, tenant_a.id)
        assert (row.state, row.error) == ("waiting", "refused: 127.0.0.1 is not a public address")
        app.extensions["autocall.config"] = dataclasses.replace(
            config, env="production", webhook_allow_private=True
        )
        announce(app, tenant_a.id, [attempt_id])
        run_jobs(app)
        assert len(receiver.received) == 1
    app.extensions["autocall.config"] = config


def test_what_is_not_an_http_url_is_never_fetched():
    for url in ("ftp://example.com/", "file:///etc/passwd", "gopher://x", "https://"):
        assert delivery.post(url, b"{}", {}, allow_private=True) == (
            None,
            "not an http:// or https:// URL",
        )


def test_a_port_that_is_not_one_is_an_error_not_a_crash():
    status, error = delivery.post("http://example.com:99999/", b"{}", {}, allow_private=True)
    assert status is None and error.startswith("bad URL: ")


def test_an_inactive_webhook_gets_nothing(app, tenant_a):
    with Receiver(200) as receiver:
        point_at(app, tenant_a, receiver.url, active=False)
        announce(app, tenant_a.id, [fixture_attempt(app, tenant_a)])
        run_jobs(app)
    assert receiver.received == [] and deliveries(app, tenant_a.id) == []


def test_the_log_keeps_the_newest_deliveries_of_each_tenant(app, tenant_a, tenant_b):
    with app.app_context():
        for tenant in (tenant_a, tenant_b):
            db.session.add_all(
                WebhookDelivery(
                    tenant_id=tenant.id, endpoint_id=tenant.webhook_id, event="test", attempt_id=n
                )
                for n in range(5)
            )
        db.session.commit()
        delivery.trim(tenant_a.id, keep=3)
    assert [row.attempt_id for row in deliveries(app, tenant_a.id)] == [2, 3, 4]
    assert len(deliveries(app, tenant_b.id)) == 5


def add_attempt(app, tenant, lead_status: str = "new") -> int:
    """Another attempt of the tenant's lead, still open (as the engine's claim leaves it)."""
    with app.app_context():
        lead = db.session.get(Lead, tenant.lead_id)
        lead.status = lead_status
        attempt = Attempt(
            tenant_id=tenant.id,
            lead_id=tenant.lead_id,
            dialed_uri="sip:x@pbx",
            invite_at=datetime.now(UTC),
        )
        db.session.add(attempt)
        db.session.commit()
        return attempt.id


def test_the_engines_store_enqueues_one_job_per_batch_after_the_commit(app, database_url, tenant_a):
    ids = [add_attempt(app, tenant_a, "dialing") for _ in range(3)]
    with app.app_context():
        default = queue()
    store = DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY), default)
    epoch = store.start_engine(tenant_a.id)
    now = time.time()

    def finished(attempt_id: int) -> Finished:
        cdr = ua.CallRecord(
            "sip:x@pbx",
            outcome=Outcome.BUSY,
            sip_code=486,
            sip_reason="Busy Here",
            invite_at=now - 2,
            end_at=now,
        )
        return Finished(attempt_id, tenant_a.lead_id, None, cdr, "retry", None)

    try:
        with Receiver(200) as receiver:
            point_at(app, tenant_a, receiver.url)
            assert store.finish(tenant_a.id, epoch, [finished(i) for i in ids[:2]]) == 2
            assert default.count == 1
            recorded = deliveries(app, tenant_a.id)
            assert [row.attempt_id for row in recorded] == ids[:2]  # in the same transaction
            assert default.jobs[0].args == (tenant_a.id, [row.id for row in recorded])
            assert store.finish(tenant_a.id, epoch, [finished(ids[0])]) == 0  # already written
            assert default.count == 1
            run_jobs(app)
            point_at(app, tenant_a, receiver.url, active=False)
            assert store.finish(tenant_a.id, epoch, [finished(ids[2])]) == 1
            assert default.count == 0  # no active webhook: no job
    finally:
        store.close()
    assert [r.json["attempt"]["id"] for r in receiver.received] == ids[:2]
    assert {r.json["attempt"]["outcome"] for r in receiver.received} == {"busy"}
    assert all(r.signed_with(SECRET) for r in receiver.received)


def test_deliveries_recorded_while_redis_is_away_are_sent_by_the_sweep(
    app, database_url, tenant_a, monkeypatch
):
    """The engine's store writes the CDRs and the deliveries in one transaction; with Redis
    away the job cannot be enqueued, and the cron job's sweep sends them later."""
    with socket.socket() as probe:  # a Redis that is not there
        probe.bind(("127.0.0.1", 0))
        gone = Queue("default", connection=redis.Redis(port=probe.getsockname()[1]))
    ids = [add_attempt(app, tenant_a, "dialing") for _ in range(2)]
    store = DialingStore(database_url, SecretBox(DEV_ENCRYPTION_KEY), gone)
    epoch = store.start_engine(tenant_a.id)
    now = time.time()
    cdr = ua.CallRecord(
        "sip:x@pbx", outcome=Outcome.NO_ANSWER, sip_code=487, invite_at=now - 30, end_at=now
    )
    try:
        with Receiver(200) as receiver:
            point_at(app, tenant_a, receiver.url)
            finished = [Finished(i, tenant_a.lead_id, None, cdr, "retry", None) for i in ids]
            assert store.finish(tenant_a.id, epoch, finished) == 2  # the engine goes on
            assert [row.state for row in deliveries(app, tenant_a.id)] == ["waiting"] * 2
            with app.app_context():  # what the cron job does every minute
                assert delivery.sweep() == 0  # not overdue yet: their job may still come
                monkeypatch.setattr(delivery, "OVERDUE", 0)
                assert delivery.sweep() == 2
            run_jobs(app)
            with app.app_context():
                assert delivery.sweep() == 0  # delivered: nothing more to send
    finally:
        store.close()
    assert [r.json["attempt"]["id"] for r in receiver.received] == ids
    assert [row.state for row in deliveries(app, tenant_a.id)] == ["delivered"] * 2


def test_a_job_that_runs_twice_sends_nothing_twice(app, tenant_a):
    """A delivery is sent only when due: a job enqueued again (by the sweep, say) while the
    first one already ran finds nothing to send."""
    with Receiver(200) as receiver:
        point_at(app, tenant_a, receiver.url)
        ids = announce(app, tenant_a.id, [fixture_attempt(app, tenant_a)])
        with app.app_context():
            queue(WEBHOOKS).enqueue(delivery.deliver, tenant_a.id, ids)
        run_jobs(app)
    assert len(receiver.received) == 1
    [row] = deliveries(app, tenant_a.id)
    assert (row.state, row.tries) == ("delivered", 1)
