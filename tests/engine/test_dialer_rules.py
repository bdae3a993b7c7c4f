"""The engine's pure decisions: what becomes of a lead, and where it is calling time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest

from engine.dialer import calling_window, lead_after
from engine.outcomes import Detail, Outcome
from engine.sip.ua import Account, CallRecord
from engine.store import TenantSettings


def settings(**changes) -> TenantSettings:
    values = dict(
        tenant_id=1,
        account=Account("pbx.example"),
        dial_format="+{number}@{host}",
        refer_format="{extension}@{host}",
        refer_headers="",
        ring_timeout=30.0,
        retry_minutes={"no_answer": 90, "busy": 5, "unavailable": 60, "technical_error": 10},
        max_attempts=3,
        calling_hours=(clock(9), clock(21)),
        time_zone="Europe/Moscow",
        pacing_mode="multiplier",
        multiplier=1.0,
        max_calls_at_once=30,
        max_calls_per_second=10,
        wrap_up_timeout=600.0,
        failed_transfers_limit=3,
        dialing_enabled=True,
    )
    values.update(changes)
    return TenantSettings(**values)


END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def ended(outcome: Outcome, detail: Detail | None = None) -> CallRecord:
    return CallRecord("sip:+1@pbx", outcome=outcome, detail=detail, end_at=END.timestamp())


@pytest.mark.parametrize(
    ("outcome", "minutes"),
    [
        (Outcome.BUSY, 5),
        (Outcome.NO_ANSWER, 90),
        (Outcome.UNAVAILABLE, 60),
        (Outcome.TECHNICAL_ERROR, 10),
    ],
)
def test_a_failed_attempt_is_retried_after_the_retry_time_of_its_outcome(outcome, minutes):
    assert lead_after(settings(), 1, ended(outcome)) == ("retry", END + timedelta(minutes=minutes))


def test_only_a_customer_handed_to_an_operator_is_reached():
    assert lead_after(settings(), 1, ended(Outcome.ANSWERED)) == ("reached", None)
    dropped = ended(Outcome.TECHNICAL_ERROR, Detail.NO_FREE_OPERATOR)
    assert lead_after(settings(), 1, dropped)[0] == "retry"


def test_the_last_allowed_attempt_exhausts_the_lead_unless_it_reached_the_customer():
    assert lead_after(settings(), 3, ended(Outcome.BUSY)) == ("exhausted", None)
    assert lead_after(settings(), 3, ended(Outcome.ANSWERED)) == ("reached", None)


def test_calling_hours_are_the_customers_local_time():
    # 06:30 UTC: 09:30 in Moscow (open), 15:30 in Tokyo (open), 01:30 in New York (closed).
    window = calling_window(settings(), datetime(2026, 11, 24, 6, 30, tzinfo=UTC))
    assert window.tenant_zone_open
    assert "Asia/Tokyo" in window.zones and "Europe/Moscow" in window.zones
    assert "America/New_York" not in window.zones
    # 20:00 UTC: 23:00 in Moscow, the tenant's zone, is closed; New York (15:00) is open.
    window = calling_window(settings(), datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    assert not window.tenant_zone_open and "America/New_York" in window.zones


def test_equal_start_and_end_mean_all_day_and_hours_may_cross_midnight():
    assert calling_window(settings(calling_hours=(clock(0), clock(0))), END).zones is None
    night = settings(calling_hours=(clock(22), clock(2)), time_zone="UTC")
    assert calling_window(night, datetime(2026, 11, 24, 23, 0, tzinfo=UTC)).tenant_zone_open
    assert not calling_window(night, datetime(2026, 11, 24, 3, 0, tzinfo=UTC)).tenant_zone_open
