"""The cron scheduler's registrations: what runs every few seconds or minutes, on which
queue (the `cron` worker process: worker.py)."""

from __future__ import annotations

import signal

from redis import Redis
from rq.cron import CronScheduler

from webapp.jobs.engines import ENSURE_EVERY, ensure_hosts
from webapp.jobs.queues import DEFAULT, WEBHOOKS
from webapp.services import rollup
from webapp.webhooks import delivery


class Scheduler(CronScheduler):
    """RQ's cron scheduler, stopped once by the first stop signal: Ctrl-C reaches the whole
    process group and `autocall run` then sends its children SIGTERM, and RQ's handler,
    raised again while the scheduler says goodbye, broke its clean-up with a traceback."""

    def _request_stop(self, signum, frame):
        for stop in (signal.SIGINT, signal.SIGTERM):  # from now on heard, and let be
            signal.signal(stop, _already_stopping)
        super()._request_stop(signum, frame)


def _already_stopping(signum, frame) -> None:
    """A stop signal after the first: the scheduler is stopping already."""


def scheduler(connection: Redis, prefix: str) -> CronScheduler:
    """RQ's cron scheduler with every periodic job of the service registered."""
    cron = Scheduler(connection=connection)
    # Engine hosts enough for the tenants that want an engine (engines.py).
    cron.register(ensure_hosts, f"{prefix}{DEFAULT}", interval=ENSURE_EVERY)
    # Webhook deliveries whose job was lost (Redis away or restarted, a worker killed):
    # enqueued again, on their own queue.
    cron.register(delivery.sweep, f"{prefix}{WEBHOOKS}", interval=60)
    # The reports' roll-ups and operators' sessions (webapp/services/rollup.py).
    cron.register(
        rollup.roll_up_reports, f"{prefix}{DEFAULT}", interval=rollup.EVERY, job_timeout=600
    )
    return cron
