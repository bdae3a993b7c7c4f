"""The engine hosts' jobs, thin: they read the deployment's configuration and call into the
engine (engine/host.py), which imports nothing of `webapp`.

- `run_engine_host` is the long-lived job of the `engines` queue: one engine host, given
  the engine's database store (webapp/services/dialing.py), the `webhooks` queue it
  announces deliveries on, and, in production, the public-address rule for SIP targets
  (webapp/addresses.py);
- `ensure_hosts` runs every few seconds (the cron scheduler: schedule.py) and enqueues
  engine hosts when the tenants that want an engine need more than are alive or waiting.
"""

from __future__ import annotations

import asyncio
import signal
import time

from redis import Redis

from engine.bus import HOST_GONE_AFTER, hosts_key
from engine.host import EngineHost
from webapp.addresses import is_public
from webapp.config import Config
from webapp.jobs.queues import ENGINES, WEBHOOKS, queue_on
from webapp.services.dialing import DialingStore
from webapp.services.secrets import SecretBox

#: Seconds between `ensure_hosts` runs.
ENSURE_EVERY = 5


def dialing_store(config: Config) -> DialingStore:
    """The engine's database store, announcing webhook deliveries on the `webhooks` queue."""
    webhooks = queue_on(WEBHOOKS, Redis.from_url(config.redis_url), config.redis_prefix)
    return DialingStore(config.database_url, SecretBox(config.encryption_key), webhooks)


def run_engine_host(capacity: int | None = None, lifetime: float | None = None) -> str:
    """The engine-host job: runs until drained by SIGTERM (or `lifetime` seconds)."""
    config = Config.from_env()
    store = dialing_store(config)
    host = EngineHost(
        store,
        config.redis_url,
        config.redis_prefix,
        capacity=capacity or config.engine_capacity,
        local_host=config.engine_bind.strip(),
        sip_ports=config.sip_port_range,
        public_addresses=config.sip_public_addresses,
        target_allowed=None if config.sip_private_allowed else is_public,
    )

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
    config = Config.from_env()
    connection = Redis.from_url(config.redis_url)
    try:
        # One run at a time across machines.
        if not connection.set(f"{config.redis_prefix}ensure-hosts", 1, nx=True, ex=ENSURE_EVERY):
            return 0
        store = dialing_store(config)
        try:
            tenants = len(store.tenants_to_dial())
        finally:
            store.close()
        needed = -(-tenants // config.engine_capacity) + 1 if tenants else 0
        alive = connection.zcount(
            hosts_key(config.redis_prefix), time.time() - HOST_GONE_AFTER, "+inf"
        )
        engines = queue_on(ENGINES, connection, config.redis_prefix)
        missing = needed - alive - engines.count
        for _ in range(max(0, missing)):
            engines.enqueue(run_engine_host, job_timeout=-1, result_ttl=3600, failure_ttl=86400)
        return max(0, missing)
    finally:
        connection.close()
