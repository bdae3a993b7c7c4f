"""The worker processes: `python -m webapp.jobs engines|default|webhooks|cron` runs one of
each kind (`autocall worker` starts them together: webapp/launcher.py).

`EngineWorker` is RQ's worker, except that a warm shutdown (the first SIGTERM or Ctrl-C)
is passed on to the engine host running in its work horse, which then drains: no new
calls, calls in flight end, leases released. A second signal is RQ's cold shutdown.
In production every worker process first checks its database role, as the portal does.
"""

from __future__ import annotations

import logging
import signal
import sys

from redis import Redis
from rq import Worker

from engine import logs
from webapp.config import Config, ConfigError
from webapp.jobs.queues import DEFAULT, ENGINES, WEBHOOKS, queue_on

log = logging.getLogger(__name__)

USAGE = "usage: python -m webapp.jobs engines|default|webhooks|cron"


class EngineWorker(Worker):
    """An RQ worker whose warm shutdown lets the engine host in its work horse drain."""

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            log.info("passing the shutdown on to the engine host (pid %s)", self.horse_pid)
            self.kill_horse(sig=signal.SIGTERM)


def check_database_role(config: Config) -> None:
    """Production's start-up check of the database role, as the portal's (ConfigError)."""
    from sqlalchemy import create_engine

    from webapp.tenancy import check_database_role

    engine = create_engine(config.database_url)
    try:
        check_database_role(engine)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """One worker process: `engines`, `default` or `webhooks` (each with RQ's scheduler,
    which enqueues its queue's jobs when due: retries of webhooks), or `cron`."""
    kind = (argv or sys.argv[1:] or [""])[0]
    config = Config.from_env()
    logs.configure(config.logs)
    if not config.redis_url:
        print("webapp.jobs: AUTOCALL_REDIS_URL is not set", file=sys.stderr)
        return 2
    if config.env == "production":
        try:
            check_database_role(config)
        except ConfigError as error:
            print(f"webapp.jobs: {error}", file=sys.stderr)
            return 2
    connection = Redis.from_url(config.redis_url)
    if kind == ENGINES:
        EngineWorker(
            [queue_on(ENGINES, connection, config.redis_prefix)], connection=connection
        ).work()
    elif kind in (DEFAULT, WEBHOOKS):
        Worker([queue_on(kind, connection, config.redis_prefix)], connection=connection).work(
            with_scheduler=True
        )
    elif kind == "cron":
        from webapp.jobs.schedule import scheduler

        scheduler(connection, config.redis_prefix).start()
    else:
        print(USAGE, file=sys.stderr)
        return 2
    return 0
