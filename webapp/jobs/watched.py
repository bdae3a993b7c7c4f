"""Jobs a tenant's admin starts from the portal (a lead import, a connection check) and
watches: each carries its tenant and kind in `job.meta`, and a page shows only the jobs
of its own tenant, answering any other exactly like a job that does not exist (404)."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import abort
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from webapp import bus
from webapp.jobs.queues import queue
from webapp.tenancy import current_tenant_id

#: RQ's job ids are uuid4 strings; anything else is never looked up.
_JOB_ID = re.compile(r"[0-9a-f\-]{32,36}\Z")


def start(
    kind: str,
    tenant_id: int,
    function: Callable,
    *args,
    timeout: int,
    keep_seconds: int = 86400,
    meta: dict | None = None,
) -> Job:
    """Enqueue `function(*args)` on the `default` queue for the tenant; the result is kept
    for `keep_seconds`, long enough for the admin to come back to it, and a job no worker
    took in that time is dropped. `meta`: more for the job's page to show (set before the
    job is queued: a worker's progress is never overwritten)."""
    return queue().enqueue_call(
        function,
        args=args,
        timeout=timeout,
        ttl=keep_seconds,
        result_ttl=keep_seconds,
        failure_ttl=keep_seconds,
        meta={**(meta or {}), "tenant_id": tenant_id, "kind": kind},
    )


def find(job_id: str, kind: str) -> Job | None:
    """The current tenant's job of this kind, or None (missing, expired, another's)."""
    connection = bus.client()
    if connection is None or not _JOB_ID.match(job_id or ""):
        return None
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    meta = job.get_meta(refresh=False)
    if meta.get("kind") != kind or meta.get("tenant_id") != current_tenant_id():
        return None
    return job


def find_or_404(job_id: str, kind: str) -> Job:
    job = find(job_id, kind)
    if job is None:
        abort(404)
    return job


def state(job: Job) -> str:
    """`waiting`, `running`, `done` or `failed`, what the pages show."""
    status = job.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        return "done"
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return "failed"
    if status == JobStatus.STARTED:
        return "running"
    return "waiting"
