"""Campaigns: a tenant dials its leads in one or more campaigns, each with its own list of
leads and its own state (docs/portal.md, "Campaigns").

Every tenant has exactly one default campaign, made with the tenant: a lead created without
a campaign (today's CRMs, the REST API without `campaign`, the demo) goes there."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.pacing_modes import PacingMode
from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned, one_of, utcnow

#: The key of the campaign made with every tenant.
DEFAULT_KEY = "default"
DEFAULT_RESULTS = "Sale\nNot interested\nCall back\nWrong number"
#: What the default results do (webapp/services/results.py; migration 0022 gave them to the
#: campaigns that had them): a sale or a refusal closes the lead, "call back" without a time
#: retries in an hour, a wrong number is never dialed again.
DEFAULT_RESULT_ACTIONS: dict[str, dict] = {
    "Sale": {"action": "close"},
    "Not interested": {"action": "close"},
    "Call back": {"action": "retry", "minutes": 60},
    "Wrong number": {"action": "do_not_call"},
}
#: Every day of the week, ISO numbers (1 Monday ... 7 Sunday).
EVERY_DAY = "1234567"

#: The pacing modes a campaign may choose: the settings page offers these, the column allows
#: these. Not adaptive: the pacer keeps it as the pacing bench's yardstick, and it goes over
#: the abandon rate cap on most of the example workloads (docs/pacing.md, "The bench").
OFFERED_PACING_MODES = (
    PacingMode.MULTIPLIER,
    PacingMode.PROGRESSIVE,
    PacingMode.PREDICTIVE,
    PacingMode.PREVIEW,
)

#: The dialing rules: the columns a campaign's settings tabs edit and "Duplicate" copies.
RULES = (
    "sip_account_id",
    "retry_no_answer_minutes",
    "retry_unavailable_minutes",
    "retry_busy_minutes",
    "retry_technical_error_minutes",
    "max_attempts",
    "ring_timeout_seconds",
    "calling_hours_start",
    "calling_hours_end",
    "calling_weekdays",
    "start_date",
    "end_date",
    "pacing_mode",
    "call_multiplier",
    "abandon_rate_cap_percent",
    "abandon_rate_window_days",
    "abandon_tolerance_seconds",
    "fallback_target",
    "max_calls_at_once",
    "max_calls_per_second",
    "wrap_up_timeout_seconds",
    "failed_transfers_limit",
    "preview_countdown_seconds",
    "results",
    "result_actions",
    "hide_numbers",
    "lead_order",
    "callback_grace_minutes",
)


class LeadOrder(StrEnum):
    """Which of a campaign's due leads are dialed first, after its due callbacks (which
    always come first)."""

    NEW_FIRST = "new_first"  # new leads, then due retries
    RETRIES_FIRST = "retries_first"  # due retries, then new leads
    PRIORITY = "priority"  # by the lead's priority, new or retried alike


class CampaignState(StrEnum):
    RUNNING = "running"  # its due leads are dialed while dialing is on
    PAUSED = "paused"  # no new calls; calls in flight finish
    ARCHIVED = "archived"  # no new calls and no new leads; kept for its history


class Campaign(TenantOwned, db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        one_of("state", CampaignState),
        UniqueConstraint("tenant_id", "key"),
        UniqueConstraint("tenant_id", "name"),
        # Target of composite foreign keys: a lead can only name a campaign of its tenant.
        UniqueConstraint("tenant_id", "id"),
        Index(
            "ix_campaigns_one_default",
            "tenant_id",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
        ForeignKeyConstraint(
            ["tenant_id", "sip_account_id"], ["sip_accounts.tenant_id", "sip_accounts.id"]
        ),
        one_of("pacing_mode", OFFERED_PACING_MODES),
        one_of("lead_order", LeadOrder),
        CheckConstraint("length(calling_weekdays) BETWEEN 1 AND 7", name="calling_weekdays"),
        CheckConstraint(
            "abandon_tolerance_seconds BETWEEN 0 AND 10", name="abandon_tolerance_seconds"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The tenant's own name for it in the API and CSV files, e.g. `tv-offer`.
    key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=CampaignState.RUNNING.value)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: When the state last changed, and who changed it (null: the system, or a deleted user).
    state_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state_changed_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL")
    )

    # --- its dialing rules (RULES) ------------------------------------------------------------

    #: The SIP account it dials through; none yet: it does not dial.
    sip_account_id: Mapped[int | None] = mapped_column(BigId)

    # Retry time per outcome, in minutes.
    retry_no_answer_minutes: Mapped[int] = mapped_column(Integer, default=90)
    retry_unavailable_minutes: Mapped[int] = mapped_column(Integer, default=90)
    retry_busy_minutes: Mapped[int] = mapped_column(Integer, default=5)
    retry_technical_error_minutes: Mapped[int] = mapped_column(Integer, default=10)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)

    #: Calling hours and weekdays in the customer's zone (the lead's, else the tenant's).
    calling_hours_start: Mapped[time] = mapped_column(Time, default=time(9, 0))
    calling_hours_end: Mapped[time] = mapped_column(Time, default=time(21, 0))
    #: ISO weekday numbers, e.g. "12345" for Monday to Friday.
    calling_weekdays: Mapped[str] = mapped_column(String(7), default=EVERY_DAY)
    #: The first and last day it dials, in the tenant's zone (none: no limit).
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)

    pacing_mode: Mapped[str] = mapped_column(String(16), default=PacingMode.MULTIPLIER.value)
    call_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    abandon_rate_cap_percent: Mapped[float] = mapped_column(Float, default=3.0)
    #: The regulatory window the abandon rate is measured over: 1 (24 hours) or 30 days.
    abandon_rate_window_days: Mapped[int] = mapped_column(Integer, default=30)
    #: Seconds an answered customer waits for an operator about to be free before the call
    #: is abandoned (the regulators' limit is 2 s).
    abandon_tolerance_seconds: Mapped[float] = mapped_column(Float, default=2.0)
    #: Where an abandoned customer is transferred: an extension or number at the tenant's
    #: PBX (an announcement, a voicemail, an overflow queue); none: they are hung up on.
    fallback_target: Mapped[str | None] = mapped_column(String(64))
    # Ceilings that protect the PBX and the trunk, whatever the pacing mode asks for.
    max_calls_at_once: Mapped[int] = mapped_column(Integer, default=30)
    max_calls_per_second: Mapped[int] = mapped_column(Integer, default=10)

    # Operators. After a transfer the operator is busy with the lead until they finish it
    # in the console, or until this many seconds have passed (0: only the console frees them).
    wrap_up_timeout_seconds: Mapped[int] = mapped_column(Integer, default=600)
    #: Failed transfers in a row after which an operator is taken off line (0: never).
    failed_transfers_limit: Mapped[int] = mapped_column(Integer, default=3)
    #: Preview dialing: seconds after which a lead shown to an operator is dialed by itself
    #: (0: only when the operator presses Call).
    preview_countdown_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The results an operator chooses from when finishing a lead, one a line.
    results: Mapped[str] = mapped_column(Text, default=DEFAULT_RESULTS)
    #: What a result does when an operator records it: the result's name -> {"action":
    #: "do_not_call" | "close" | "retry", "minutes": N for a retry}; not named: nothing.
    result_actions: Mapped[dict] = mapped_column(
        JSON, default=lambda: {k: dict(v) for k, v in DEFAULT_RESULT_ACTIONS.items()}
    )
    hide_numbers: Mapped[bool] = mapped_column(default=False)
    #: The order of new leads and due retries (due callbacks always come first).
    lead_order: Mapped[str] = mapped_column(String(16), default=LeadOrder.NEW_FIRST.value)
    #: Minutes a personal callback waits for its operator past its time before anyone may
    #: take it.
    callback_grace_minutes: Mapped[int] = mapped_column(Integer, default=30)

    @property
    def running(self) -> bool:
        return self.state == CampaignState.RUNNING.value

    @property
    def can_abandon(self) -> bool:
        """Whether its pacing may start more calls than there are free operators, so that a
        customer who picks up may find nobody (docs/pacing.md)."""
        return self.pacing_mode == PacingMode.PREDICTIVE.value or (
            self.pacing_mode == PacingMode.MULTIPLIER.value and self.call_multiplier > 1
        )

    @property
    def result_choices(self) -> list[str]:
        return [line.strip() for line in self.results.splitlines() if line.strip()]

    @property
    def weekdays(self) -> list[int]:
        return [int(day) for day in self.calling_weekdays]

    def retry_minutes(self, outcome: str) -> int:
        """The campaign's retry time for a failed attempt's outcome."""
        return getattr(self, f"retry_{outcome}_minutes")

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.key!r} of tenant {self.tenant_id}>"


class CampaignMember(TenantOwned, db.Model):
    """An operator, or a team, who takes a campaign's calls, with a weight (1 to 100) for how
    the engine divides them among their campaigns (engine/campaigns.py). A campaign without
    members is worked by every operator, weight 1: the default campaign of a company that
    never divided its operators keeps working as before. An operator's own row outweighs
    their team's."""

    __tablename__ = "campaign_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "campaign_id"],
            ["campaigns.tenant_id", "campaigns.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "operator_id"],
            ["operators.tenant_id", "operators.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"], ondelete="CASCADE"
        ),
        CheckConstraint("(operator_id IS NULL) <> (team_id IS NULL)", name="operator_or_team"),
        CheckConstraint("weight BETWEEN 1 AND 100", name="weight"),
        UniqueConstraint("tenant_id", "campaign_id", "operator_id"),
        UniqueConstraint("tenant_id", "campaign_id", "team_id"),
        Index(None, "tenant_id", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId)
    operator_id: Mapped[int | None] = mapped_column(BigId)
    team_id: Mapped[int | None] = mapped_column(BigId)
    weight: Mapped[int] = mapped_column(Integer, default=1)


def default_campaign_id(connection, tenant_id: int) -> int | None:
    return connection.scalar(
        select(Campaign.id).where(Campaign.tenant_id == tenant_id, Campaign.is_default)
    )


def _with_default_campaign(mapper, connection, tenant) -> None:
    """Every tenant is made with its default campaign, whoever makes it (signup, the command
    line, the demo, tests), in the same transaction."""
    connection.execute(
        insert(Campaign).values(
            tenant_id=tenant.id,
            name="Default",
            key=DEFAULT_KEY,
            state=CampaignState.RUNNING.value,
            is_default=True,
            created_at=utcnow(),
            state_changed_at=utcnow(),
        )
    )


def _in_default_campaign(mapper, connection, lead) -> None:
    """A lead created without a campaign goes to its tenant's default campaign."""
    if lead.campaign_id is None:
        lead.campaign_id = default_campaign_id(connection, lead.tenant_id)


def _in_the_leads_campaign(attempt_model, lead_model):
    def fill(mapper, connection, attempt) -> None:
        """An attempt is in its lead's campaign at the time it is dialed (the engine's store
        writes it so; this covers attempts made through the ORM)."""
        if attempt.campaign_id is None:
            attempt.campaign_id = connection.scalar(
                select(lead_model.campaign_id).where(
                    lead_model.tenant_id == attempt.tenant_id, lead_model.id == attempt.lead_id
                )
            )

    return fill


def listen(tenant_model, lead_model, attempt_model) -> None:
    if not event.contains(tenant_model, "after_insert", _with_default_campaign):
        event.listen(tenant_model, "after_insert", _with_default_campaign)
        event.listen(lead_model, "before_insert", _in_default_campaign)
        event.listen(
            attempt_model, "before_insert", _in_the_leads_campaign(attempt_model, lead_model)
        )
