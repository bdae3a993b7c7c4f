"""RQ entry points, thin: they read the deployment's configuration and call into the engine.

- `run_engine_host` is the long-lived job of the `engines` queue (engine/host.py);
- `ensure_hosts` runs every few seconds (RQ's cron scheduler) and enqueues engine hosts
  when the tenants that want an engine need more than are alive or waiting; the same
  scheduler runs the portal's periodic jobs (webhook deliveries whose job was lost, on the
  `webhooks` queue; the reports' roll-up: webapp/reports/rollup.py);
- `EngineWorker` is RQ's worker, except that a warm shutdown (the first SIGTERM or Ctrl-C)
  is passed on to the engine host running in its work horse, which then drains: no new
  calls, calls in flight end, leases released. A second signal is RQ's cold shutdown.

`python -m engine.jobs engines|default|webhooks|cron` runs one worker process of each kind;
`autocall worker` starts them together (webapp/launcher.py).

This module is the one place of `engine/` that reads the web side's configuration and
database code: the engine itself never imports Flask.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from redis import Redis
from rq import Queue, Worker

from engine import logs
from engine.bus import hosts_key
from engine.host import EngineHost

log = logging.getLogger(__name__)

ENGINES, DEFAULT, WEBHOOKS = "engines", "default", "webhooks"
#: Every queue: engine hosts; short jobs; webhook deliveries, apart so that a slow receiver
#: delays nothing else (webapp/webhooks/delivery.py).
QUEUES = (ENGINES, DEFAULT, WEBHOOKS)
#: Seconds between `ensure_hosts` runs, and the heartbeat age after which a host is gone.
ENSURE_EVERY = 5
HOST_GONE_AFTER = 5.0


def _config():
    from webapp.config import Config

    return Config.from_env()


def _store(config):
    from webapp.services.dialing import DialingStore
    from webapp.services.secrets import SecretBox

    webhooks = queue(WEBHOOKS, Redis.from_url(config.redis_url), config.redis_prefix)
    return DialingStore(config.database_url, SecretBox(config.encryption_key), webhooks)


def queue(name: str, connection: Redis, prefix: str) -> Queue:
    return Queue(f"{prefix}{name}", connection=connection)


def run_engine_host(capacity: int | None = None, lifetime: float | None = None) -> str:
    """The engine-host job: runs until drained by SIGTERM (or `lifetime` seconds)."""
    config = _config()
    store = _store(config)
    from webapp.addresses import is_public

    host = EngineHost(store, config.redis_url, config.redis_prefix,
                      capacity=capacity or config.engine_capacity,
                      local_host=config.engine_bind,
                      target_allowed=None if config.sip_private_allowed else is_public)  # fmt: skip

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, host.stop)
        await host.run(lifetime)

    try:
        asyncio.run(main())
    finally:
        store.close()
    return f"engine host {host.host_id} stopped"


def ensure_hosts() -> int:
    """Enqueue engine hosts so that every tenant that wants an engine can get one, plus one
    spare for a quick take-over. Returns how many it enqueued."""
    config = _config()
    connection = Redis.from_url(config.redis_url)
    try:
        # One run at a time across machines.
        if not connection.set(f"{config.redis_prefix}ensure-hosts", 1, nx=True, ex=ENSURE_EVERY):
            return 0
        store = _store(config)
        try:
            tenants = len(store.tenants_to_dial())
        finally:
            store.close()
        needed = -(-tenants // config.engine_capacity) + 1 if tenants else 0
        alive = connection.zcount(hosts_key(config.redis_prefix), time.time() - HOST_GONE_AFTER,
                                  "+inf")  # fmt: skip
        engines = queue(ENGINES, connection, config.redis_prefix)
        missing = needed - alive - engines.count
        for _ in range(max(0, missing)):
            engines.enqueue(run_engine_host, job_timeout=-1, result_ttl=3600,
                            failure_ttl=86400)  # fmt: skip
        return max(0, missing)
    finally:
        connection.close()


class EngineWorker(Worker):
    """An RQ worker whose warm shutdown lets the engine host in its work horse drain."""

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            log.info("passing the shutdown on to the engine host (pid %s)", self.horse_pid)
            self.kill_horse(sig=signal.SIGTERM)


def _check_database_role(config) -> None:
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
    from webapp.config import ConfigError

    kind = (argv or sys.argv[1:] or [""])[0]
    config = _config()
    logs.configure(config.logs)
    if not config.redis_url:
        print("engine.jobs: AUTOCALL_REDIS_URL is not set", file=sys.stderr)
        return 2
    if config.env == "production":
        try:
            _check_database_role(config)
        except ConfigError as error:
            print(f"engine.jobs: {error}", file=sys.stderr)
            return 2
    connection = Redis.from_url(config.redis_url)
    if kind == ENGINES:
        EngineWorker([queue(ENGINES, connection, config.redis_prefix)],
                     connection=connection).work()  # fmt: skip
    elif kind in (DEFAULT, WEBHOOKS):
        Worker([queue(kind, connection, config.redis_prefix)],
               connection=connection).work(with_scheduler=True)  # fmt: skip
    elif kind == "cron":
        from rq.cron import CronScheduler

        from engine import jobs  # by its module name: `python -m` runs this as __main__
        from webapp.reports import rollup
        from webapp.webhooks import delivery

        cron = CronScheduler(connection=connection)
        cron.register(jobs.ensure_hosts, f"{config.redis_prefix}{DEFAULT}", interval=ENSURE_EVERY)
        # Webhook deliveries whose job was lost (Redis away or restarted, a worker killed):
        # enqueued again, on their own queue.
        cron.register(delivery.sweep, f"{config.redis_prefix}{WEBHOOKS}", interval=60)
        # The reports' roll-ups and operators' sessions (webapp/reports/rollup.py).
        cron.register(rollup.roll_up_reports, f"{config.redis_prefix}{DEFAULT}",
                      interval=rollup.EVERY, job_timeout=600)  # fmt: skip
        cron.start()
    else:
        print("usage: python -m engine.jobs engines|default|webhooks|cron", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
