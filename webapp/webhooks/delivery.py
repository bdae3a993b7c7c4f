"""Delivering webhooks: the payload, the signature, the POST, and the jobs that retry.

Nothing is lost between a finished attempt and its POST (a transactional outbox):

- The engine writes the CDRs of a batch of finished attempts in one transaction
  (webapp/services/dialing.py) and, in the same transaction, a delivery for each active
  endpoint and attempt (`record_finished`). After the commit it enqueues ONE `deliver` job
  for them on `default` (`announce`).
- `deliver` tries them in order, then keeps the log to the newest `KEEP` deliveries.
- A try that fails is tried again after the next delay of AUTOCALL_WEBHOOK_RETRY_SECONDS
  (1 min, 5 min, 30 min, 2 h, 6 h by default): the failures of one run are retried together
  by one job that RQ's scheduler enqueues when it is due. Every try is written down.
- `sweep` (every minute, RQ's cron scheduler) finds deliveries overdue by `OVERDUE` seconds,
  whose job was lost (Redis away when it was to be enqueued, or restarted without its data),
  and enqueues them again. A try only sends deliveries that are due, so a job that runs twice
  sends nothing twice.

A body is `{"event": "attempt.finished", "v": 1, "attempt": {...}}`, signed with the
endpoint's secret: `X-AutoCall-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`.
`X-AutoCall-Delivery` carries the delivery's id, the same on every try (receivers drop
repeats by it).

The POST uses `http.client` from the standard library: no redirects are followed, no proxy
from the environment is used, and every socket operation times out after `TIMEOUT` seconds.
Unless private addresses are allowed (AUTOCALL_WEBHOOK_ALLOW_PRIVATE, or not production),
the address actually connected to must be public (webapp/addresses.py): checking it after
`connect` leaves no gap for a DNS answer that changes between a check and the connection.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import redis
from flask import current_app
from rq import Queue
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from webapp.addresses import is_public
from webapp.api.leads import attempt_json
from webapp.extensions import db
from webapp.models import Attempt, Lead, WebhookDelivery, WebhookEndpoint
from webapp.models.webhook import ATTEMPT_FINISHED, TEST
from webapp.queues import job_context, queue
from webapp.services.secrets import SecretError

log = logging.getLogger(__name__)
endpoints_table = WebhookEndpoint.__table__
deliveries_table = WebhookDelivery.__table__

VERSION = 1
#: Seconds every socket operation of a try may take (connect, send, the answer).
TIMEOUT = 5
#: Deliveries kept per tenant; older ones are deleted as new ones come.
KEEP = 10_000
#: Seconds past its try time after which a delivery's job counts as lost (`sweep`).
OVERDUE = 300
#: Deliveries of one tenant a sweep enqueues at a time.
SWEEP_BATCH = 500
USER_AGENT = "AutoCall-Webhooks/1"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-AutoCall-Signature header of `body` sent at `timestamp` (Unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def attempt_payload(attempt: Attempt, lead: Lead) -> dict:
    """The CDR as the REST API shows it (webapp/api/leads.py), and the lead's CRM id and
    number, so that a receiver needs no second request."""
    return {**attempt_json(attempt), "lead_external_id": lead.external_id, "phone": lead.phone}


def example_payload() -> dict:
    """What a test event carries: an attempt of the same shape, made up."""
    now = datetime.now(UTC).replace(microsecond=0)
    attempt = Attempt(
        id=0, lead_id=0, operator_id=None, dialed_uri="sip:+12125550100@pbx.example.com:5060",
        outcome="busy", detail=None, sip_code=486, sip_reason="Busy Here",
        invite_at=now - timedelta(seconds=5), ringing_at=now - timedelta(seconds=4), end_at=now,
    )  # fmt: skip
    return attempt_payload(attempt, Lead(external_id="example-1", phone="+12125550100"))


# --- one POST --------------------------------------------------------------------------------


class RefusedAddress(OSError):
    """The endpoint's host is a private, loopback or otherwise non-public address."""


class _Guarded:
    allow_private = False

    def connect(self) -> None:
        super().connect()
        address = self.sock.getpeername()[0]
        if not self.allow_private and not is_public(address):
            self.sock.close()
            raise RefusedAddress(f"{address} is not a public address")


class _HTTP(_Guarded, http.client.HTTPConnection):
    pass


class _HTTPS(_Guarded, http.client.HTTPSConnection):
    pass


def post(url: str, body: bytes, headers: dict,
         allow_private: bool) -> tuple[int | None, str | None]:  # fmt: skip
    """POST `body` to `url`: (HTTP status or None, None when it was a 2xx else the reason)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "not an http:// or https:// URL"
    kind = _HTTPS if parts.scheme == "https" else _HTTP
    try:
        connection = kind(parts.hostname, parts.port, timeout=TIMEOUT)
    except ValueError as error:  # a port that is not one (http.client.InvalidURL too)
        return None, f"bad URL: {error}"
    connection.allow_private = allow_private
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        status, reason = response.status, response.reason
    except TimeoutError:
        return None, f"no answer in {TIMEOUT} s"
    except RefusedAddress as error:
        return None, f"refused: {error}"
    except OSError as error:  # refused, unreachable, no such host, TLS
        return None, f"cannot connect: {error.strerror or error}"
    except http.client.HTTPException as error:
        return None, f"not an HTTP answer: {error!r}"
    finally:
        connection.close()
    if 200 <= status < 300:
        return status, None
    return status, f"answered {status} {reason}".strip()


# --- the jobs --------------------------------------------------------------------------------


def record_finished(connection: Connection, tenant_id: int, attempt_ids: list[int]) -> list[int]:
    """Inside the engine's transaction that wrote these attempts' CDRs: a delivery for each
    active endpoint and attempt, due now. Returns their ids (none without an active endpoint)."""
    endpoints = connection.execute(
        select(endpoints_table.c.id).where(endpoints_table.c.tenant_id == tenant_id,
                                           endpoints_table.c.active.is_(True))
    ).scalars().all()  # fmt: skip
    if not endpoints or not attempt_ids:
        return []
    now = datetime.now(UTC)
    rows = [
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "event": ATTEMPT_FINISHED,
         "attempt_id": attempt_id, "next_try_at": now, "tries": 0, "created_at": now}
        for attempt_id in sorted(attempt_ids)
        for endpoint_id in endpoints
    ]  # fmt: skip
    return list(connection.execute(insert(deliveries_table).returning(deliveries_table.c.id),
                                   rows).scalars())  # fmt: skip


def announce(jobs: Queue, tenant_id: int, delivery_ids: list[int]) -> None:
    """After the commit: one job tries these deliveries. Redis being away must not stop the
    engine: the deliveries are in the database, and `sweep` enqueues them later."""
    try:
        jobs.enqueue(deliver, tenant_id, delivery_ids, **_job_options(len(delivery_ids)))
    except redis.RedisError:
        log.warning("webhooks of tenant %s: no job queue now; the sweep sends deliveries %s",
                    tenant_id, delivery_ids)  # fmt: skip


def _job_options(count: int) -> dict:
    return {"job_timeout": 60 + 2 * TIMEOUT * count, "result_ttl": 600, "failure_ttl": 86400}


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """The page's "Send a test event": a delivery of the `test` event, tried by a job."""
    delivery = WebhookDelivery(tenant_id=endpoint.tenant_id, endpoint_id=endpoint.id,
                               event=TEST, next_try_at=datetime.now(UTC))  # fmt: skip
    db.session.add(delivery)
    db.session.commit()
    trim(endpoint.tenant_id)
    queue().enqueue(deliver, endpoint.tenant_id, [delivery.id], **_job_options(1))
    return delivery


def deliver(tenant_id: int, delivery_ids: list[int]) -> int:
    """The job that tries deliveries (again). Returns how many were delivered."""
    with job_context():
        delivered = _try(tenant_id, delivery_ids)
        trim(tenant_id)
        return delivered


def sweep() -> int:
    """The cron job: enqueue again the deliveries overdue by `OVERDUE` seconds (their job was
    lost), at most `SWEEP_BATCH` of each tenant at a time. Returns how many."""
    with job_context():
        overdue = datetime.now(UTC) - timedelta(seconds=OVERDUE)
        rows = db.session.execute(
            select(WebhookDelivery.tenant_id, WebhookDelivery.id)
            .where(WebhookDelivery.next_try_at < overdue)
            .order_by(WebhookDelivery.tenant_id, WebhookDelivery.id)
        ).all()
        db.session.rollback()
        found: dict[int, list[int]] = defaultdict(list)
        for tenant_id, delivery_id in rows:
            if len(found[tenant_id]) < SWEEP_BATCH:
                found[tenant_id].append(delivery_id)
        jobs = queue()
        for tenant_id, ids in found.items():
            log.warning("webhooks of tenant %s: %d overdue deliveries enqueued again",
                        tenant_id, len(ids))  # fmt: skip
            jobs.enqueue(deliver, tenant_id, ids, **_job_options(len(ids)))
        return sum(map(len, found.values()))


def trim(tenant_id: int, keep: int = KEEP) -> None:
    """Delete the tenant's deliveries but the newest `keep`."""
    newest = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.tenant_id == tenant_id)
        .order_by(WebhookDelivery.id.desc())
    )
    oldest_kept = db.session.scalar(newest.offset(keep - 1).limit(1))
    if oldest_kept is not None:
        db.session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id < oldest_kept
            )
        )
        db.session.commit()


def _payloads(tenant_id: int, attempt_ids: set[int]) -> dict[int, dict]:
    rows = db.session.execute(
        select(Attempt, Lead)
        .join(Lead, and_(Lead.tenant_id == Attempt.tenant_id, Lead.id == Attempt.lead_id))
        .where(Attempt.tenant_id == tenant_id, Attempt.id.in_(attempt_ids))
    ).all()
    return {attempt.id: attempt_payload(attempt, lead) for attempt, lead in rows}


def _secrets(rows) -> dict[int, str | None]:
    """Each endpoint's secret; None when it cannot be read with this deployment's key."""
    box = current_app.extensions["autocall.secrets"]
    readable = {}
    for row in rows:
        try:
            readable[row.endpoint_id] = box.decrypt(row.secret_encrypted)
        except SecretError:
            readable[row.endpoint_id] = None
    return readable


def _try(tenant_id: int, delivery_ids: list[int]) -> int:
    """One try of each of these deliveries that still waits; the failures are scheduled
    for their next try. After an endpoint gave no HTTP answer at all, the rest of its
    deliveries in this run fail with the same reason without waiting again."""
    config = current_app.extensions["autocall.config"]
    retries = config.webhook_retries
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.event, WebhookDelivery.attempt_id,
               WebhookDelivery.tries, WebhookDelivery.endpoint_id, WebhookEndpoint.url,
               WebhookEndpoint.secret_encrypted)
        .join(WebhookEndpoint, and_(WebhookEndpoint.tenant_id == WebhookDelivery.tenant_id,
                                    WebhookEndpoint.id == WebhookDelivery.endpoint_id))
        .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id.in_(delivery_ids),
               WebhookDelivery.next_try_at <= datetime.now(UTC) + timedelta(seconds=1))
        .order_by(WebhookDelivery.id)
    ).all()  # fmt: skip
    payloads = _payloads(tenant_id, {r.attempt_id for r in rows if r.attempt_id is not None})
    keys = _secrets(rows)
    down: dict[int, str] = {}
    again: dict[int, list[int]] = defaultdict(list)
    delivered = 0
    for row in rows:
        status, error, final = None, down.get(row.endpoint_id), False
        attempt = example_payload() if row.event == TEST else payloads.get(row.attempt_id)
        if attempt is None:
            error, final = "the attempt no longer exists", True
        elif keys[row.endpoint_id] is None:
            error, final = "the secret cannot be read with this server's key", True
        elif error is None:
            body = json.dumps({"event": row.event, "v": VERSION, "attempt": attempt},
                              ensure_ascii=False, separators=(",", ":")).encode()  # fmt: skip
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-AutoCall-Delivery": str(row.id),
                "X-AutoCall-Signature": sign(keys[row.endpoint_id], int(time.time()), body),
            }
            status, error = post(row.url, body, headers, config.webhook_private_allowed)
            if status is None:
                down[row.endpoint_id] = error
        now, tries = datetime.now(UTC), row.tries + 1
        values = {"tries": tries, "status_code": status, "error": error and error[:255],
                  "next_try_at": None}  # fmt: skip
        if error is None:
            values["delivered_at"] = now
            delivered += 1
        elif not final and tries <= len(retries):
            values["next_try_at"] = now + timedelta(seconds=retries[tries - 1])
            again[retries[tries - 1]].append(row.id)
        db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == row.id)
            .values(**values)
        )
        db.session.commit()  # each try is written down as it happens
    for delay, ids in again.items():
        options = _job_options(len(ids))
        queue().enqueue_in(timedelta(seconds=delay), deliver, tenant_id, ids, **options)
    return delivered
