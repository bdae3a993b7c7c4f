"""Rate limits on sign-in: failed attempts are counted per email address and per client
address in Redis, in a fixed window, so every web process sees the same counts.

Without AUTOCALL_REDIS_URL (a `flask` command run by hand) the counts live in the process.
"""

from __future__ import annotations

import hashlib
import threading
import time

import redis
from flask import Flask, current_app


class _MemoryCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def get(self, key: str) -> int:
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            return count if expires > time.monotonic() else 0

    def incr(self, key: str, window: int) -> int:
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            now = time.monotonic()
            if expires <= now:
                count, expires = 0, now + window
            self._counts[key] = (count + 1, expires)
            return count + 1

    def delete(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


class _RedisCounter:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url)  # connects on first command

    def get(self, key: str) -> int:
        return int(self._redis.get(key) or 0)

    def incr(self, key: str, window: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def delete(self, key: str) -> None:
        self._redis.delete(key)


class LoginThrottle:
    def __init__(
        self, counter, per_email: int, per_ip: int, window: int, prefix: str = "ac:"
    ) -> None:
        self.counter = counter
        self.prefix = prefix + "login:"
        self.per_email = per_email
        self.per_ip = per_ip
        self.window = window

    def _email_key(self, email: str) -> str:
        # Hashed: Redis never holds the address itself.
        return self.prefix + "email:" + hashlib.sha256(email.encode()).hexdigest()[:32]

    def _ip_key(self, ip: str) -> str:
        return self.prefix + "ip:" + ip

    def blocked(self, email: str | None, ip: str) -> bool:
        """Whether sign-ins are refused now; without an email (a single sign-on that has
        not named one yet) only the client address counts."""
        return (
            email is not None and self.counter.get(self._email_key(email)) >= self.per_email
        ) or self.counter.get(self._ip_key(ip)) >= self.per_ip

    def failed(self, email: str | None, ip: str) -> None:
        if email is not None:
            self.counter.incr(self._email_key(email), self.window)
        self.counter.incr(self._ip_key(ip), self.window)

    def succeeded(self, email: str) -> None:
        self.counter.delete(self._email_key(email))


def init_app(app: Flask) -> None:
    config = app.extensions["autocall.config"]
    counter = _RedisCounter(config.redis_url) if config.redis_url else _MemoryCounter()
    app.extensions["autocall.login_throttle"] = LoginThrottle(
        counter,
        config.login_attempts,
        config.login_attempts_per_ip,
        config.login_window_seconds,
        prefix=config.redis_prefix,
    )


def login_throttle() -> LoginThrottle:
    return current_app.extensions["autocall.login_throttle"]
