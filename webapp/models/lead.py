"""Leads: customers to call, with their number, name and card data from the CRM."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned, one_of, utcnow
from webapp.models.call import Outcome


class LeadStatus(StrEnum):
    NEW = "new"  # never dialed
    DIALING = "dialing"  # an attempt is in progress (claimed by an engine)
    RETRY = "retry"  # waits for next_attempt_at
    REACHED = "reached"  # answered and transferred to an operator
    EXHAUSTED = "exhausted"  # the attempt limit is hit
    CANCELLED = "cancelled"  # cancelled by the tenant or its CRM
    DO_NOT_CALL = "do_not_call"  # its number is on the tenant's do-not-call list


class Lead(TenantOwned, db.Model):
    __tablename__ = "leads"
    __table_args__ = (
        one_of("status", LeadStatus),
        one_of("last_outcome", Outcome),
        UniqueConstraint("tenant_id", "id"),
        ForeignKeyConstraint(
            ["tenant_id", "campaign_id"],
            ["campaigns.tenant_id", "campaigns.id"],
            ondelete="RESTRICT",
        ),
        Index(None, "tenant_id", "campaign_id", "status"),
        # Idempotency on the CRM's id; NULLs (no external id) never collide.
        UniqueConstraint("tenant_id", "external_id"),
        # The engine's claim: due leads of a tenant by status and time.
        Index(None, "tenant_id", "status", "next_attempt_at"),
        Index(None, "tenant_id", "phone"),
        Index(None, "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The campaign that dials it; set to the tenant's default campaign when not given
    #: (webapp/models/campaign.py).
    campaign_id: Mapped[int] = mapped_column(BigId)
    #: E.164, with the leading '+'.
    phone: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    external_id: Mapped[str | None] = mapped_column(String(128))
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    #: IANA zone of the customer; null means the tenant's time zone.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.NEW.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    #: The operator who last took this lead's call: the engine offers it to them again
    #: when they are free. A hint, not a reference: no foreign key.
    last_operator_id: Mapped[int | None] = mapped_column(BigId)
    #: Preview dialing: why an operator last skipped the lead (engine/preview.py
    #: SKIP_REASONS), and when; a skip is no attempt.
    skip_reason: Mapped[str | None] = mapped_column(String(16))
    skipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A callback promised to the customer (the console's "call back at", the API's
    #: `call_at`): the lead is dialed at this time (`next_attempt_at`), before new leads and
    #: retries, even when it has used its campaign's attempts; cleared by that attempt.
    callback_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A personal callback ("call back myself"): the operator it waits for, until the
    #: campaign's grace period is over (or they are no longer an active operator). A hint,
    #: not a reference: no foreign key.
    callback_operator_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DoNotCall(TenantOwned, db.Model):
    """A number, or a prefix of numbers, that the tenant's engine must never dial."""

    __tablename__ = "do_not_call"
    __table_args__ = (UniqueConstraint("tenant_id", "number", "prefix"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: E.164 with the leading '+'; with `prefix`, every number that starts with it.
    number: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def matches(self, phone: str) -> bool:
        return phone.startswith(self.number) if self.prefix else phone == self.number
