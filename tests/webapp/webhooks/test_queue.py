"""Webhooks on their own queue: `autocall worker` starts a worker of the `webhooks` queue,
the engine announces deliveries there, and that worker (a real process, as deployed)
delivers them. A try is written down before its POST, so a worker killed during the POST
leaves a try that counts; the sweep enqueues it again only once RQ no longer counts its job
as running, and never enqueues a delivery whose job is queued or scheduled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import Queue, Worker
from rq.scheduler import RQScheduler
from sqlalchemy import update

from tests.conftest import REDIS_PREFIX, REDIS_URL
from tests.webapp.jobs import emptied, run_jobs
from tests.webapp.webhooks.receiver import Receiver
from tests.webapp.webhooks.test_delivery import (
    add_attempt,
    announce,
    deliveries,
    fixture_attempt,
    point_at,
)
from webapp.config import Config
from webapp.extensions import db
from webapp.jobs.engines import dialing_store
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.launcher import worker_commands
from webapp.models import WebhookDelivery
from webapp.webhooks import delivery

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config_overrides():
    return {"webhook_retry_seconds": "60,60"}  # no retry comes due during a test


@pytest.fixture
def webhooks(app):
    """The `webhooks` queue, emptied of what earlier tests of the session left in it."""
    with app.app_context():
        return emptied(queue(WEBHOOKS))


def test_autocall_worker_starts_a_worker_of_the_webhooks_queue():
    commands = worker_commands(Config())
    assert [sys.executable, "-m", "webapp.jobs", "webhooks"] in commands
    assert [sys.executable, "-m", "webapp.jobs", "default"] in commands


def test_the_engines_store_announces_on_the_webhooks_queue(database_url):
    config = Config(
        env="testing", database_url=database_url, redis_url=REDIS_URL, redis_prefix=REDIS_PREFIX
    )
    store = dialing_store(config)
    try:
        assert store.queue.name == f"{REDIS_PREFIX}webhooks"
    finally:
        store.close()


def overdue(app, tenant_id: int) -> None:
    """Every waiting delivery of the tenant is past its try time (as time passing would)."""
    with app.app_context():
        db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.next_try_at.is_not(None))
            .values(next_try_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()


def sweep(app) -> int:
    with app.app_context():
        return delivery.sweep()


def test_the_sweep_leaves_alone_deliveries_whose_job_is_queued_or_scheduled(
    app, tenant_a, webhooks, monkeypatch
):
    monkeypatch.setattr(delivery, "OVERDUE", 0)
    with Receiver(500) as receiver:
        point_at(app, tenant_a, receiver.url)
        announce(app, tenant_a.id, [fixture_attempt(app, tenant_a), add_attempt(app, tenant_a)])
        overdue(app, tenant_a.id)
        assert sweep(app) == 0  # its job is still queued (a long queue, not a lost job)
        assert webhooks.count == 1
        webhooks.empty()  # the job is lost (Redis restarted without it)
        assert sweep(app) == 2 and webhooks.count == 1
        overdue(app, tenant_a.id)
        assert sweep(app) == 0 and webhooks.count == 1  # the sweep's own job is queued
        run_jobs(app)  # the receiver answers 500: a retry is scheduled
        assert len(receiver.received) == 2
        assert webhooks.scheduled_job_registry.count == 1
        overdue(app, tenant_a.id)
        assert sweep(app) == 0 and webhooks.count == 0  # its retry is scheduled
    assert [(row.state, row.tries) for row in deliveries(app, tenant_a.id)] == [("waiting", 1)] * 2


def start_worker(database_url: str, log: Path) -> subprocess.Popen:
    """`python -m webapp.jobs webhooks` as systemd or `autocall worker` starts it, on the
    test's database and Redis, in a process group of its own (with its work horse)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AUTOCALL_")}
    env.update(
        AUTOCALL_ENV="testing",
        AUTOCALL_DATABASE_URL=database_url,
        AUTOCALL_REDIS_URL=REDIS_URL,
        AUTOCALL_REDIS_PREFIX=REDIS_PREFIX,
        PYTHONPATH=str(ROOT),
    )
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "webapp.jobs", "webhooks"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )


def forget_killed_workers(webhooks: Queue) -> None:
    """What RQ would do in a few minutes: drop the killed worker from the workers of the queue
    (/readyz counts them) and free its scheduler's lock (other tests schedule retries)."""
    for worker in Worker.all(queue=webhooks):
        worker.register_death()
    webhooks.connection.delete(RQScheduler.get_locking_key(webhooks.name))


def wait_for(condition, what: str, worker: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert worker.poll() is None, f"the worker stopped: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: {log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_the_webhooks_worker_delivers_and_a_try_cut_short_by_its_death_counts(
    app, database_url, tenant_a, webhooks, monkeypatch, tmp_path
):
    log = tmp_path / "worker.log"
    worker = start_worker(database_url, log)
    try:
        with Receiver(200) as receiver:
            point_at(app, tenant_a, receiver.url)
            announce(app, tenant_a.id, [fixture_attempt(app, tenant_a)])
            wait_for(
                lambda: [r.state for r in deliveries(app, tenant_a.id)] == ["delivered"],
                "the worker delivers",
                worker,
                log,
            )
            assert len(receiver.received) == 1
        with Receiver(200, drip=1.0) as slow:  # the worker waits for its answer...
            point_at(app, tenant_a, slow.url)
            [cut] = announce(app, tenant_a.id, [add_attempt(app, tenant_a)])
            wait_for(slow.arrived.is_set, "the POST arrives", worker, log)
            os.killpg(worker.pid, signal.SIGKILL)  # ...and is killed during it
            worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        forget_killed_workers(webhooks)
    [row] = [row for row in deliveries(app, tenant_a.id) if row.id == cut]
    assert (row.state, row.tries, row.error) == ("waiting", 1, delivery.UNDER_WAY)
    monkeypatch.setattr(delivery, "OVERDUE", 0)
    overdue(app, tenant_a.id)
    assert sweep(app) == 0  # RQ counts its job as running until its heartbeat is old
    webhooks.started_job_registry.cleanup(time.time() + 3600)  # as RQ does an hour later
    assert sweep(app) == 1
    with Receiver(200) as receiver:
        point_at(app, tenant_a, receiver.url)
        run_jobs(app)
    assert len(receiver.received) == 1
    [row] = [row for row in deliveries(app, tenant_a.id) if row.id == cut]
    assert (row.state, row.tries, row.error) == ("delivered", 2, None)  # the cut try counted
