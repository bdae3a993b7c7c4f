"""/metrics of the web: who may read it, the web's own request counts and latency, queue
gauges; real Redis, the text parsed with prometheus_client's parser."""

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue

from tests.conftest import REDIS_PREFIX, REDIS_URL


def samples_of(response) -> dict:
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    out = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_requests_are_counted_by_endpoint_with_their_latency(client):
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/no/such/page")
    samples = samples_of(client.get("/metrics"))
    ok = (("endpoint", "health.healthz"), ("method", "GET"), ("status", "200"))
    assert samples[("autocall_web_requests_total", ok)] == 3
    missing = (("endpoint", "none"), ("method", "GET"), ("status", "404"))
    assert samples[("autocall_web_requests_total", missing)] == 1
    endpoint = (("endpoint", "health.healthz"),)
    assert samples[("autocall_web_request_seconds_count", endpoint)] == 3
    assert samples[("autocall_web_request_seconds_bucket", (*endpoint, ("le", "+Inf")))] == 3
    assert samples[("autocall_web_request_seconds_sum", endpoint)] > 0
    # A second scrape sees the first one counted (every process adds to the same totals).
    again = samples_of(client.get("/metrics"))
    scrape = (("endpoint", "metrics.scrape"), ("method", "GET"), ("status", "200"))
    assert again[("autocall_web_requests_total", scrape)] == 1


def test_queue_lengths_and_workers(client):
    from rq import Worker

    redis = Redis.from_url(REDIS_URL)
    queue = Queue(f"{REDIS_PREFIX}default", connection=redis)
    engines = Queue(f"{REDIS_PREFIX}engines", connection=redis)
    queue.empty()  # RQ's keys do not start with the test's prefix
    queue.enqueue("builtins.print", "one")
    queue.enqueue("builtins.print", "two")
    worker = Worker([engines], connection=redis, name=f"metrics-test-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    try:
        samples = samples_of(client.get("/metrics"))
        # Other tests of the session may leave failed jobs and workers: what RQ says now.
        rq_says = {
            (name, q.name[len(REDIS_PREFIX) :]): value
            for q in (queue, engines)
            for name, value in (
                ("autocall_queue_failed_jobs", q.failed_job_registry.count),
                ("autocall_workers", Worker.count(queue=q)),
                ("autocall_queue_jobs", q.count),
            )
        }
    finally:
        worker.register_death()
        queue.empty()
    assert samples[("autocall_queue_jobs", (("queue", "default"),))] == 2
    assert rq_says[("autocall_workers", "engines")] >= 1
    for (name, queue_name), expected in rq_says.items():
        assert samples[(name, (("queue", queue_name),))] == expected, (name, queue_name)
    assert samples[("autocall_engine_hosts_alive", ())] == 0


def test_not_public_without_a_token(client):
    # Through a proxy (nginx sets X-Forwarded-For): not answered, as if it did not exist.
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 404
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 404
    assert client.get("/metrics").status_code == 200  # from this machine


class TestWithAToken:
    @pytest.fixture
    def config_overrides(self):
        return {"metrics_token": "scrape-me-please"}

    def test_a_scrape_must_send_it(self, client):
        assert client.get("/metrics").status_code == 404  # even from this machine
        wrong = {"Authorization": "Bearer not-the-token"}
        assert client.get("/metrics", headers=wrong).status_code == 404
        right = {"Authorization": "Bearer scrape-me-please", "X-Forwarded-For": "203.0.113.9"}
        assert client.get("/metrics", headers=right).status_code == 200


def test_the_nginx_site_keeps_metrics_off_the_internet():
    from pathlib import Path

    site = (Path(__file__).parents[2] / "deploy" / "nginx" / "autocall.conf").read_text()
    block = site[site.index("location = /metrics") :].split("}")[0]
    assert "deny all;" in block
