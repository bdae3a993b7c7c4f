"""RQ queues and the application context jobs run in.

Three queues (docs/operations.md): `engines` holds the long-lived engine-host jobs,
`default` the short ones (lead imports, connection checks, report roll-ups), `webhooks` the
webhook deliveries (webapp/webhooks/delivery.py), with a worker of its own so that a slow
receiver delays no other job and no other job delays a delivery.
A job function takes ids, not objects, and does its work inside `job_context()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context
from rq import Queue

from engine import jobs
from engine.jobs import DEFAULT, ENGINES, QUEUES, WEBHOOKS
from webapp import bus

__all__ = ["DEFAULT", "ENGINES", "QUEUES", "WEBHOOKS", "job_context", "queue"]

_worker_app: Flask | None = None


def queue(name: str = DEFAULT) -> Queue:
    """The named queue on the portal's Redis (inside an app context)."""
    connection = bus.client()
    if connection is None:
        raise RuntimeError("background jobs need Redis: set AUTOCALL_REDIS_URL")
    return jobs.queue(name, connection, current_app.extensions["autocall.config"].redis_prefix)


@contextmanager
def job_context() -> Iterator[Flask]:
    """The app a job works with: the current one when there is one (a test running the
    job in its own process), else one built from the environment, once per worker."""
    global _worker_app
    if has_app_context():
        yield current_app._get_current_object()
        return
    if _worker_app is None:
        from webapp import create_app

        _worker_app = create_app()
    with _worker_app.app_context():
        yield _worker_app
