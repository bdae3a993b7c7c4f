"""The portal's side of the contract with the engine (engine/bus.py): a Redis client per
app, the keys of a tenant, its operators' presence, and waking its engine at once."""

from __future__ import annotations

import redis
from flask import current_app

from engine.bus import TenantKeys, event
from engine.presence import Presence

#: Connections one web process may open to Redis. A waiting event stream holds none (one
#: reader serves them all: webapp/streams.py), but a worker has 2,000 threads for streams
#: (webapp/gunicorn_conf.py), and many may open at once after a restart, each asking Redis
#: for its start: redis-py's default of 100 is too few.
MAX_CONNECTIONS = 1000


def client() -> redis.Redis | None:
    """The app's Redis client, or None when the deployment has no Redis configured."""
    return _client("autocall.redis", socket_timeout=5)


def _client(name: str, socket_timeout: float) -> redis.Redis | None:
    if name not in current_app.extensions:
        url = current_app.extensions["autocall.config"].redis_url
        current_app.extensions[name] = (
            redis.Redis.from_url(
                url, socket_timeout=socket_timeout, max_connections=MAX_CONNECTIONS
            )
            if url
            else None
        )
    return current_app.extensions[name]


def keys(tenant_id: int) -> TenantKeys:
    return TenantKeys(current_app.extensions["autocall.config"].redis_prefix, tenant_id)


def presence(tenant_id: int) -> Presence:
    connection = client()
    if connection is None:
        raise RuntimeError("operators' presence needs Redis: set AUTOCALL_REDIS_URL")
    return Presence(connection, keys(tenant_id))


def wake_engine(tenant_id: int, reason: str, **fields) -> None:
    """Tell the tenant's engine that something it acts on changed (a new lead, settings,
    the do-not-call list). Best effort: the engine also polls, so a lost message only
    delays, and the portal never fails a request because Redis is away."""
    connection = client()
    if connection is None:
        return
    try:
        connection.publish(keys(tenant_id).wake, event(reason, **fields))
    except redis.RedisError:
        current_app.logger.warning("could not wake the engine of tenant %s", tenant_id)
