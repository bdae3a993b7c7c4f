"""An engine host: one asyncio loop that runs the engines of the tenants it holds leases for.

Every `LEASE_TICK` the host renews its leases (`t:{id}:lease`, a Redis string with the host's
id, PX `lease_ms`), takes leases of tenants that want an engine and have none (`SET NX PX`)
up to its capacity, and starts a `TenantEngine` for each. Which tenants want an engine is
read from the database by a task of its own, so a stalled database never holds up the
renewals. A lease it cannot renew (another host holds it now) stops that engine at once: it
ends its calls within a second; the host waits for it `END_WAIT` seconds, then cancels it, and
starts no engine for that tenant again until the old one has ended. A lease that vanished
(Redis restarted) is simply taken again. The lease says who should run a tenant; the fencing
token each engine takes at its start (engine/dialer.py) is what stops one that missed it.
Wake messages of the held tenants arrive on one pub/sub connection and are handed to their
engines.

`stop()` (SIGTERM through the worker) drains: no new calls, the calls in flight end, the
leases are released, `run()` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from engine import metrics
from engine.bus import BadEvent, TenantKeys, hosts_key, parse_event
from engine.dialer import TenantEngine
from engine.sip.locate import Locator
from engine.store import Store

log = logging.getLogger(__name__)

LEASE_TICK = 1.0
#: Seconds the host waits for an engine it stopped (lease lost) before it cancels it, and
#: again after cancelling it.
END_WAIT = 3.0
#: Seconds a draining host waits for its engines to end their calls before cancelling them.
DRAIN_WAIT = 30.0
#: Threads (and database connections) for the engines' database work: one stalled tenant
#: does not stop the others of the host.
DATABASE_THREADS = 4
MAX_REDIS_CONNECTIONS = 200
#: The collector's young-generation threshold in an engine host (Python's default: 700).
#: A call's objects live for milliseconds; collecting the young less often lets most of
#: them die first instead of being promoted toward the full passes (docs/sip.md, Under load).
GC_YOUNG_THRESHOLD = 10_000

# KEYS: lease. ARGV: host id, lease ms. 1: held (renewed, or taken again after it vanished);
# 0: another host holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def tune_collector() -> None:
    """Once per process: move what exists at start (modules, settings, pools) out of the
    collector's sight (gc.freeze), so that its full passes walk only what calls create, and
    collect young objects less often."""
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def new_host_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"


class EngineHost:
    def __init__(
        self,
        store: Store,
        redis_url: str,
        prefix: str,
        *,
        capacity: int = 50,
        lease_ms: int = 5000,
        host_id: str | None = None,
        **engine_options,
    ):
        self.store = store
        self.redis_url = redis_url
        self.prefix = prefix
        self.capacity = capacity
        self.lease_ms = lease_ms
        self.host_id = host_id or new_host_id()
        # One DNS cache for every engine of the host (RFC 3263 look-ups: engine/sip/locate.py).
        engine_options.setdefault("locator", Locator())
        self.engine_options = engine_options
        self.engines: dict[int, TenantEngine] = {}
        self.tasks: dict[int, asyncio.Task] = {}
        #: Engines stopped for a lost lease that have not ended yet: no new engine for them.
        self.ending: dict[int, asyncio.Task] = {}
        self.wanted: list[int] | None = None  # tenants that want an engine, as last read
        self._enders: set[asyncio.Task] = set()
        self.draining = asyncio.Event()
        self._channels: dict[bytes, int] = {}  # wake channel -> tenant
        self._subscribe = asyncio.Event()  # the set of channels changed
        self._executor = ThreadPoolExecutor(DATABASE_THREADS, thread_name_prefix="engine-db")
        self.metrics = metrics.Tally()  # what the host's engines counted since the last tick

    def stop(self) -> None:
        """Drain: start no new call, let calls in flight end, release leases, return."""
        self.draining.set()

    async def database(self, function, *args):
        """Run a store call in the host's database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def run(self, lifetime: float | None = None) -> None:
        # Calls of all the host's tenants share one pool; when every connection is busy a
        # call waits for one (redis-py's default pool would fail at 100).
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                self.redis_url, max_connections=MAX_REDIS_CONNECTIONS, timeout=10
            )
        )
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self.pubsub = self.redis.pubsub()
        listener = asyncio.ensure_future(self._listen())
        watcher = asyncio.ensure_future(self._watch_tenants())
        tune_collector()
        ends_at = None if lifetime is None else time.monotonic() + lifetime
        log.info("engine host %s: started (capacity %d)", self.host_id, self.capacity)
        try:
            while not self.draining.is_set():
                try:
                    await self._keep_leases()
                except RedisError as error:
                    log.warning("engine host %s: Redis: %s", self.host_id, error)
                if ends_at is not None and time.monotonic() >= ends_at:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LEASE_TICK):
                        await self.draining.wait()
            await self._drain()
            with contextlib.suppress(RedisError):
                await self._publish_metrics(final=True)
        finally:
            for task in (listener, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError):
                    await task
            running = [*self.tasks.values(), *self.ending.values()]
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running, timeout=END_WAIT)
            with contextlib.suppress(RedisError):
                await self.redis.zrem(hosts_key(self.prefix), self.host_id)
            with contextlib.suppress(RedisError):
                await self.pubsub.aclose()
            await self.redis.aclose()
            self._executor.shutdown(wait=True)
            log.info("engine host %s: stopped", self.host_id)

    async def _keep_leases(self) -> None:
        await self.redis.zadd(hosts_key(self.prefix), {self.host_id: time.time()})
        for tenant_id, task in list(self.tasks.items()):
            if task.done():
                await self._forget(tenant_id)
                continue
            held = await self._renew(
                keys=[self._keys(tenant_id).lease], args=[self.host_id, self.lease_ms]
            )
            if not held:  # another host took it over: stop at once
                log.warning("engine host %s: lost tenant %s", self.host_id, tenant_id)
                self.engines[tenant_id].stop("lease lost")
                self.ending[tenant_id] = task
                ender = asyncio.ensure_future(self._end(tenant_id, task))
                self._enders.add(ender)
                ender.add_done_callback(self._enders.discard)
                await self._forget(tenant_id, release=False)
        if self.wanted is None:  # not read yet
            return
        wanted = self.wanted
        for tenant_id in wanted:
            if len(self.tasks) >= self.capacity:
                break
            if tenant_id in self.tasks or tenant_id in self.ending:
                continue
            lease = self._keys(tenant_id).lease
            if await self.redis.set(lease, self.host_id, nx=True, px=self.lease_ms):
                self._start(tenant_id)
        for tenant_id in set(self.tasks) - set(wanted):
            self.engines[tenant_id].wake("settings")  # it reloads, sees dialing off, stops
        await self._publish_metrics()

    async def _watch_tenants(self) -> None:
        """Which tenants want an engine, read every LEASE_TICK in the database thread; apart
        from the lease loop, which a stalled database must not hold up."""
        while True:
            try:
                self.wanted = await self.database(self.store.tenants_to_dial)
            except Exception:
                log.exception("engine host %s: cannot read the tenants to dial", self.host_id)
            await asyncio.sleep(LEASE_TICK)

    async def _end(self, tenant_id: int, task: asyncio.Task) -> None:
        """Wait for an engine stopped for a lost lease: END_WAIT, then cancel it and wait
        again. Until it has ended, this host starts no engine for the tenant."""
        try:
            await asyncio.wait([task], timeout=END_WAIT)
            if not task.done():
                log.error(
                    "engine host %s: tenant %s engine did not stop; cancelling it",
                    self.host_id,
                    tenant_id,
                )
                task.cancel()
                await asyncio.wait([task], timeout=END_WAIT)
            if not task.done():
                log.error(
                    "engine host %s: tenant %s engine ignores cancellation", self.host_id, tenant_id
                )
                await asyncio.wait([task])
        finally:
            if self.ending.get(tenant_id) is task:
                del self.ending[tenant_id]

    async def _publish_metrics(self, final: bool = False) -> None:
        """Add what the engines counted to the deployment's counters, and replace this
        host's gauges (calls in flight per tenant, tenants held); engine/metrics.py."""
        for engine in self.engines.values():
            engine.count_sip()
        pending = self.metrics.take()
        gauges: dict[str, float] = (
            {}
            if final
            else {
                metrics.field_of(
                    metrics.CALLS_IN_FLIGHT, {"tenant": str(tenant_id)}
                ): engine.in_flight
                for tenant_id, engine in self.engines.items()
            }
        )
        if not final:
            gauges[metrics.field_of(metrics.TENANTS_HELD, {"host": self.host_id})] = len(
                self.engines
            )
        pipe = self.redis.pipeline(transaction=False)
        metrics.queue_flush(pipe, self.prefix, pending)
        metrics.queue_host_gauges(pipe, self.prefix, self.host_id, gauges)
        try:
            await pipe.execute()
        except RedisError:
            self.metrics.give_back(pending)
            raise

    def _keys(self, tenant_id: int) -> TenantKeys:
        return TenantKeys(self.prefix, tenant_id)

    def _start(self, tenant_id: int) -> None:
        # Each engine run has an id of its own: the attempts it opens carry it, and an
        # engine starting for the tenant closes every open attempt that is not its own.
        engine_id = f"{self.host_id}/{secrets.token_hex(3)}"
        engine = TenantEngine(
            tenant_id,
            store=self.store,
            redis=self.redis,
            prefix=self.prefix,
            engine_id=engine_id,
            database=self.database,
            metrics=self.metrics,
            **self.engine_options,
        )
        self.engines[tenant_id] = engine
        self.tasks[tenant_id] = asyncio.ensure_future(engine.run())
        self._channels[self._keys(tenant_id).wake.encode()] = tenant_id
        self._subscribe.set()
        log.info("engine host %s: runs tenant %s", self.host_id, tenant_id)

    async def _forget(self, tenant_id: int, release: bool = True) -> None:
        task = self.tasks.pop(tenant_id)
        self.engines.pop(tenant_id, None)
        self._channels.pop(self._keys(tenant_id).wake.encode(), None)
        self._subscribe.set()
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error(
                "engine host %s: tenant %s engine failed",
                self.host_id,
                tenant_id,
                exc_info=task.exception(),
            )
        if release:
            with contextlib.suppress(RedisError):
                await self._release(keys=[self._keys(tenant_id).lease], args=[self.host_id])

    async def _drain(self) -> None:
        for engine in self.engines.values():
            engine.stop("the host drains")
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=DRAIN_WAIT)
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=END_WAIT)
        for tenant_id in list(self.tasks):
            await self._forget(tenant_id)

    # --- wake messages ----------------------------------------------------------------------

    async def _listen(self) -> None:
        """Deliver wake messages to engines; resubscribe after Redis comes back."""
        subscribed: set[bytes] = set()
        while True:
            try:
                wanted = set(self._channels)
                if wanted - subscribed:
                    await self.pubsub.subscribe(*(wanted - subscribed))
                if subscribed - wanted:
                    await self.pubsub.unsubscribe(*(subscribed - wanted))
                subscribed = wanted
                self._subscribe.clear()
                if not subscribed:
                    await self._subscribe.wait()
                    continue
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is None or message["type"] != "message":
                    continue
                tenant_id = self._channels.get(message["channel"])
                engine = None if tenant_id is None else self.engines.get(tenant_id)
                if engine is None:
                    continue
                try:
                    engine.wake(parse_event(message["data"])["type"])
                except BadEvent as error:
                    log.warning("tenant %s: ignored a wake message: %s", tenant_id, error)
            except RedisError as error:
                log.warning("engine host %s: pub/sub: %s; reconnecting", self.host_id, error)
                subscribed = set()
                with contextlib.suppress(RedisError):
                    await self.pubsub.aclose()
                self.pubsub = self.redis.pubsub()
                await asyncio.sleep(0.5)
