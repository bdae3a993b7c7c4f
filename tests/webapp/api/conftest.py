"""The API's tests: tenants A and B of tests/conftest.py, each with an API token."""

from __future__ import annotations

import json

import pytest
import redis

from tests.conftest import REDIS_PREFIX, REDIS_URL


def bearer(app, tenant_id: int, name: str = "tests") -> str:
    from webapp.services.api_access import create_token

    with app.app_context():
        return create_token(tenant_id, name)[1]


class Api:
    """The test client with a bearer token; paths are under /api/v1."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **query):
        return self.client.get(f"/api/v1{path}", query_string=query, headers=self.headers())

    def post(self, path: str, body=None):
        return self.client.post(f"/api/v1{path}", json=body, headers=self.headers())

    def delete(self, path: str):
        return self.client.delete(f"/api/v1{path}", headers=self.headers())


@pytest.fixture
def api(app, client, tenant_a) -> Api:
    """Tenant A's API."""
    return Api(client, bearer(app, tenant_a.id))


@pytest.fixture
def api_b(app, client, tenant_b) -> Api:
    return Api(client, bearer(app, tenant_b.id))


@pytest.fixture
def wakes(app):
    """wakes(tenant_id) starts listening to the tenant's engine channel; calling the
    returned function gives the reasons received so far."""
    from engine.bus import TenantKeys

    connection = redis.Redis.from_url(REDIS_URL)
    subscriptions = []

    def listen(tenant_id: int):
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(TenantKeys(REDIS_PREFIX, tenant_id).wake)
        pubsub.get_message(timeout=1)  # the subscription's confirmation
        subscriptions.append(pubsub)

        def received() -> list[str]:
            reasons = []
            while (message := pubsub.get_message(timeout=0.2)) is not None:
                reasons.append(json.loads(message["data"])["type"])
            return reasons

        return received

    yield listen
    for pubsub in subscriptions:
        pubsub.close()
    connection.close()
