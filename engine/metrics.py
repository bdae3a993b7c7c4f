"""Metrics of the engine and the portal, kept in Redis so that one scrape sees them all.

Engine hosts are RQ work horses (a fresh process per host job, on any machine) and the web
runs several gunicorn processes, so no process alone knows the totals. Every process counts
in memory (`Tally`, a dict) and adds what it counted to one Redis hash about once a second
(`HINCRBYFLOAT`, one pipeline): the counters are the deployment's totals, they survive the
processes that counted them, and the web's `/metrics` (webapp/metrics.py) reads them with the
gauges it computes itself (queues, workers, hosts). Each engine host also writes its gauges
(calls in flight per tenant, tenants held) to a hash of its own that expires when the host
stops refreshing it. docs/operations.md says why this design and not another.

Nothing here imports prometheus_client: the engine only counts; the web formats.
"""

from __future__ import annotations

import json
import threading

#: Hash of every counter: field `json([name, {label: value}])` -> total.
COUNTERS = "metrics"
#: Hash of one engine host's gauges, same fields; expires `HOST_GAUGES_TTL` after the last write.
HOST_GAUGES = "metrics:host:{host_id}"
HOST_GAUGES_TTL = 10

# Counters (`_total` is added by the exposition) and gauges, with their help texts.
ATTEMPTS = "autocall_attempts"
SIP_RETRANSMISSIONS = "autocall_sip_retransmissions"
REGISTRATION_FAILURES = "autocall_registration_failures"
#: The transports' `stats.foreign` (engine/sip/transport.py), added like the retransmissions.
SIP_STRANGERS = "autocall_sip_strangers"
PACER_CALLS_ASKED = "autocall_pacer_calls_asked"
CALLS_STARTED = "autocall_calls_started"
WEB_REQUESTS = "autocall_web_requests"
WEB_SECONDS = "autocall_web_request_seconds"  # a histogram: _bucket, _sum, _count
CALLS_IN_FLIGHT = "autocall_calls_in_flight"
TENANTS_HELD = "autocall_engine_tenants_held"

HELP = {
    ATTEMPTS: "Attempts finished, by outcome and detail.",
    SIP_RETRANSMISSIONS: "SIP requests and 2xx responses sent again because no answer came "
    "in time (RFC 3261 Timers A, E and G), by tenant.",
    REGISTRATION_FAILURES: "REGISTERs that failed (no answer, refused, wrong credentials), "
    "by tenant.",
    SIP_STRANGERS: "Datagrams dropped unread because they came from an address other than "
    "the tenant's PBX, by tenant.",
    PACER_CALLS_ASKED: "Calls the pacer asked to start, by tenant.",
    CALLS_STARTED: "Calls started (leads claimed and dialed) of those the pacer asked for, "
    "by tenant; fewer than asked means no due leads.",
    WEB_REQUESTS: "Web requests answered, by endpoint, method and status.",
    WEB_SECONDS: "Time to answer a web request, by endpoint.",
    CALLS_IN_FLIGHT: "Calls in flight, by tenant.",
    TENANTS_HELD: "Tenants an engine host runs, by host.",
}
#: Upper bounds (seconds) of the web latency histogram's buckets.
WEB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def field_of(name: str, labels: dict[str, str]) -> str:
    return json.dumps(
        [name, dict(sorted(labels.items()))], ensure_ascii=False, separators=(",", ":")
    )


def parse_field(field: bytes | str) -> tuple[str, dict[str, str]]:
    name, labels = json.loads(field)
    return name, labels


class Tally:
    """Counts of one process since its last flush. Thread-safe (gunicorn's threads)."""

    def __init__(self) -> None:
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, name: str, value: float = 1, **labels: object) -> None:
        field = field_of(name, {k: str(v) for k, v in labels.items()})
        with self._lock:
            self._pending[field] = self._pending.get(field, 0) + value

    def observe(self, name: str, seconds: float, buckets=WEB_BUCKETS, **labels: object) -> None:
        """One observation of a histogram: counted in the first bucket it fits (the web
        cumulates them when it formats), in `_sum` and in `_count`."""
        le = next((str(bound) for bound in buckets if seconds <= bound), "+Inf")
        self.add(f"{name}_bucket", 1, le=le, **labels)
        self.add(f"{name}_sum", seconds, **labels)
        self.add(f"{name}_count", 1, **labels)

    def take(self) -> dict[str, float]:
        """What was counted since the last take, and start again from nothing."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def give_back(self, pending: dict[str, float]) -> None:
        """A flush failed (Redis down): keep the counts for the next one."""
        with self._lock:
            for field, value in pending.items():
                self._pending[field] = self._pending.get(field, 0) + value


def queue_flush(pipe, prefix: str, pending: dict[str, float]) -> None:
    """Add the counts to the deployment's counters, on a Redis pipeline (sync or async)."""
    key = prefix + COUNTERS
    for field, value in pending.items():
        pipe.hincrbyfloat(key, field, value)


def queue_host_gauges(pipe, prefix: str, host_id: str, gauges: dict[str, float]) -> None:
    """Replace an engine host's gauges, on a Redis pipeline; they expire unless refreshed."""
    key = prefix + HOST_GAUGES.format(host_id=host_id)
    pipe.delete(key)
    if gauges:
        pipe.hset(key, mapping=gauges)
        pipe.expire(key, HOST_GAUGES_TTL)
