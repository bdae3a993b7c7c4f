"""Delivering webhooks: the payload, the signature, the POST, and the jobs that retry. These
are jobs, not pages (the page is webapp/settings/webhooks.py): they stand on the outbox of
webapp/services/webhooks.py.

Nothing is lost between a finished attempt and its POST (a transactional outbox):

- The engine writes the CDRs of a batch of finished attempts in one transaction
  (webapp/services/dialing.py) and, in the same transaction, a delivery for each active
  endpoint and attempt (webapp/services/webhooks.py: `record_finished`). After the commit it
  enqueues ONE `deliver` job for them on the `webhooks` queue (`announce`), which has a
  worker of its own: deliveries never wait behind imports or checks, and those never wait
  behind a slow receiver.
- `deliver` tries them in order, then keeps the log to the newest `KEEP` deliveries.
- Each try is written down BEFORE its POST (its count, and the time of the next try), and
  taken only if no other job took it meanwhile: a worker killed during the POST leaves a try
  that counts, and two jobs never send one delivery twice.
- A try that fails is tried again after the next delay of AUTOCALL_WEBHOOK_RETRY_SECONDS
  (1 min, 5 min, 30 min, 2 h, 6 h by default): the failures of one run are retried together
  by one job that RQ's scheduler enqueues when it is due.
- `sweep` (every minute, RQ's cron scheduler) finds deliveries overdue by `OVERDUE` seconds
  whose job was lost (Redis away when it was to be enqueued, or restarted without its data,
  a worker killed) and enqueues them again. It knows a delivery's job from a note in Redis
  beside the queue (webapp/services/webhooks.py: `enqueue`, `with_a_job`), and leaves
  alone those whose job is still queued, scheduled or running: a long queue is not
  mistaken for a lost job.
- "Send a test event" is tried at once, in the admin's request (`send_test`), within the
  same deadline: it never queues behind the deliveries of any tenant.

A body is `{"event": "attempt.finished", "v": 1, "attempt": {...}}`, signed with the
endpoint's secret: `X-AutoCall-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`.
`X-AutoCall-Delivery` carries the delivery's id, the same on every try (receivers drop
repeats by it).

The POST (`post`) uses `http.client` from the standard library: no redirects are followed and
no proxy from the environment is used. The whole try (looking the name up, connecting, TLS,
sending, and the whole answer) must end within `DEADLINE` seconds (defined beside the jobs'
timeouts in webapp/services/webhooks.py): a receiver that sends its answer a byte at a time
is cut off then. The name is looked up once; unless private addresses are allowed
(AUTOCALL_WEBHOOK_ALLOW_PRIVATE, or not production) every address it has must be public
(webapp/addresses.py) BEFORE anything connects, and the connection goes to exactly a checked
address, with the Host header, TLS's SNI and the certificate's check still for the name. A
refused address is never connected to, so the answer cannot tell whether a port behind it is
open.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import redis
from flask import current_app
from rq import Queue
from sqlalchemy import and_, delete, select, update

from webapp.addresses import is_public
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, job_context, queue
from webapp.models import Attempt, Lead, WebhookDelivery, WebhookEndpoint
from webapp.models.campaign import DEFAULT_KEY
from webapp.models.webhook import TEST
from webapp.services.secrets import SecretError
from webapp.services.shapes import attempt_json
from webapp.services.webhooks import DEADLINE, enqueue, with_a_job

log = logging.getLogger(__name__)

VERSION = 1
#: Bytes of an answer's body read at most (its status decides; the rest is left unread).
BODY_LIMIT = 64 * 1024
#: Deliveries kept per tenant; older ones are deleted as new ones come.
KEEP = 10_000
#: Seconds past its try time after which a delivery with no job queued, scheduled or
#: running counts as lost (`sweep`).
OVERDUE = 300
#: Deliveries of one tenant a sweep enqueues at a time.
SWEEP_BATCH = 500
USER_AGENT = "AutoCall-Webhooks/1"
#: What a try's record says from just before its POST until its result replaces it; it stays
#: when the worker died during the POST.
UNDER_WAY = "no result: the try was under way or cut short"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-AutoCall-Signature header of `body` sent at `timestamp` (Unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def attempt_payload(attempt: Attempt, lead: Lead) -> dict:
    """The CDR as the REST API shows it (webapp/services/shapes.py), and the lead's CRM id
    and number, so that a receiver needs no second request."""
    return {**attempt_json(attempt), "lead_external_id": lead.external_id, "phone": lead.phone}


def example_payload() -> dict:
    """What a test event carries: an attempt of the same shape, made up."""
    now = datetime.now(UTC).replace(microsecond=0)
    attempt = Attempt(
        id=0,
        lead_id=0,
        operator_id=None,
        dialed_uri="sip:+12125550100@pbx.example.com:5060",
        outcome="busy",
        detail=None,
        sip_code=486,
        sip_reason="Busy Here",
        invite_at=now - timedelta(seconds=5),
        ringing_at=now - timedelta(seconds=4),
        end_at=now,
    )
    payload = attempt_payload(attempt, Lead(external_id="example-1", phone="+12125550100"))
    return {**payload, "campaign": {"id": 0, "key": DEFAULT_KEY}}


# --- one POST --------------------------------------------------------------------------------


class RefusedAddress(OSError):
    """The endpoint's host has a private, loopback or otherwise non-public address."""


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; TimeoutError when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        return left


def _look_up(host: str, port: int, deadline: _Deadline) -> list[tuple]:
    """getaddrinfo's answers for the host, once, within the deadline (in a thread of its
    own, which the system's resolver ends by itself when the deadline passes first)."""
    answer: list = []

    def look_up() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            answer.append(error)

    thread = threading.Thread(target=look_up, name="webhook-dns", daemon=True)
    thread.start()
    thread.join(deadline.left())
    if not answer:
        raise TimeoutError("no answer from the name service")
    if isinstance(answer[0], OSError):
        raise answer[0]
    return answer[0]


class _Reader(io.RawIOBase):
    """The answer's bytes; each read waits only for what is left of the deadline. Like the
    socket's own file, it keeps the socket open until it is closed itself (http.client
    closes the connection before it reads the body of an answer that ends the connection)."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self.sock, self.file, self.deadline = sock, sock.makefile("rb", buffering=0), deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.sock.settimeout(self.deadline.left())
        return self.file.readinto(buffer)

    def close(self) -> None:
        self.file.close()
        super().close()


class _DeadlineSocket:
    """A connected socket (TLS or not) whose every operation ends by the deadline: what
    http.client sends through and reads the answer from."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self.sock, self.deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self.sock.settimeout(self.deadline.left())
            view = view[self.sock.send(view) :]

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_Reader(self.sock, self.deadline))

    def close(self) -> None:
        self.sock.close()


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection to the host of a URL that goes to `addresses` only (already
    looked up and checked), all within `deadline`. The Host header, TLS's SNI and the
    certificate's check are for the host's name."""

    def __init__(
        self, host: str, port: int, tls: bool, addresses: list[tuple], deadline: _Deadline
    ) -> None:
        super().__init__(host, port)
        self.default_port = 443 if tls else 80  # the Host header leaves these out
        self.tls, self.addresses, self.deadline = tls, addresses, deadline

    def connect(self) -> None:
        failure: OSError = OSError("no address")
        for family, kind, protocol, _, address in self.addresses:
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(self.deadline.left())
                sock.connect(address)
                if self.tls:
                    # The handshake as a whole ends by the socket's timeout (CPython's ssl).
                    sock.settimeout(self.deadline.left())
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
                self.sock = _DeadlineSocket(sock, self.deadline)
                return
            except TimeoutError:
                sock.close()
                raise
            except OSError as error:  # refused, unreachable: the next address
                sock.close()
                failure = error
        raise failure


def post(
    url: str, body: bytes, headers: dict, allow_private: bool
) -> tuple[int | None, str | None]:
    """POST `body` to `url` within `DEADLINE` seconds in all: (HTTP status or None, None when
    it was a 2xx else the reason)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "not an http:// or https:// URL"
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as error:  # a port that is not one
        return None, f"bad URL: {error}"
    host = parts.hostname
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = _Deadline(DEADLINE)
    connection = None
    try:
        addresses = _look_up(host, port, deadline)
        if not allow_private and not all(is_public(a[4][0]) for a in addresses):
            raise RefusedAddress(f"{host} is not a public address")
        connection = _Connection(host, port, tls, addresses, deadline)
        connection.request("POST", path, body=body, headers=headers)
        with connection.getresponse() as response:
            status, reason = response.status, response.reason
            response.read(BODY_LIMIT)  # the whole answer (up to the limit), by the deadline
    except TimeoutError:
        return None, f"no complete answer in {DEADLINE} s"
    except RefusedAddress as error:
        return None, f"refused: {error}"
    except ssl.SSLCertVerificationError as error:
        return None, f"cannot connect: TLS certificate: {error.verify_message}"
    except OSError as error:  # refused, unreachable, no such host, TLS
        return None, f"cannot connect: {error.strerror or error}"
    except http.client.InvalidURL as error:
        return None, f"bad URL: {error}"
    except http.client.HTTPException as error:
        return None, f"not an HTTP answer: {error!r}"
    finally:
        if connection is not None:
            connection.close()
    if 200 <= status < 300:
        return status, None
    return status, f"answered {status} {reason}".strip()


# --- the jobs --------------------------------------------------------------------------------


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """The page's "Send a test event": a delivery of the `test` event, tried at once in this
    request within `DEADLINE`, queued behind nothing. If it fails, its retries are jobs like
    any delivery's. Returns the delivery as its try left it."""
    test = WebhookDelivery(
        tenant_id=endpoint.tenant_id,
        endpoint_id=endpoint.id,
        event=TEST,
        next_try_at=datetime.now(UTC),
    )
    db.session.add(test)
    db.session.commit()
    test_id = test.id
    _try(endpoint.tenant_id, [test_id])
    trim(endpoint.tenant_id)
    return db.session.get(WebhookDelivery, test_id)


def deliver(tenant_id: int, delivery_ids: list[int]) -> int:
    """The job that tries deliveries (again). Returns how many were delivered."""
    with job_context():
        delivered = _try(tenant_id, delivery_ids)
        trim(tenant_id)
        return delivered


def sweep() -> int:
    """The cron job: enqueue again the deliveries overdue by `OVERDUE` seconds whose job was
    lost (none queued, scheduled or running), at most `SWEEP_BATCH` of each tenant at a time.
    One sweep runs at a time across machines. Returns how many."""
    with job_context():
        jobs = queue(WEBHOOKS)
        lock = f"{jobs.name}:sweeping"
        if not jobs.connection.set(lock, 1, nx=True, ex=600):
            return 0
        try:
            return _sweep(jobs)
        finally:
            jobs.connection.delete(lock)


def _sweep(jobs: Queue) -> int:
    overdue = datetime.now(UTC) - timedelta(seconds=OVERDUE)
    rows = db.session.execute(
        select(WebhookDelivery.tenant_id, WebhookDelivery.id)
        .where(WebhookDelivery.next_try_at < overdue)
        .order_by(WebhookDelivery.tenant_id, WebhookDelivery.id)
    ).all()
    db.session.rollback()
    tried = with_a_job(jobs, [delivery_id for _, delivery_id in rows])
    found: dict[int, list[int]] = defaultdict(list)
    for tenant_id, delivery_id in rows:
        if delivery_id not in tried and len(found[tenant_id]) < SWEEP_BATCH:
            found[tenant_id].append(delivery_id)
    for tenant_id, ids in found.items():
        log.warning(
            "webhooks of tenant %s: %d overdue deliveries enqueued again", tenant_id, len(ids)
        )
        enqueue(jobs, tenant_id, ids)
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


def _write_down(tenant_id: int, delivery_id: int, tries_before: int, **values) -> bool:
    """Write down a try of a delivery if its count of tries is still `tries_before` (no
    other job tried it meanwhile). Committed at once; False when another job had it."""
    done = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.tries == tries_before,
        )
        .values(**values)
    ).rowcount
    db.session.commit()
    return done == 1


def _after(delay: int | None) -> datetime | None:
    """The time `delay` seconds from now; None for no delay (no next try)."""
    return None if delay is None else datetime.now(UTC) + timedelta(seconds=delay)


def _try(tenant_id: int, delivery_ids: list[int]) -> int:
    """One try of each of these deliveries that still waits; the failures are scheduled
    for their next try. Each try is written down (counted, its next try set) before its POST
    and only if no other job took it meanwhile. After an endpoint gave no HTTP answer at
    all, the rest of its deliveries in this run fail with the same reason without waiting
    again."""
    config = current_app.extensions["autocall.config"]
    retries = config.webhook_retries
    rows = db.session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.event,
            WebhookDelivery.attempt_id,
            WebhookDelivery.tries,
            WebhookDelivery.endpoint_id,
            WebhookEndpoint.url,
            WebhookEndpoint.secret_encrypted,
        )
        .join(
            WebhookEndpoint,
            and_(
                WebhookEndpoint.tenant_id == WebhookDelivery.tenant_id,
                WebhookEndpoint.id == WebhookDelivery.endpoint_id,
            ),
        )
        .where(
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.id.in_(delivery_ids),
            WebhookDelivery.next_try_at <= datetime.now(UTC) + timedelta(seconds=1),
        )
        .order_by(WebhookDelivery.id)
    ).all()
    payloads = _payloads(tenant_id, {r.attempt_id for r in rows if r.attempt_id is not None})
    keys = _secrets(rows)
    down: dict[int, str] = {}
    again: dict[int, list[int]] = defaultdict(list)
    delivered = 0
    for row in rows:
        tries = row.tries + 1
        delay = retries[tries - 1] if tries <= len(retries) else None  # None: the last try
        if not _write_down(
            tenant_id,
            row.id,
            row.tries,
            tries=tries,
            status_code=None,
            error=UNDER_WAY,
            next_try_at=_after(delay),
        ):
            continue  # another job took it
        status, error, final = None, down.get(row.endpoint_id), False
        attempt = example_payload() if row.event == TEST else payloads.get(row.attempt_id)
        if attempt is None:
            error, final = "the attempt no longer exists", True
        elif keys[row.endpoint_id] is None:
            error, final = "the secret cannot be read with this server's key", True
        elif error is None:
            body = json.dumps(
                {"event": row.event, "v": VERSION, "attempt": attempt},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-AutoCall-Delivery": str(row.id),
                "X-AutoCall-Signature": sign(keys[row.endpoint_id], int(time.time()), body),
            }
            status, error = post(row.url, body, headers, config.webhook_private_allowed)
            if status is None:
                down[row.endpoint_id] = error
        values = {"status_code": status, "error": error and error[:255], "next_try_at": None}
        if error is None:
            values["delivered_at"] = datetime.now(UTC)
            delivered += 1
        elif not final and delay is not None:
            values["next_try_at"] = _after(delay)
            again[delay].append(row.id)
        _write_down(tenant_id, row.id, tries, **values)
    try:
        for delay, ids in again.items():
            enqueue(queue(WEBHOOKS), tenant_id, ids, delay)
    except redis.RedisError:  # written down: the sweep enqueues them when overdue
        log.warning(
            "webhooks of tenant %s: no job queue now; the sweep retries %s",
            tenant_id,
            sorted(i for ids in again.values() for i in ids),
        )
    return delivered
