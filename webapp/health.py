"""Liveness and readiness of the web process.

`/healthz`: the process answers. `/readyz`: it can do its work: the database answers, Redis
answers, and workers listen on every queue (engine hosts on `engines`, short jobs on
`default`, webhook deliveries on `webhooks`). 503 with what is missing otherwise, for the
load balancer and for ops.
"""

from __future__ import annotations

import redis
from flask import Blueprint, current_app
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp import bus
from webapp.extensions import db
from webapp.jobs import queues

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    checks: dict[str, object] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as error:
        checks["database"] = f"not answering: {type(error).__name__}"
    connection = bus.client()
    if connection is None:
        checks["redis"] = "not configured"
    else:
        try:
            connection.ping()
            checks["redis"] = "ok"
            checks["workers"] = {
                name: sum(1 for _ in Worker.all(queue=queues.queue(name))) for name in queues.QUEUES
            }
        except redis.RedisError as error:
            checks["redis"] = f"not answering: {error}"
    ready = (
        checks["database"] == "ok"
        and checks["redis"] == "ok"
        and all(checks.get("workers", {}).values())
    )
    current_app.logger.debug("readiness: %s", checks)
    return {"status": "ready" if ready else "not ready", **checks}, (200 if ready else 503)
