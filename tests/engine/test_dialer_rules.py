"""The engine's pure decisions: what becomes of a lead, and where it is calling time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import pytest

from engine.dialer import calendar_reason, calling_window, lead_after, lost_call_bound
from engine.outcomes import Detail, Outcome
from engine.sip.ua import Account, CallRecord
from engine.store import AccountSettings, CampaignSettings, TenantSettings


def campaign(**changes) -> CampaignSettings:
    values = dict(
        campaign_id=1,
        account_id=1,
        ring_timeout=30.0,
        retry_minutes={"no_answer": 90, "busy": 5, "unavailable": 60, "technical_error": 10},
        max_attempts=3,
        calling_hours=(clock(9), clock(21)),
        pacing_mode="multiplier",
    )
    values.update(changes)
    return CampaignSettings(**values)


MOSCOW = "Europe/Moscow"


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
    assert lead_after(campaign(), 1, ended(outcome)) == ("retry", END + timedelta(minutes=minutes))


def test_only_a_customer_handed_to_an_operator_is_reached():
    assert lead_after(campaign(), 1, ended(Outcome.ANSWERED)) == ("reached", None)
    dropped = ended(Outcome.TECHNICAL_ERROR, Detail.NO_FREE_OPERATOR)
    assert lead_after(campaign(), 1, dropped)[0] == "retry"


def test_the_last_allowed_attempt_exhausts_the_lead_unless_it_reached_the_customer():
    assert lead_after(campaign(), 3, ended(Outcome.BUSY)) == ("exhausted", None)
    assert lead_after(campaign(), 3, ended(Outcome.ANSWERED)) == ("reached", None)


def test_calling_hours_are_the_customers_local_time():
    # 06:30 UTC: 09:30 in Moscow (open), 15:30 in Tokyo (open), 01:30 in New York (closed).
    window = calling_window(campaign(), MOSCOW, datetime(2026, 11, 24, 6, 30, tzinfo=UTC))
    assert window.tenant_zone_open
    assert "Asia/Tokyo" in window.zones and "Europe/Moscow" in window.zones
    assert "America/New_York" not in window.zones
    # 20:00 UTC: 23:00 in Moscow, the tenant's zone, is closed; New York (15:00) is open.
    window = calling_window(campaign(), MOSCOW, datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    assert not window.tenant_zone_open and "America/New_York" in window.zones


def test_equal_start_and_end_mean_all_day_and_hours_may_cross_midnight():
    assert calling_window(campaign(calling_hours=(clock(0), clock(0))), MOSCOW, END).zones is None
    night = campaign(calling_hours=(clock(22), clock(2)))
    assert calling_window(night, "UTC", datetime(2026, 11, 24, 23, 0, tzinfo=UTC)).tenant_zone_open
    assert not calling_window(
        night, "UTC", datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    ).tenant_zone_open


def test_calling_weekdays_are_the_customers_days():
    """Monday to Friday: at 22:00 UTC on Friday 27 November 2026 it is already Saturday in
    Tokyo (07:00, closed by the day) and still Friday in New York (17:00, open)."""
    weekdays = campaign(calling_hours=(clock(0), clock(0)), weekdays=frozenset(range(1, 6)))
    friday_night = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    window = calling_window(weekdays, "UTC", friday_night)
    assert window.tenant_zone_open  # Friday in UTC
    assert "America/New_York" in window.zones and "Asia/Tokyo" not in window.zones
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert not calling_window(weekdays, "UTC", sunday).tenant_zone_open
    hours_and_days = campaign(weekdays=frozenset({6}))  # Saturdays, 09:00-21:00
    assert calling_window(
        hours_and_days, "UTC", datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    ).tenant_zone_open
    assert not calling_window(
        hours_and_days, "UTC", datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    ).tenant_zone_open


def test_the_start_and_end_dates_are_the_tenants_days():
    """The campaign runs 1 to 3 December in Moscow: 21:30 UTC on 30 November is already
    1 December there; 21:30 UTC on 3 December is 4 December there, past the end."""
    dated = campaign(start_date=date(2026, 12, 1), end_date=date(2026, 12, 3))
    assert calendar_reason(dated, "UTC", datetime(2026, 11, 30, 21, 30, tzinfo=UTC)) == (
        "before_start_date"
    )
    assert calendar_reason(dated, MOSCOW, datetime(2026, 11, 30, 21, 30, tzinfo=UTC)) == ""
    assert calendar_reason(dated, "UTC", datetime(2026, 12, 3, 21, 30, tzinfo=UTC)) == ""
    assert calendar_reason(dated, MOSCOW, datetime(2026, 12, 3, 21, 30, tzinfo=UTC)) == (
        "past_end_date"
    )
    assert calendar_reason(campaign(), MOSCOW, END) == ""  # no dates: no limit


def test_a_lost_engines_calls_are_waited_for_the_longest_ring_timeout():
    short, long = campaign(ring_timeout=20.0), campaign(campaign_id=2, ring_timeout=45.0)
    assert lost_call_bound(TenantSettings(1, campaigns=(short, long)), 1.0) == (
        lost_call_bound(TenantSettings(1, campaigns=(long,)), 1.0)
    )
    assert lost_call_bound(TenantSettings(1, campaigns=(short,)), 1.0) == (
        lost_call_bound(TenantSettings(1, campaigns=(long,)), 1.0) - 25.0
    )


def test_a_lost_engines_calls_are_waited_for_the_longest_transfer_wait():
    """Each SIP account waits for a transfer's result as long as it says; a lost engine's
    calls may go on for the longest of them: 20 + 2 (the hold) + 90 + 1 (the BYE) + 1 (the
    stop's grace)."""
    ring = campaign(ring_timeout=20.0)
    quick = AccountSettings(1, Account("pbx.example.com"), transfer_wait=12.0)
    slow = AccountSettings(2, Account("trunk.example.com"), transfer_wait=90.0)
    both = TenantSettings(1, accounts={1: quick, 2: slow}, campaigns=(ring,))
    assert lost_call_bound(both, 1.0) == 20.0 + 2.0 + 90.0 + 1.0 + 1.0
    alone = TenantSettings(1, accounts={1: quick}, campaigns=(ring,))
    assert lost_call_bound(alone, 1.0) == 20.0 + 2.0 + 12.0 + 1.0 + 1.0
    assert lost_call_bound(TenantSettings(1, campaigns=(ring,)), 1.0) == 20.0 + 2.0 + 30.0 + 2.0


def test_a_lost_engines_calls_are_waited_for_the_longest_hold():
    """An answered customer may be held for an operator for the longest abandon tolerance
    of the running campaigns before the REFER."""
    brief, patient = campaign(abandon_tolerance=0.0), campaign(campaign_id=2, abandon_tolerance=5.0)
    assert lost_call_bound(TenantSettings(1, campaigns=(brief, patient)), 1.0) == (
        lost_call_bound(TenantSettings(1, campaigns=(brief,)), 1.0) + 5.0
    )
