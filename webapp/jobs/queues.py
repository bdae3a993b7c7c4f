"""RQ queues and the application context jobs run in.

Three queues (docs/operations.md): `engines` holds the long-lived engine-host jobs,
`default` the short ones (lead imports, connection checks, report roll-ups), `webhooks` the
webhook deliveries (webapp/webhooks/delivery.py), with a worker of its own so that a slow
receiver delays no other job and no other job delays a delivery. In Redis each is named
with the deployment's prefix: `<prefix>engines`, `<prefix>default`, `<prefix>webhooks`.
A job function takes ids, not objects, and does its work inside `job_context()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue

from webapp import bus

__all__ = ["DEFAULT", "ENGINES", "QUEUES", "WEBHOOKS", "job_context", "queue", "queue_on"]

ENGINES, DEFAULT, WEBHOOKS = "engines", "default", "webhooks"
#: Every queue: engine hosts; short jobs; webhook deliveries, apart so that a slow receiver
#: delays nothing else (webapp/webhooks/delivery.py).
QUEUES = (ENGINES, DEFAULT, WEBHOOKS)

_worker_app: Flask | None = None


def queue_on(name: str, connection: Redis, prefix: str) -> Queue:
    """The named queue on this Redis, for a deployment's key prefix (no app needed)."""
    return Queue(f"{prefix}{name}", connection=connection)


def queue(name: str = DEFAULT) -> Queue:
    """The named queue on the portal's Redis (inside an app context)."""
    connection = bus.client()
    if connection is None:
        raise RuntimeError("background jobs need Redis: set AUTOCALL_REDIS_URL")
    return queue_on(name, connection, current_app.extensions["autocall.config"].redis_prefix)


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
