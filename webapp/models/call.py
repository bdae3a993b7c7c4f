"""Attempts: one call to a lead, and its call detail record (CDR)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.outcomes import Outcome, TransferResult
from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned, one_of


class Attempt(TenantOwned, db.Model):
    __tablename__ = "attempts"
    __table_args__ = (
        one_of("outcome", Outcome),
        one_of("transfer_result", TransferResult),
        ForeignKeyConstraint(
            ["tenant_id", "lead_id"], ["leads.tenant_id", "leads.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "campaign_id"],
            ["campaigns.tenant_id", "campaigns.id"],
            ondelete="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            ondelete="RESTRICT",
        ),
        Index(None, "tenant_id", "lead_id"),
        Index(None, "tenant_id", "invite_at"),
        Index(None, "tenant_id", "operator_id", "invite_at"),
        # Attempts in progress, for the engine that takes over a tenant after a crash.
        Index(
            "ix_attempts_in_progress",
            "tenant_id",
            "engine",
            postgresql_where=text("outcome IS NULL"),
            sqlite_where=text("outcome IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(BigId)
    #: The campaign of the lead when it was dialed: the attempt keeps it if the lead moves.
    campaign_id: Mapped[int] = mapped_column(BigId)
    operator_id: Mapped[int | None] = mapped_column(BigId)
    dialed_uri: Mapped[str] = mapped_column(String(255))
    #: The Refer-To URI the call was transferred to.
    refer_to: Mapped[str | None] = mapped_column(String(255))
    #: Null while the attempt is in progress.
    outcome: Mapped[str | None] = mapped_column(String(16))
    #: Finer reason inside an outcome (engine.outcomes.Detail), e.g. `no_free_operator`.
    detail: Mapped[str | None] = mapped_column(String(64))
    sip_code: Mapped[int | None] = mapped_column(Integer)
    sip_reason: Mapped[str | None] = mapped_column(String(255))
    invite_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ringing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answer_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refer_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transfer_result_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transfer_result: Mapped[str | None] = mapped_column(String(16))
    #: SIP status from the NOTIFY's sipfrag (RFC 3515 section 2.4.5), or the REFER's refusal.
    transfer_sip_code: Mapped[int | None] = mapped_column(Integer)
    transfer_sip_reason: Mapped[str | None] = mapped_column(String(255))
    #: The engine that placed the call (host and lease), so that the engine taking the
    #: tenant over after a crash knows which attempts in progress are not its own.
    engine: Mapped[str | None] = mapped_column(String(64))
    #: The attempt dialed a callback promised to the customer (it counts as an attempt).
    callback: Mapped[bool] = mapped_column(default=False)
    #: What the operator recorded on finishing the lead (one of the tenant's results), and why.
    result: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)
    #: When the operator asked the customer to be called back (the console's "call back at").
    call_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: What the result did when it was recorded (webapp/services/results.py: Action).
    result_action: Mapped[str | None] = mapped_column(String(16))
    #: When the operator pressed Finish: the result, comment and call-back time written.
    result_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When the operator's talk with the customer ended: the console's "The call is over",
    #: else its "Finish" (null when neither came; docs/reports.md).
    talk_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When the operator finished the lead (the console's "Finish": the result written): the
    #: end of the wrap-up that began at `talk_ended_at` (null when it never came).
    wrap_up_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
