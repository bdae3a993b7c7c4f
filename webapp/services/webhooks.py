"""The webhooks' outbox: what the engine's store does for them (webapp/services/dialing.py),
and the notes in Redis that tie each delivery to the job that is to try it.

- `record_finished`, inside the engine's transaction that writes the CDRs of finished
  attempts: a delivery for each active endpoint and attempt, due now. Nothing is lost
  between a finished attempt and its POST. The console's Finish records `attempt.result`
  deliveries the same way (webapp/services/results.py).
- `announce`, after the commit: one `deliver` job for them on the `webhooks` queue
  (`enqueue`). Redis being away does not stop the engine; the sweep finds them later.
- `enqueue` also leaves a note of the job beside the queue for each delivery, which
  `with_a_job` reads: the sweep leaves alone a delivery whose job will still run.

The job itself (the payload, the signature, the POST, the retries and the sweep) is
webapp/webhooks/delivery.py; it stands on this module, and this module names it by its path
(`DELIVER`), as RQ stores it, rather than importing it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from webapp.models import WebhookDelivery, WebhookEndpoint
from webapp.models.webhook import ATTEMPT_FINISHED

log = logging.getLogger(__name__)
endpoints_table = WebhookEndpoint.__table__
deliveries_table = WebhookDelivery.__table__

#: The job that tries deliveries: `deliver(tenant_id, delivery_ids)`.
DELIVER = "webapp.webhooks.delivery.deliver"
#: Seconds one try may take in all: the name's look-up, connect, TLS, sending, the answer.
DEADLINE = 10


def record_finished(
    connection: Connection, tenant_id: int, attempt_ids: list[int], event: str = ATTEMPT_FINISHED
) -> list[int]:
    """Inside the engine's transaction that wrote these attempts' CDRs: a delivery of `event`
    for each active endpoint and attempt, due now (also `attempt.result`, inside the
    console's transaction that wrote the operator's result: webapp/services/results.py).
    Returns their ids (none without an active endpoint)."""
    endpoints = (
        connection.execute(
            select(endpoints_table.c.id).where(
                endpoints_table.c.tenant_id == tenant_id, endpoints_table.c.active.is_(True)
            )
        )
        .scalars()
        .all()
    )
    if not endpoints or not attempt_ids:
        return []
    now = datetime.now(UTC)
    rows = [
        {
            "tenant_id": tenant_id,
            "endpoint_id": endpoint_id,
            "event": event,
            "attempt_id": attempt_id,
            "next_try_at": now,
            "tries": 0,
            "created_at": now,
        }
        for attempt_id in sorted(attempt_ids)
        for endpoint_id in endpoints
    ]
    return list(
        connection.execute(
            insert(deliveries_table).returning(deliveries_table.c.id), rows
        ).scalars()
    )


def announce(jobs: Queue, tenant_id: int, delivery_ids: list[int]) -> None:
    """After the commit: one job on `jobs` (the `webhooks` queue) tries these deliveries.
    Redis being away must not stop the engine: the deliveries are in the database, and
    the sweep enqueues them later."""
    try:
        enqueue(jobs, tenant_id, delivery_ids)
    except redis.RedisError:
        log.warning(
            "webhooks of tenant %s: no job queue now; the sweep sends deliveries %s",
            tenant_id,
            delivery_ids,
        )


def _job_options(count: int) -> dict:
    return {"job_timeout": 60 + 2 * DEADLINE * count, "result_ttl": 600, "failure_ttl": 86400}


def _job_key(jobs: Queue, delivery_id: int) -> str:
    """The note in Redis of the job that is to try a delivery next (beside the queue's name,
    so under the deployment's prefix)."""
    return f"{jobs.name}:delivery:{delivery_id}"


def enqueue(jobs: Queue, tenant_id: int, delivery_ids: list[int], delay: int = 0) -> None:
    """One `deliver` job for these deliveries, now or after `delay` seconds, and a note for
    each of them of that job (kept a day longer than the job may wait)."""
    options = _job_options(len(delivery_ids))
    if delay:
        job = jobs.enqueue_in(timedelta(seconds=delay), DELIVER, tenant_id, delivery_ids, **options)
    else:
        job = jobs.enqueue(DELIVER, tenant_id, delivery_ids, **options)
    with jobs.connection.pipeline(transaction=False) as pipe:
        for delivery_id in delivery_ids:
            pipe.set(_job_key(jobs, delivery_id), job.id, ex=delay + 86400)
        pipe.execute()


#: RQ's states of a job that will still run or is running.
_ALIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}


def with_a_job(jobs: Queue, delivery_ids: list[int]) -> set[int]:
    """The deliveries among these whose job is still queued, scheduled or running. A job
    whose worker died counts as running until RQ finds it abandoned, which it does here."""
    if not delivery_ids:
        return set()
    jobs.started_job_registry.cleanup()
    noted = [
        job_id.decode() if job_id else None
        for job_id in jobs.connection.mget([_job_key(jobs, i) for i in delivery_ids])
    ]
    found = Job.fetch_many(sorted({j for j in noted if j}), connection=jobs.connection)
    alive = {job.id for job in found if job and job.get_status(refresh=False) in _ALIVE}
    return {i for i, job_id in zip(delivery_ids, noted, strict=True) if job_id in alive}
