"""Readiness: the database, Redis and a worker on each queue, with real ones."""

from __future__ import annotations

from rq import Worker

from webapp.jobs import queues


def test_not_ready_without_workers_and_ready_with_them(app, client):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert (body["database"], body["redis"]) == ("ok", "ok")
    assert body["workers"] == {"engines": 0, "default": 0, "webhooks": 0}
    with app.app_context():
        workers = [
            Worker([queues.queue(name)], connection=queues.queue(name).connection)
            for name in (queues.ENGINES, queues.DEFAULT)
        ]
        for worker in workers:
            worker.register_birth()
    try:  # no worker delivers webhooks: not ready
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.get_json()["workers"] == {"engines": 1, "default": 1, "webhooks": 0}
    finally:
        for worker in workers:
            worker.register_death()
    with app.app_context():
        workers = [
            Worker([queues.queue(name)], connection=queues.queue(name).connection)
            for name in queues.QUEUES
        ]
        for worker in workers:
            worker.register_birth()
    try:
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["workers"] == {"engines": 1, "default": 1, "webhooks": 1}
    finally:
        for worker in workers:
            worker.register_death()


def test_not_ready_when_redis_does_not_answer(client, app):
    app.extensions["autocall.redis"] = __import__("redis").Redis(host="127.0.0.1", port=1)
    body = client.get("/readyz")
    assert body.status_code == 503
    assert body.get_json()["redis"].startswith("not answering")
