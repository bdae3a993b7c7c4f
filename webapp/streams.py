"""Server-Sent Events streams (the operator console's `GET /console/events`): how many may
be open, and one Redis reader per web process that serves them all.

**Caps.** A stream holds a gunicorn thread for its life (webapp/gunicorn_conf.py), so
streams are counted, three ways:

- per person (`AUTOCALL_STREAMS_PER_USER`, 3) and per tenant (`AUTOCALL_STREAMS_PER_TENANT`)
  across every web process: an open stream holds a lease in two Redis sorted sets (member:
  the stream's id; score: when the lease ends), renewed with each keep-alive and removed when
  the stream ends. A process that dies leaves leases that end within `LEASE_SECONDS` and
  then count no more. Over either cap the stream is refused with 429.
- per process (`AUTOCALL_WEB_STREAMS`): gunicorn gives each worker that many threads for
  streams and more for pages, so open consoles never take the threads a sign-in page needs.
  Over it: 503, and the console tries again (another process, behind a load balancer).

**The reader.** A waiting stream has no Redis connection of its own: one thread per web
process waits in Redis for every open stream's key at once (a single XREAD BLOCK over all
of them, from the oldest position any stream of that key needs) and hands each event to the
streams of its key, which wait on a condition variable. A new stream wakes the reader
(CLIENT UNBLOCK), so its first events are not held up by the reader's current wait. The
thread starts with the first stream and ends a minute after the last.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
import uuid
from collections import deque

import redis
from flask import current_app
from flask_babel import gettext as _
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

#: How long a lease outlives its last renewal (streams renew with every keep-alive).
LEASE_SECONDS = 60
#: The reader's longest wait in Redis (a new stream wakes it at once).
BLOCK_MS = 1000
#: Events waiting for one stream beyond which it is ended: its browser reconnects with the
#: last event's id and catches up from Redis.
MAX_PENDING = 1000
#: The reader thread ends after this many seconds without streams.
IDLE_SECONDS = 60
#: Seconds a refused console waits before it tries again (the Retry-After header).
RETRY_AFTER = {"user": 10, "tenant": 30, "process": 5}

# Takes a lease in both sets (a person's, a tenant's) when neither is full, after dropping
# the leases that ended. KEYS: the person's set, the tenant's; ARGV: now, the lease's end,
# the stream's id, the person's cap, the tenant's cap, the sets' expiry in seconds.
# Returns 0 (taken), 1 (the person's cap is reached) or 2 (the tenant's).
_TAKE = """
for i = 1, 2 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1]) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return 0
"""


class Refused(Exception):
    """A stream the portal does not open: the HTTP status, the words for the person, and the
    seconds to wait before trying again."""

    def __init__(self, status: int, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


# --- leases ----------------------------------------------------------------------------------


def lease_keys(prefix: str, tenant_id: int, user_id: int) -> tuple[str, str]:
    """The sorted sets of one person's open streams and of their tenant's."""
    return (f"{prefix}t:{tenant_id}:streams:user:{user_id}", f"{prefix}t:{tenant_id}:streams")


class Lease:
    """One open stream, counted in Redis for its person and its tenant."""

    def __init__(self, connection: redis.Redis, keys: tuple[str, str], member: str) -> None:
        self.connection = connection
        self.keys = keys
        self.member = member

    def renew(self, now: float | None = None) -> None:
        ends = (time.time() if now is None else now) + LEASE_SECONDS
        pipe = self.connection.pipeline(transaction=False)
        for key in self.keys:
            pipe.zadd(key, {self.member: ends})
            pipe.expire(key, LEASE_SECONDS)
        pipe.execute()

    def release(self) -> None:
        pipe = self.connection.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrem(key, self.member)
        pipe.execute()


def take_lease(
    connection: redis.Redis,
    keys: tuple[str, str],
    per_user: int,
    per_tenant: int,
    now: float | None = None,
) -> Lease | str:
    """A lease for a new stream, or the cap that is reached ("user" or "tenant")."""
    now = time.time() if now is None else now
    member = uuid.uuid4().hex
    answer = connection.register_script(_TAKE)(
        keys=list(keys),
        args=[now, now + LEASE_SECONDS, member, per_user, per_tenant, LEASE_SECONDS],
    )
    return {1: "user", 2: "tenant"}.get(int(answer)) or Lease(connection, keys, member)


# --- the reader ------------------------------------------------------------------------------


def _position(event_id: bytes | str) -> tuple[int, int]:
    text = event_id.decode() if isinstance(event_id, bytes) else event_id
    first, _, second = text.partition("-")
    return int(first), int(second or 0)


class Subscription:
    """One stream's place at the reader: its key, the last event handed to it, and the
    events waiting for the stream's thread."""

    def __init__(self, key: str, after: str) -> None:
        self.key = key
        self.last = _position(after)  # written by the reader thread only, once subscribed
        self.overflowed = False
        self._events: deque[tuple[str, dict]] = deque()
        self._ready = threading.Condition()

    def deliver(self, entries: list) -> None:
        """The reader hands over what XREAD returned for this key (some may be older than
        this stream's position: another stream of the key needed them)."""
        with self._ready:
            for event_id, fields in entries:
                position = _position(event_id)
                if position > self.last:
                    self.last = position
                    self._events.append((event_id.decode(), fields))
            self.overflowed = len(self._events) > MAX_PENDING
            self._ready.notify()

    def wait(self, timeout: float) -> list[tuple[str, dict]]:
        """The events that arrived, waiting up to `timeout` seconds for one."""
        with self._ready:
            if not self._events:
                self._ready.wait(max(0.0, timeout))
            events = list(self._events)
            self._events.clear()
            return events


class Hub:
    """A web process's open streams and the thread that reads Redis for all of them."""

    def __init__(self, url: str, limit: int, name: str = "autocall-streams") -> None:
        self.url = url
        self.limit = limit
        self.name = name  # the reader's client name in Redis (CLIENT LIST)
        self._lock = threading.Lock()
        self._by_key: dict[str, set[Subscription]] = {}
        self._count = 0
        self._thread: threading.Thread | None = None
        self._changed = threading.Event()
        self._reader_id: int | None = None
        #: For the streams' leases and for waking the reader: a few connections, which the
        #: streams' threads wait for rather than open one each (2,000 streams renew their
        #: leases about together after a restart).
        self.control = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                url, max_connections=20, timeout=10, socket_timeout=5
            )
        )

    @property
    def open_streams(self) -> int:
        return self._count

    def subscribe(self, key: str, after: str) -> Subscription | None:
        """A subscription to `key`'s events after `after`; None when the process holds as
        many streams as it may."""
        subscription = Subscription(key, after)
        with self._lock:
            if self._count >= self.limit:
                return None
            self._by_key.setdefault(key, set()).add(subscription)
            self._count += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-streams", daemon=True)
                self._thread.start()
            reader_id = self._reader_id
        self._changed.set()
        if reader_id is not None:
            # Without it the reader's current wait ends by itself within BLOCK_MS.
            with contextlib.suppress(redis.RedisError):
                self.control.client_unblock(reader_id)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            subscriptions = self._by_key.get(subscription.key)
            if subscriptions is None or subscription not in subscriptions:
                return
            subscriptions.discard(subscription)
            self._count -= 1
            if not subscriptions:
                del self._by_key[subscription.key]

    def _wanted(self) -> dict[str, str]:
        """Each key with the oldest position one of its streams needs."""
        with self._lock:
            return {
                key: "{}-{}".format(*min(s.last for s in subscriptions))
                for key, subscriptions in self._by_key.items()
            }

    def _run(self) -> None:
        reader: redis.Redis | None = None
        while True:
            self._changed.clear()
            wanted = self._wanted()
            if not wanted:
                reader = self._disconnect(reader)
                if self._changed.wait(IDLE_SECONDS):
                    continue
                with self._lock:
                    if not self._by_key:
                        self._thread = None
                        return
                continue
            try:
                if reader is None:
                    reader = self._connect()
                if self._changed.is_set():
                    continue  # a stream came meanwhile: read its key too
                answer = reader.xread(wanted, count=100, block=BLOCK_MS)
            except redis.RedisError as error:
                log.warning("event streams: Redis read failed (%s); trying again", error)
                reader = self._disconnect(reader)
                time.sleep(1)
                continue
            for key, entries in answer or ():
                with self._lock:
                    subscriptions = list(self._by_key.get(key.decode(), ()))
                for subscription in subscriptions:
                    subscription.deliver(entries)

    def _connect(self) -> redis.Redis:
        # One connection, no silent reconnection: CLIENT UNBLOCK needs its id to stay true.
        reader = redis.Redis.from_url(
            self.url,
            socket_timeout=BLOCK_MS / 1000 + 30,
            single_connection_client=True,
            retry=Retry(NoBackoff(), 0),
        )
        reader.client_setname(self.name)
        self._reader_id = reader.client_id()
        return reader

    def _disconnect(self, reader: redis.Redis | None) -> None:
        self._reader_id = None
        if reader is not None:
            with contextlib.suppress(redis.RedisError):
                reader.close()


def hub() -> Hub:
    """The app's hub (one per app, so one per web process)."""
    hub = current_app.extensions.get("autocall.streams")
    if hub is None:
        config = current_app.extensions["autocall.config"]
        hub = Hub(config.redis_url, config.web_streams, name=f"{config.redis_prefix}streams")
        current_app.extensions["autocall.streams"] = hub
    return hub


# --- a stream --------------------------------------------------------------------------------


class Stream:
    """One open event stream: its subscription at the hub and its lease."""

    def __init__(self, hub: Hub, subscription: Subscription, lease: Lease) -> None:
        self.hub = hub
        self.subscription = subscription
        self.lease = lease
        self._closed = False

    @property
    def overflowed(self) -> bool:
        return self.subscription.overflowed

    def wait(self, timeout: float) -> list[tuple[str, dict]]:
        return self.subscription.wait(timeout)

    def renew(self) -> None:
        try:
            self.lease.renew()
        except redis.RedisError as error:
            log.warning("event streams: could not renew a lease (%s)", error)

    def close(self) -> None:
        """Idempotent: the generator's end and the response's close both call it."""
        if self._closed:
            return
        self._closed = True
        self.hub.unsubscribe(self.subscription)
        try:
            self.lease.release()
        except redis.RedisError as error:  # the lease ends by itself within LEASE_SECONDS
            log.warning("event streams: could not release a lease (%s)", error)


def open_stream(tenant_id: int, user_id: int, key: str, after: str) -> Stream:
    """Open a stream of `key`'s events after `after` for this person, or `Refused`."""
    config = current_app.extensions["autocall.config"]
    streams = hub()
    keys = lease_keys(config.redis_prefix, tenant_id, user_id)
    lease = take_lease(streams.control, keys, config.streams_per_user, config.streams_per_tenant)
    if lease == "user":
        raise Refused(
            429,
            _(
                "You have %(count)s consoles open (tabs or browsers), as many as "
                "one person may: close one and this one connects by itself.",
                count=config.streams_per_user,
            ),
            RETRY_AFTER["user"],
        )
    if lease == "tenant":
        raise Refused(
            429,
            _(
                "Your company has %(count)s consoles open, as many as it may: "
                "this one connects by itself when another closes.",
                count=config.streams_per_tenant,
            ),
            RETRY_AFTER["tenant"],
        )
    subscription = streams.subscribe(key, after)
    if subscription is None:
        lease.release()
        raise Refused(
            503,
            _("The server is busy: the console connects again by itself in a few seconds."),
            RETRY_AFTER["process"],
        )
    return Stream(streams, subscription, lease)


def peer_gone(sock: socket.socket | None) -> bool:
    """Whether the browser has closed the connection, seen without writing to it (a closed
    tab would otherwise hold its thread and its lease until the next keep-alive fails)."""
    if sock is None or isinstance(sock, ssl.SSLSocket):
        return False
    try:
        poller = select.poll()  # poll, not select: a busy process has descriptors over 1024
        poller.register(sock.fileno(), select.POLLIN)
        if not poller.poll(0):
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True
