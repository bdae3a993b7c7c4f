"""Billing across tenants: numbers checked against the hand-computed data set (data.py) on
SQLite and PostgreSQL, the CSV export parsed back, month boundaries in UTC."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest

from tests.webapp.staff import data
from tests.webapp.staff.data import OCTOBER, OCTOBER_TOTAL, ROMASHKA


def _numbers(usage):
    return (
        usage.attempts,
        usage.picked_up,
        usage.transferred,
        usage.billed_seconds,
        usage.billable_minutes,
    )


def test_a_month_of_every_tenant_matches_the_hand_computed_numbers(app, dataset):
    from webapp.staff import reports

    with app.app_context():
        usage = {u.tenant_id: u for u in reports.billing(datetime(2026, 10, 1, tzinfo=UTC))}
    assert set(usage) == {dataset.romashka, dataset.bravo, dataset.zeta}
    assert _numbers(usage[dataset.romashka]) == OCTOBER["romashka"]
    assert _numbers(usage[dataset.bravo]) == OCTOBER["bravo"]
    assert _numbers(usage[dataset.zeta]) == OCTOBER["zeta"]
    assert usage[dataset.romashka].tenant_name == ROMASHKA


def test_billing_reads_the_roll_ups_and_they_agree_with_the_raw_attempts(app, dataset):
    """After the reports' roll-up job, the same numbers, now from `report_hours`: a raw row
    changed inside a rolled-up hour no longer moves them (so the roll-up is what is read)."""
    from sqlalchemy import update

    from webapp.extensions import db
    from webapp.models import Attempt
    from webapp.services.rollup import roll_up_all
    from webapp.staff import reports

    october, november = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    with app.app_context():
        # Rolled up to 1 November 12:00 UTC: October wholly, November's first hours.
        roll_up_all(now=datetime(2026, 11, 1, 12, 15, tzinfo=UTC))
        usage = {u.tenant_id: u for u in reports.billing(october)}
        months = reports.tenant_months(dataset.romashka, november, 3)
        db.session.execute(
            update(Attempt).where(Attempt.tenant_id == dataset.bravo).values(answer_at=None)
        )
        db.session.commit()
        after = {u.tenant_id: u for u in reports.billing(october)}
    assert _numbers(usage[dataset.romashka]) == OCTOBER["romashka"]
    assert _numbers(usage[dataset.bravo]) == OCTOBER["bravo"]
    assert _numbers(usage[dataset.zeta]) == OCTOBER["zeta"]
    assert [_numbers(u) for _, u in months] == [
        data.NOVEMBER_ROMASHKA,
        OCTOBER["romashka"],
        data.SEPTEMBER_ROMASHKA,
    ]
    assert _numbers(after[dataset.bravo]) == OCTOBER["bravo"]  # read from the roll-up


def test_one_tenant_month_by_month(app, dataset):
    from webapp.staff import reports

    with app.app_context():
        months = reports.tenant_months(dataset.romashka, datetime(2026, 11, 1, tzinfo=UTC), 3)
    assert [(start.strftime("%Y-%m"), _numbers(u)) for start, u in months] == [
        ("2026-11", data.NOVEMBER_ROMASHKA),
        ("2026-10", OCTOBER["romashka"]),
        ("2026-09", data.SEPTEMBER_ROMASHKA),
    ]


def test_the_billing_page_lists_tenants_with_totals(staff, dataset):
    page = staff.get("/staff/billing?month=2026-10").get_data(as_text=True)
    assert ROMASHKA in page and "Bravo Ltd" in page and "Zeta" in page
    total = page[page.index('<tr class="total">') :]
    cells = [c.split("</th>")[0] for c in total.split("<th>")[2:8]]
    # minutes, (no total by campaign: campaigns are a tenant's), seconds
    assert cells == ["7", "5", "3", "7", "", "306"]
    assert OCTOBER_TOTAL == (7, 5, 3, 306, 7)


def test_the_csv_export_opens_with_cyrillic_names_and_right_columns(staff, dataset):
    from webapp.staff.reports import CSV_COLUMNS

    response = staff.get("/staff/billing.csv?month=2026-10")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="autocall-billing-2026-10.csv"' in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: spreadsheets read UTF-8 then
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_name = {row["tenant"]: row for row in rows}
    assert set(by_name) == {ROMASHKA, "Bravo Ltd", "Zeta"}
    romashka = by_name[ROMASHKA]
    assert romashka["month"] == "2026-10" and int(romashka["tenant_id"]) == dataset.romashka
    numbers = ("attempts", "picked_up", "transferred", "billed_seconds", "billable_minutes")
    for key, name in (("romashka", ROMASHKA), ("bravo", "Bravo Ltd"), ("zeta", "Zeta")):
        assert tuple(int(by_name[name][n]) for n in numbers) == OCTOBER[key]
    # The last column: each campaign's key and minutes, the default first; adding up.
    assert [
        by_name[name]["billable_minutes_by_campaign"] for name in (ROMASHKA, "Bravo Ltd", "Zeta")
    ] == ["default=1; tv=5", "default=1", ""]


def test_a_formula_in_a_tenant_name_stays_text(app, staff):
    from webapp.services.accounts import create_tenant_with_admin

    with app.app_context():
        create_tenant_with_admin("=HYPERLINK(1)", "admin@formula.example", "a long password")
    body = staff.get("/staff/billing.csv").get_data().decode("utf-8-sig")
    assert next(iter(csv.DictReader(io.StringIO(body))))["tenant"] == "'=HYPERLINK(1)"


def test_a_tenant_page_shows_its_months(staff, dataset):
    page = staff.get(f"/staff/billing/{dataset.romashka}?month=2026-11").get_data(as_text=True)
    assert ROMASHKA in page
    row = page[page.index('data-month="2026-10"') :].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in re.split(r"<td[^>]*>", row)[2:]]
    assert cells == ["5", "4", "2", "6", "Default: 1 · ТВ-реклама: 5", "246"]
    assert staff.get("/staff/billing/999999").status_code == 404


@pytest.mark.parametrize("month", ["2026-13", "26-10", "october", "2026-1"])
def test_a_wrong_month_is_a_clear_error(staff, month):
    response = staff.get(f"/staff/billing?month={month}")
    assert response.status_code == 400
    assert "The month must look like 2026-11." in response.get_data(as_text=True)


def test_months_are_utc_calendar_months():
    from webapp.staff.reports import month_start, next_month, previous_month

    start = month_start("2026-12")
    assert start == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month(start) == datetime(2027, 1, 1, tzinfo=UTC)
    assert previous_month(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2025, 12, 1, tzinfo=UTC)
    now = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    assert month_start(None, now) == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("rolled", [False, True])
def test_the_minutes_of_each_campaign_beside_the_total(app, dataset, rolled):
    """Each campaign's billable minutes, from the raw attempts and from the roll-up (rolled
    up to 15 October 12:00 UTC: one of «ТВ-реклама»'s calls is in the roll-up, the other
    raw), add up to the tenant's total, month by month too."""
    from webapp.services.rollup import roll_up_all
    from webapp.staff import reports

    october, november = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    with app.app_context():
        if rolled:
            roll_up_all(now=datetime(2026, 10, 15, 12, 15, tzinfo=UTC))
        usage = {u.tenant_id: u for u in reports.billing(october)}
        months = reports.tenant_months(dataset.romashka, november, 3)
    default, tv = data.OCTOBER_BY_CAMPAIGN["romashka"]
    romashka = usage[dataset.romashka]
    assert romashka.minutes_by_campaign == {
        dataset.romashka_default: default,
        dataset.romashka_tv: tv,
    }
    assert sum(romashka.minutes_by_campaign.values()) == romashka.billable_minutes
    assert usage[dataset.bravo].minutes_by_campaign == {dataset.bravo_default: 1}
    assert usage[dataset.zeta].minutes_by_campaign == {}
    assert [u.minutes_by_campaign for _, u in months] == [
        {dataset.romashka_default: 1},  # November
        {dataset.romashka_default: default, dataset.romashka_tv: tv},
        {dataset.romashka_default: 0},  # September: one call, not picked up
    ]


def test_the_billing_page_shows_each_campaigns_minutes(staff, dataset):
    page = staff.get("/staff/billing?month=2026-10").get_data(as_text=True)
    cells = dict(
        re.findall(r'data-tenant="(\d+)">.*?<td data-by-campaign>([^<]*)</td>', page, re.S)
    )
    assert cells == {
        str(dataset.romashka): "Default: 1 · ТВ-реклама: 5",
        str(dataset.bravo): "Default: 1",
        str(dataset.zeta): "",
    }
    russian = staff.get("/staff/billing?month=2026-10", headers={"Accept-Language": "ru"})
    assert "По кампаниям, минуты" in russian.get_data(as_text=True)
