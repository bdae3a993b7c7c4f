"""The sign-in throttle. Every attempt is counted BEFORE its password is checked, in one
atomic step (a Lua script in Redis, so every web process sees the same counts): parallel
requests cannot all pass a check that the first ones have not counted yet.

Two counters, and neither belongs to an email address alone:

- an email address *from one client address* (`login:pair:<sha256>`; the address itself is
  never stored): AUTOCALL_LOGIN_ATTEMPTS attempts;
- a client address (`login:ip:<address>`, IPv6 by its /64) for all email addresses together:
  AUTOCALL_LOGIN_ATTEMPTS_PER_IP attempts.

Past its limit a counter backs off rather than locking out: it refuses sign-ins for a pause
of FIRST_PAUSE seconds that doubles with each further attempt, up to
AUTOCALL_LOGIN_WINDOW_SECONDS; a counter is forgotten that long after its last attempt (and
pause). Someone failing on a person's email address from elsewhere never keeps that person
out; a correct password forgets the pair's attempts and gives back the one counted on the
client address, so colleagues behind one office address do not add up.

Without AUTOCALL_REDIS_URL (a `flask` command run by hand) the counts live in the process.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time

import redis
from flask import Flask, current_app

#: The first pause after a counter's limit, in seconds; each further attempt doubles it.
FIRST_PAUSE = 60

#: KEYS: counters; ARGV: now, window, first pause, gate (1: count nothing while a pause
#: lasts), then each counter's limit. Returns 0 when counted, else the seconds to wait.
_TAKE = """
local now, window, first = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] == '1' then
  local wait = 0
  for _, key in ipairs(KEYS) do
    wait = math.max(wait, tonumber(redis.call('HGET', key, 'until') or '0') - now)
  end
  if wait > 0 then return math.ceil(wait) end
end
for i, key in ipairs(KEYS) do
  local over = redis.call('HINCRBY', key, 'n', 1) - tonumber(ARGV[4 + i])
  local ttl = window
  if over >= 0 then
    local pause = math.min(window, first * 2 ^ over)
    redis.call('HSET', key, 'until', tostring(now + pause))
    ttl = window + math.ceil(pause)
  end
  redis.call('EXPIRE', key, ttl)
end
return 0
"""

#: KEYS[1]: a counter that counted an attempt which turned out right: one attempt less, and
#: no pause (a pause this attempt started; an older one had ended, or it would not have run).
_GIVE_BACK = """
if redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'until')
end
return 0
"""


class _RedisCounters:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)  # connects on first command
        self._take = self._redis.register_script(_TAKE)
        self._give_back = self._redis.register_script(_GIVE_BACK)

    def take(self, limits: dict[str, int], now: float, window: int, gate: bool) -> int:
        args = [repr(now), window, FIRST_PAUSE, int(gate), *limits.values()]
        return int(self._take(keys=list(limits), args=args))

    def wait(self, keys: list[str], now: float) -> int:
        ends = [float(self._redis.hget(key, "until") or 0) for key in keys]
        return max(0, math.ceil(max(ends) - now))

    def give_back(self, key: str) -> None:
        self._give_back(keys=[key])

    def forget(self, key: str) -> None:
        self._redis.delete(key)


class _MemoryCounters:
    """The same counters in this process: key -> [attempts, pause ends, forgotten at]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, list[float]] = {}

    def _get(self, key: str, now: float) -> list[float]:
        counter = self._counters.get(key)
        if counter is None or counter[2] <= now:
            counter = self._counters[key] = [0, 0.0, now]
        return counter

    def _pause_end(self, key: str, now: float) -> float:
        counter = self._counters.get(key)
        return counter[1] if counter is not None and counter[2] > now else 0.0

    def take(self, limits: dict[str, int], now: float, window: int, gate: bool) -> int:
        with self._lock:
            if gate:
                wait = max(self._pause_end(key, now) for key in limits) - now
                if wait > 0:
                    return math.ceil(wait)
            for key, limit in limits.items():
                counter = self._get(key, now)
                counter[0] += 1
                counter[2] = now + window
                over = counter[0] - limit
                if over >= 0:
                    pause = min(window, FIRST_PAUSE * 2**over)
                    counter[1] = now + pause
                    counter[2] = now + window + math.ceil(pause)
            return 0

    def wait(self, keys: list[str], now: float) -> int:
        with self._lock:
            return max(0, math.ceil(max(self._pause_end(key, now) for key in keys) - now))

    def give_back(self, key: str) -> None:
        with self._lock:
            counter = self._counters.get(key)
            if counter is not None:
                counter[0] -= 1
                counter[1] = 0.0
                if counter[0] <= 0:
                    del self._counters[key]

    def forget(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)


def client_key(ip: str) -> str:
    """The client address as counted: an IPv6 client by its /64 (one customer's line
    usually has a whole /64, so each of its addresses must not get a limit of its own)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class LoginThrottle:
    def __init__(
        self,
        counters,
        per_pair: int,
        per_ip: int,
        window: int,
        prefix: str = "ac:",
        clock=time.time,
    ) -> None:
        self.counters = counters
        self.prefix = prefix + "login:"
        self.per_pair = per_pair
        self.per_ip = per_ip
        self.window = window
        self.clock = clock

    def _pair_key(self, email: str, ip: str) -> str:
        # Hashed: Redis never holds the email address itself.
        pair = f"{email}\n{client_key(ip)}".encode()
        return self.prefix + "pair:" + hashlib.sha256(pair).hexdigest()[:32]

    def _ip_key(self, ip: str) -> str:
        return self.prefix + "ip:" + client_key(ip)

    def _limits(self, email: str | None, ip: str) -> dict[str, int]:
        limits = {self._ip_key(ip): self.per_ip}
        if email is not None:
            limits = {self._pair_key(email, ip): self.per_pair, **limits}
        return limits

    def attempt(self, email: str | None, ip: str) -> int:
        """Count one sign-in attempt of `email` from `ip` before it is checked: 0, it is
        counted and may go ahead; else the seconds to wait, and nothing was counted.
        Without an email (a single sign-on that has not named one yet) only `ip` counts."""
        return self.counters.take(self._limits(email, ip), self.clock(), self.window, gate=True)

    def wait(self, email: str | None, ip: str) -> int:
        """The seconds sign-ins of `email` from `ip` must wait now (0: none); counts nothing."""
        return self.counters.wait(list(self._limits(email, ip)), self.clock())

    def failed(self, email: str, ip: str) -> None:
        """Count a failure of `email` from `ip` whose attempt was counted on `ip` alone,
        before the email was known (single sign-on learns it from the provider)."""
        limits = {self._pair_key(email, ip): self.per_pair}
        self.counters.take(limits, self.clock(), self.window, gate=False)

    def succeeded(self, email: str, ip: str) -> None:
        """The attempt counted for `email` from `ip` was right: forget the pair's attempts
        and give back the one counted on the client address."""
        self.counters.forget(self._pair_key(email, ip))
        self.counters.give_back(self._ip_key(ip))


def init_app(app: Flask) -> None:
    config = app.extensions["autocall.config"]
    counters = _RedisCounters(config.redis_url) if config.redis_url else _MemoryCounters()
    app.extensions["autocall.login_throttle"] = LoginThrottle(
        counters,
        config.login_attempts,
        config.login_attempts_per_ip,
        config.login_window_seconds,
        prefix=config.redis_prefix,
    )


def login_throttle() -> LoginThrottle:
    return current_app.extensions["autocall.login_throttle"]
