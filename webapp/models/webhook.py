"""Webhooks: URLs of a tenant that hear of every finished attempt, and the log of deliveries.

The signing secret is kept encrypted with the deployment's key (like the SIP password), not
hashed: the service itself signs with it, so it must be able to read it back. Admins may
show it again in the portal (docs/portal.md, Webhooks).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned, utcnow

#: The events a delivery can carry: an attempt's call ended; the operator recorded its
#: result (the console's Finish); a test.
ATTEMPT_FINISHED, ATTEMPT_RESULT, TEST = "attempt.finished", "attempt.result", "test"


class WebhookEndpoint(TenantOwned, db.Model):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: Fernet token of the signing secret (webapp/services/secrets.py).
    secret_encrypted: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(TenantOwned, db.Model):
    """One event for one endpoint, and how its tries went.

    Delivered when `delivered_at` is set; waiting for a (next) try while `next_try_at` is
    set; otherwise given up after the last try."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        Index(None, "tenant_id", "endpoint_id"),
        # The page lists the newest; the log keeps the newest (webapp/webhooks/delivery.py).
        Index(None, "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(BigId)
    event: Mapped[str] = mapped_column(String(32))
    #: The attempt the event is about (none for a test event). A reference for the log,
    #: not a foreign key: deleting a lead and its attempts leaves the log as it was.
    attempt_id: Mapped[int | None] = mapped_column(BigId)
    #: HTTP status of the last try; none when it got no answer.
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: Why the last try failed, in a few words.
    error: Mapped[str | None] = mapped_column(String(255))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def state(self) -> str:
        """`delivered`, `waiting` (for its first or next try) or `failed` (given up)."""
        if self.delivered_at is not None:
            return "delivered"
        return "waiting" if self.next_try_at is not None else "failed"
