"""What the reports read besides the CDRs: operators' on-line sessions, and the hourly
roll-ups of the attempts that keep reports on months of data fast (docs/reports.md).

Roll-ups are per tenant and per UTC hour (`hour` is the start of the hour), so a report in
any time zone adds whole hours and reads the raw attempts only for what the roll-up does not
hold: the part-hours at the edges of a period (zones a half or quarter hour off UTC) and the
hours not rolled up yet (`ReportRollup.rolled_until` onwards).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned

#: Counter columns of `report_hours`, the same names as the report's figures.
HOUR_COUNTS = (
    "attempts",
    "picked_up",
    "transferred",
    "rang",
    "talks",
    "very_short",
    "reached",
    "exhausted",
    # What staff bill (docs/billing.md); summed again per day in `billing_days`.
    "billed_seconds",
    "billable_minutes",
)
#: Columns of `billing_days`: what staff bill (docs/billing.md).
BILLED = ("attempts", "picked_up", "transferred", "billed_seconds", "billable_minutes")
HOUR_SECONDS = ("ring_seconds", "talk_seconds")
#: Counter columns of `report_operator_hours`.
OPERATOR_COUNTS = ("offered", "transferred", "failed_transfers", "talks", "very_short", "wrap_ups")
OPERATOR_SECONDS = ("talk_seconds", "wrap_up_seconds")


class OperatorSession(TenantOwned, db.Model):
    """One stretch of time an operator was on line. `off_line_at` is null while it lasts."""

    __tablename__ = "operator_sessions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            ondelete="CASCADE",
        ),
        Index(None, "tenant_id", "on_line_at"),
        Index(None, "tenant_id", "operator_id", "off_line_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    operator_id: Mapped[int] = mapped_column(BigId)
    on_line_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    off_line_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Who ended it: `console` (the operator), `heartbeat` (the console went quiet),
    #: `failed_transfers` (the engine's limit), `gone` (found off line, time unknown).
    off_line_why: Mapped[str | None] = mapped_column(String(32))


class OperatorBreak(TenantOwned, db.Model):
    """An operator off line for a reason (webapp/services/breaks.py): from going off line
    until back on line (`ended_at` null meanwhile). `taken_by_id`: the supervisor or admin
    who took them off line from the live wall (null: the operator chose it). An "End of
    shift" is a moment: it starts and ends at once."""

    __tablename__ = "operator_breaks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            ondelete="CASCADE",
        ),
        Index(None, "tenant_id", "started_at"),
        Index(None, "tenant_id", "operator_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    operator_id: Mapped[int] = mapped_column(BigId)
    #: A default reason's key (`lunch`, ...), or the company's own reason as written.
    reason: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    taken_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )


class ReportHour(TenantOwned, db.Model):
    """Attempts of one tenant, one UTC hour, one campaign, one outcome and detail (`''`:
    none)."""

    __tablename__ = "report_hours"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "hour", "campaign_id", "outcome", "detail"),
    )

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    campaign_id: Mapped[int] = mapped_column(BigId)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    picked_up: Mapped[int] = mapped_column(BigInteger, default=0)
    transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    rang: Mapped[int] = mapped_column(BigInteger, default=0)
    talks: Mapped[int] = mapped_column(BigInteger, default=0)
    very_short: Mapped[int] = mapped_column(BigInteger, default=0)
    reached: Mapped[int] = mapped_column(BigInteger, default=0)
    exhausted: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    billable_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    ring_seconds: Mapped[float] = mapped_column(Float, default=0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0)


class ReportOperatorHour(TenantOwned, db.Model):
    """Calls given to one operator in one UTC hour and one campaign, by detail and transfer
    SIP code (0: none)."""

    __tablename__ = "report_operator_hours"
    __table_args__ = (
        PrimaryKeyConstraint(
            "tenant_id", "hour", "campaign_id", "operator_id", "detail", "transfer_sip_code"
        ),
    )

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: (the hours rolled up before campaigns are the default campaign's)
    campaign_id: Mapped[int] = mapped_column(BigId)
    operator_id: Mapped[int] = mapped_column(BigId)
    detail: Mapped[str] = mapped_column(String(64))
    transfer_sip_code: Mapped[int] = mapped_column(Integer)
    offered: Mapped[int] = mapped_column(BigInteger, default=0)
    transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_transfers: Mapped[int] = mapped_column(BigInteger, default=0)
    talks: Mapped[int] = mapped_column(BigInteger, default=0)
    very_short: Mapped[int] = mapped_column(BigInteger, default=0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0)
    #: Wrap-ups that ended with the console's Finish after a talk with an end, and their
    #: seconds (migration 0010; hours rolled up before it hold zeros).
    wrap_ups: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    wrap_up_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")


class ReportRollup(TenantOwned, db.Model):
    """How far a tenant's attempts are rolled up: every hour before `rolled_until`."""

    __tablename__ = "report_rollups"
    __table_args__ = (PrimaryKeyConstraint("tenant_id"),)

    rolled_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BillingDay(TenantOwned, db.Model):
    """What staff bill of one tenant on one UTC day (`day` is its first instant): the sums of
    the tenant's rolled-up hours of that day, kept with them by the roll-up job. A month of
    every tenant is then some thirty rows a tenant (docs/billing.md)."""

    __tablename__ = "billing_days"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day"),)

    day: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    picked_up: Mapped[int] = mapped_column(BigInteger, default=0)
    transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    billable_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
