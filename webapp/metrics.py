"""Prometheus metrics of the whole deployment at `GET /metrics` (engine/metrics.py says how
they are kept: counters in one Redis hash, engine hosts' gauges in hashes that expire).

Every web process answers with the same totals, so Prometheus scrapes any one of them (or
the load balancer). The web counts its own requests (by endpoint, method and status, and a
latency histogram by endpoint) in memory and adds them to Redis at most once a second, on
the next request: a process's last second shows once it answers again (the scrape itself
is a request, so the process that answers it is always up to date).

Not public: with `AUTOCALL_METRICS_TOKEN` set, a scrape must send it as a bearer token;
without it, only a request made directly from this machine (a loopback address and no
X-Forwarded-For, so nothing that came through nginx) is answered. Others get 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import defaultdict

import redis
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine import metrics as m
from webapp import bus

bp = Blueprint("metrics", __name__)

FLUSH_EVERY = 1.0  # seconds between a web process's additions to the Redis counters
#: Labels of each counter, in the order they are exposed.
COUNTER_LABELS = {
    m.ATTEMPTS: ("outcome", "detail"),
    m.SIP_RETRANSMISSIONS: ("tenant",),
    m.REGISTRATION_FAILURES: ("tenant",),
    m.SIP_STRANGERS: ("tenant",),
    m.PACER_CALLS_ASKED: ("tenant",),
    m.CALLS_STARTED: ("tenant",),
    m.WEB_REQUESTS: ("endpoint", "method", "status"),
}


# --- counting the web's requests -----------------------------------------------------------


def init_app(app: Flask) -> None:
    app.extensions["autocall.metrics"] = {"tally": m.Tally(), "flushed_at": time.monotonic()}
    app.register_blueprint(bp)

    @app.before_request
    def start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def count_request(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        endpoint = request.url_rule.endpoint if request.url_rule else "none"
        tally = app.extensions["autocall.metrics"]["tally"]
        tally.add(
            m.WEB_REQUESTS, endpoint=endpoint, method=request.method, status=response.status_code
        )
        if started is not None:
            tally.observe(m.WEB_SECONDS, time.perf_counter() - started, endpoint=endpoint)
        flush(app)
        return response


def flush(app: Flask, force: bool = False) -> None:
    """Add this process's counts to the Redis counters, at most once a second unless forced."""
    state = app.extensions["autocall.metrics"]
    now = time.monotonic()
    if not force and now - state["flushed_at"] < FLUSH_EVERY:
        return
    state["flushed_at"] = now
    connection = bus.client()
    pending = state["tally"].take()
    if connection is None or not pending:
        return
    pipe = connection.pipeline(transaction=False)
    m.queue_flush(pipe, app.extensions["autocall.config"].redis_prefix, pending)
    try:
        pipe.execute()
    except redis.RedisError:
        state["tally"].give_back(pending)


# --- the scrape ----------------------------------------------------------------------------


def _allowed() -> bool:
    token = current_app.extensions["autocall.config"].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        local = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        local = False
    return local and "X-Forwarded-For" not in request.headers


@bp.get("/metrics")
def scrape():
    if not _allowed():
        abort(404)
    flush(current_app, force=True)
    connection = bus.client()
    if connection is None:
        abort(503, "metrics need Redis: set AUTOCALL_REDIS_URL")
    prefix = current_app.extensions["autocall.config"].redis_prefix
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(read(connection, prefix)))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def read(connection: redis.Redis, prefix: str) -> dict:
    """Everything /metrics shows, read from Redis in two round trips."""
    from webapp.staff.reports import engine_hosts, queue_views

    counters = connection.hgetall(prefix + m.COUNTERS)
    hosts = engine_hosts(connection, prefix)
    pipe = connection.pipeline(transaction=False)
    for host in hosts:
        pipe.hgetall(prefix + m.HOST_GAUGES.format(host_id=host))
    gauges: dict[str, float] = {}
    for values in pipe.execute():
        for field, value in values.items():  # a tenant is held by one host at a time
            gauges[field.decode()] = gauges.get(field.decode(), 0) + float(value)
    return {
        "counters": {field.decode(): float(value) for field, value in counters.items()},
        "gauges": gauges,
        "hosts": len(hosts),
        "queues": queue_views(connection, prefix),
    }


class _Collector:
    def __init__(self, data: dict) -> None:
        self.data = data

    def collect(self):
        counters: dict[str, dict[tuple, float]] = defaultdict(dict)
        histogram: dict[str, dict] = defaultdict(lambda: {"buckets": {}, "sum": 0.0})
        for field, value in self.data["counters"].items():
            name, labels = m.parse_field(field)
            if name in COUNTER_LABELS:
                key = tuple(labels.get(label, "") for label in COUNTER_LABELS[name])
                counters[name][key] = value
            elif name == f"{m.WEB_SECONDS}_bucket":
                histogram[labels["endpoint"]]["buckets"][labels["le"]] = value
            elif name == f"{m.WEB_SECONDS}_sum":
                histogram[labels["endpoint"]]["sum"] = value
        for name, labels in COUNTER_LABELS.items():
            family = CounterMetricFamily(name, m.HELP[name], labels=labels)
            for key, value in sorted(counters[name].items()):
                family.add_metric(list(key), value)
            yield family

        latency = HistogramMetricFamily(m.WEB_SECONDS, m.HELP[m.WEB_SECONDS], labels=["endpoint"])
        for endpoint, data in sorted(histogram.items()):
            running, buckets = 0.0, []
            for bound in [*map(str, m.WEB_BUCKETS), "+Inf"]:
                running += data["buckets"].get(bound, 0)
                buckets.append((bound, running))
            latency.add_metric([endpoint], buckets, data["sum"])
        yield latency

        in_flight = GaugeMetricFamily(
            m.CALLS_IN_FLIGHT, m.HELP[m.CALLS_IN_FLIGHT], labels=["tenant"]
        )
        held = GaugeMetricFamily(m.TENANTS_HELD, m.HELP[m.TENANTS_HELD], labels=["host"])
        for field, value in sorted(self.data["gauges"].items()):
            name, labels = m.parse_field(field)
            if name == m.CALLS_IN_FLIGHT:
                in_flight.add_metric([labels["tenant"]], value)
            elif name == m.TENANTS_HELD:
                held.add_metric([labels["host"]], value)
        yield in_flight
        yield held
        yield GaugeMetricFamily(
            "autocall_engine_hosts_alive",
            "Engine hosts whose heartbeat is fresh.",
            value=self.data["hosts"],
        )
        waiting = GaugeMetricFamily(
            "autocall_queue_jobs", "Jobs waiting in an RQ queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "autocall_queue_failed_jobs", "Jobs in an RQ queue's failed registry.", labels=["queue"]
        )
        workers = GaugeMetricFamily(
            "autocall_workers", "RQ workers alive listening on a queue.", labels=["queue"]
        )
        for queue in self.data["queues"]:
            waiting.add_metric([queue.name], queue.waiting)
            failed.add_metric([queue.name], queue.failed)
            workers.add_metric([queue.name], queue.workers)
        yield waiting
        yield failed
        yield workers
