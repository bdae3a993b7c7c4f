"""The results report (/reports/results and its CSV) on a small data set whose numbers are
worked out by hand below, on both databases: results by local day (Moscow, UTC+3, so a
call at 21:30 UTC is the next day's), by operator and by campaign, each with its share of
the answered calls; another tenant's calls, calls outside the period, unanswered calls
without a result and calls in progress count nowhere."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest

from webapp.extensions import db
from webapp.models import Attempt, Campaign, Tenant
from webapp.services.accounts import create_operator
from webapp.services.campaigns import create_campaign
from webapp.services.result_figures import results_by

PERIOD = {"from": "2026-11-01", "to": "2026-11-02"}


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def data(app, tenant_a, tenant_b) -> dict:
    """Tenant A's calls (UTC times; Moscow is 3 hours ahead):

    | # | started (UTC) | local day | campaign | operator | transfer     | result       |
    | 1 | 01 08:00      | 11-01     | default  | first    | succeeded    | Sale         |
    | 2 | 01 09:00      | 11-01     | default  | first    | succeeded    | Sale         |
    | 3 | 01 10:00      | 11-01     | default  | second   | succeeded    | Wrong number |
    | 4 | 01 11:00      | 11-01     | default  | second   | succeeded    | (none)       |
    | 5 | 01 21:30      | 11-02     | TV       | first    | unconfirmed  | Call back    |
    | 6 | 02 12:00      | 11-02     | TV       | second   | succeeded    | Thinking     |
    | 7 | 02 13:00      | 11-02     | default  | (none)   | (no answer)  | (none)       |
    | 8 | 02 14:00      | 11-02     | default  | first    | failed       | Call back    |
    | - | 10-31 20:59   | 10-31     | default  | first    | succeeded    | Sale         |
    | - | 02 21:00      | 11-03     | default  | first    | succeeded    | Sale         |
    | - | 01 15:00      | 11-01     | default  | first    | in progress  | Sale         |

    and tenant B's call 01 10:00, succeeded, Sale. The last three of A and B's are outside.
    """
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        tenant.time_zone = "Europe/Moscow"
        tv = create_campaign(tenant, "TV", "tv", None)
        tv.results = "Thinking\nCall back"
        second = create_operator(
            tenant,
            name="Second operator",
            email="second@alpha.example",
            extension="102",
            password="correct horse battery",
            team_id=None,
        )
        db.session.flush()
        default_id = db.session.scalar(
            db.select(Campaign.id).where(Campaign.tenant_id == tenant.id, Campaign.is_default)
        )
        first = tenant_a.operator_id
        rows = [
            (at(1, 8), default_id, first, "succeeded", "Sale"),
            (at(1, 9), default_id, first, "succeeded", "Sale"),
            (at(1, 10), default_id, second.id, "succeeded", "Wrong number"),
            (at(1, 11), default_id, second.id, "succeeded", None),
            (at(1, 21, 30), tv.id, first, "unconfirmed", "Call back"),
            (at(2, 12), tv.id, second.id, "succeeded", "Thinking"),
            (at(2, 13), default_id, None, None, None),
            (at(2, 14), default_id, first, "failed", "Call back"),
            (at(31, 20, 59, month=10), default_id, first, "succeeded", "Sale"),
            (at(2, 21), default_id, first, "succeeded", "Sale"),
        ]
        outcomes = {"succeeded": "answered", "unconfirmed": "answered", "failed": "technical_error"}
        for invite_at, campaign_id, operator_id, transfer, result in rows:
            call = attempt(tenant.id, tenant_a.lead_id, campaign_id, operator_id, invite_at)
            call.outcome = outcomes.get(transfer, "no_answer")
            call.transfer_result, call.result = transfer, result
            db.session.add(call)
        in_progress = attempt(tenant.id, tenant_a.lead_id, default_id, first, at(1, 15))
        in_progress.result = "Sale"
        db.session.add(in_progress)
        other = attempt(tenant_b.id, tenant_b.lead_id, None, tenant_b.operator_id, at(1, 10))
        other.outcome, other.transfer_result, other.result = "answered", "succeeded", "Sale"
        db.session.add(other)
        db.session.commit()
        return {"default": default_id, "tv": tv.id, "first": first, "second": second.id}


def attempt(tenant_id, lead_id, campaign_id, operator_id, invite_at) -> Attempt:
    return Attempt(
        tenant_id=tenant_id,
        lead_id=lead_id,
        campaign_id=campaign_id,
        operator_id=operator_id,
        dialed_uri="sip:+15550100@pbx.example",
        invite_at=invite_at,
    )


def figures_of(app, tenant_id: int, by: str, campaign_id: int | None = None) -> dict:
    from zoneinfo import ZoneInfo

    from webapp.services.figures import Period

    with app.app_context():
        period = Period(
            datetime(2026, 11, 1).date(), datetime(2026, 11, 2).date(), ZoneInfo("Europe/Moscow")
        )
        rows = results_by(tenant_id, period.start, period.end, by, period.zone, campaign_id)
        return {row.key: (row.answered, row.results, row.no_result) for row in rows}


def test_results_by_day_operator_and_campaign_worked_out_by_hand(app, tenant_a, data):
    day_1, day_2 = datetime(2026, 11, 1).date(), datetime(2026, 11, 2).date()
    assert figures_of(app, tenant_a.id, "day") == {
        day_1: (4, {"Sale": 2, "Wrong number": 1}, 1),
        day_2: (2, {"Call back": 2, "Thinking": 1}, 0),
    }
    assert figures_of(app, tenant_a.id, "operator") == {
        data["first"]: (3, {"Sale": 2, "Call back": 2}, 0),
        data["second"]: (3, {"Wrong number": 1, "Thinking": 1}, 1),
    }
    assert figures_of(app, tenant_a.id, "campaign") == {
        data["default"]: (4, {"Sale": 2, "Wrong number": 1, "Call back": 1}, 1),
        data["tv"]: (2, {"Call back": 1, "Thinking": 1}, 0),
    }
    assert figures_of(app, tenant_a.id, "day", data["tv"]) == {
        day_2: (2, {"Call back": 1, "Thinking": 1}, 0),
    }


def cells(page: str, key: str) -> list[str]:
    row = re.search(rf'<tr data-key="{key}">(.*?)</tr>', page, re.S).group(1)
    return [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_the_page_shows_counts_and_shares(app, client, auth, tenant_a, data):
    auth.login(tenant_a.admin_email)
    page = client.get("/reports/results", query_string=PERIOD).get_data(as_text=True)
    # The default campaign's order (Sale, Call back, Wrong number), then Thinking.
    heads = re.findall(r'<th data-result="([^"]+)">', page)
    assert heads == ["Sale", "Call back", "Wrong number", "Thinking"]
    assert cells(page, "2026-11-01") == [
        "4",
        "2 <small>50.0 %</small>",
        "0 <small>0.0 %</small>",
        "1 <small>25.0 %</small>",
        "0 <small>0.0 %</small>",
        "1",
    ]
    assert cells(page, "2026-11-02")[:3] == [
        "2",
        "0 <small>0.0 %</small>",
        "2 <small>100.0 %</small>",
    ]
    total = re.search(r"<tr data-total>(.*?)</tr>", page, re.S).group(1)
    assert "33.3 %" in total and "16.7 %" in total and "<svg" in page
    by_operator = client.get(
        "/reports/results", query_string={**PERIOD, "by": "operator"}
    ).get_data(as_text=True)
    assert "Second operator" in by_operator
    assert cells(by_operator, str(data["second"]))[0] == "3"
    by_campaign = client.get(
        "/reports/results", query_string={**PERIOD, "by": "campaign"}
    ).get_data(as_text=True)
    assert "TV" in by_campaign and cells(by_campaign, str(data["tv"]))[0] == "2"


def test_the_csv_in_russian(app, client, auth, tenant_a, data):
    client.get("/lang/ru")
    auth.login(tenant_a.admin_email)
    page = client.get("/reports/results", query_string=PERIOD).get_data(as_text=True)
    assert "Продажа" in page and "Ошибочный номер" in page and "Итого" in page
    answer = client.get("/reports/results.csv", query_string={**PERIOD, "by": "campaign"})
    text = answer.get_data(as_text=True)
    assert text.startswith("\ufeff") and answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == [
        "Кампания",
        "Отвечено",
        "Продажа",
        "Продажа, % от отвеченных",
        "Перезвонить",
        "Перезвонить, % от отвеченных",
        "Ошибочный номер",
        "Ошибочный номер, % от отвеченных",
        "Thinking",
        "Thinking, % от отвеченных",
        "Без результата",
    ]
    assert rows[1] == ["Default", "4", "2", "50.0", "1", "25.0", "1", "25.0", "0", "0.0", "1"]
    assert rows[2] == ["TV", "2", "0", "0.0", "1", "50.0", "0", "0.0", "1", "50.0", "0"]
    assert rows[3] == ["Итого", "6", "2", "33.3", "2", "33.3", "1", "16.7", "1", "16.7", "1"]


def test_a_period_without_results_says_so_and_other_roles_are_refused(
    app, client, auth, tenant_a, data
):
    auth.login(tenant_a.admin_email)
    empty = client.get("/reports/results", query_string={"from": "2025-01-01", "to": "2025-01-02"})
    assert "No call was answered and no result recorded" in empty.get_data(as_text=True)
    auth.logout()
    auth.login(tenant_a.operator_email)
    assert client.get("/reports/results").status_code == 403
    assert client.get("/reports/results.csv").status_code == 403
