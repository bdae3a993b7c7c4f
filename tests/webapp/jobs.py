"""Helpers for tests of jobs the portal starts: a real RQ worker in burst mode on the real
Redis, and a listener on a tenant's wake channel (what its engine hears)."""

from __future__ import annotations

import json

import redis
from rq import Queue, SimpleWorker

from tests.conftest import REDIS_PREFIX, REDIS_URL


def run_jobs(app, with_scheduler: bool = False) -> None:
    """Run every job queued on the portal's short queues (`default`, `webhooks`), then return
    (burst mode); `with_scheduler`: first enqueue the scheduled jobs that are due (retries).
    The worker runs in this process, inside the app's context: jobs use the test's app."""
    from webapp.jobs.queues import DEFAULT, WEBHOOKS, queue

    with app.app_context():
        short = [queue(DEFAULT), queue(WEBHOOKS)]
        SimpleWorker(short, connection=short[0].connection).work(
            burst=True, with_scheduler=with_scheduler
        )


def emptied(queue: Queue) -> Queue:
    """The queue without the jobs earlier tests of the session left in it, waiting or
    scheduled (RQ's keys do not start with the session's prefix: nobody else cleans them)."""
    queue.empty()
    registry = queue.scheduled_job_registry
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)
    return queue


class Wakes:
    """Subscribed to a tenant's wake channel; `types()` lists what arrived so far."""

    def __init__(self, tenant_id: int) -> None:
        self.client = redis.Redis.from_url(REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(f"{REDIS_PREFIX}t:{tenant_id}:wake")
        self.pubsub.get_message(timeout=1.0)  # the subscription's confirmation

    def types(self) -> list[str]:
        seen = []
        while (message := self.pubsub.get_message(timeout=0.2)) is not None:
            seen.append(json.loads(message["data"])["type"])
        return seen

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()
