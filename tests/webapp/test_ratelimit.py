import time
import uuid

import pytest

from tests.conftest import REDIS_PREFIX, REDIS_URL
from webapp.ratelimit import LoginThrottle, _MemoryCounter, _RedisCounter


@pytest.fixture(params=["redis", "memory"])
def counter(request):
    return _RedisCounter(REDIS_URL) if request.param == "redis" else _MemoryCounter()


def test_blocks_after_the_limit_per_email_and_per_address(counter):
    email = f"{uuid.uuid4().hex}@x.example"
    throttle = LoginThrottle(counter, per_email=2, per_ip=3, window=60, prefix=REDIS_PREFIX)
    assert not throttle.blocked(email, "192.0.2.1")
    throttle.failed(email, "192.0.2.1")
    throttle.failed(email, "192.0.2.1")
    assert throttle.blocked(email, "192.0.2.1")
    assert throttle.blocked(email, "192.0.2.99")  # the address does not matter
    other = f"{uuid.uuid4().hex}@x.example"
    assert not throttle.blocked(other, "192.0.2.1")
    throttle.failed(other, "192.0.2.1")
    assert throttle.blocked(other, "192.0.2.1")  # three failures from this address
    throttle.succeeded(email)
    assert not throttle.blocked(email, "192.0.2.99")


def test_the_window_expires(counter):
    email = f"{uuid.uuid4().hex}@x.example"
    throttle = LoginThrottle(counter, per_email=1, per_ip=100, window=1, prefix=REDIS_PREFIX)
    throttle.failed(email, "192.0.2.2")
    assert throttle.blocked(email, "192.0.2.2")
    time.sleep(1.1)
    assert not throttle.blocked(email, "192.0.2.2")


def test_redis_never_holds_the_email_address():
    throttle = LoginThrottle(_MemoryCounter(), per_email=1, per_ip=1, window=1)
    key = throttle._email_key("anna@x.example")
    assert "anna" not in key and key.startswith("ac:login:email:")
