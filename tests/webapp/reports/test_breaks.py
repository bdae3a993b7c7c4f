"""Breaks in the operators report: time in each reason per operator and local day, the
times worked out by hand below (the company in Moscow, UTC+3 all year)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from webapp.extensions import db
from webapp.models import Operator, Tenant
from webapp.services import accounts, breaks


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def cells(page: str, operator_id: int, day: str) -> dict[str, str]:
    row = re.search(
        rf'<tr data-operator="{operator_id}" data-day="{day}">(.*?)</tr>', page, re.DOTALL
    )
    assert row, (operator_id, day)
    found = dict(re.findall(r'<td data-reason="([^"]+)">([^<]*)</td>', row.group(1)))
    found["total"] = re.search(r"<td data-total>([^<]*)</td>", row.group(1)).group(1)
    return {reason: text for reason, text in found.items() if text}


def test_breaks_show_in_the_operators_report_with_hand_computed_times(app, client, auth, tenant_a):
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        tenant.time_zone = "Europe/Moscow"
        tenant.break_reasons = "Coaching"
        second = accounts.create_operator(
            tenant,
            name="Boris",
            email="boris@alpha.example",
            extension="102",
            password="x" * 12,
            team_id=None,
        )
        db.session.commit()
        anna, boris = tenant_a.operator_id, second.id
        db.session.get(Operator, anna).name = "Anna"
        db.session.commit()
        # Anna. 9 Nov 20:50-21:10 UTC = 23:50-00:10 in Moscow: 10 minutes on 10 Nov.
        breaks.start(tenant, anna, "meeting", now=at(9, 20, 50))
        breaks.back_on_line(tenant, anna, now=at(9, 21, 10))
        # 10 Nov: lunch 12:00-12:45 and 16:00-16:10 in Moscow: 55 minutes.
        breaks.start(tenant, anna, "lunch", now=at(10, 9))
        breaks.back_on_line(tenant, anna, now=at(10, 9, 45))
        breaks.start(tenant, anna, "lunch", now=at(10, 13))
        breaks.back_on_line(tenant, anna, now=at(10, 13, 10))
        # 23:30-00:30 in Moscow, the company's own reason: 30 minutes on each day.
        breaks.start(tenant, anna, "Coaching", now=at(10, 20, 30))
        breaks.back_on_line(tenant, anna, now=at(10, 21, 30))
        # 11 Nov: the end of her shift is no break...
        breaks.start(tenant, anna, "end_of_shift", now=at(11, 5))
        # ...and a training never ended counts for 8 hours at most: 09:00-17:00.
        breaks.start(tenant, anna, "training", now=at(11, 6))
        # Boris: a meeting 11 Nov 10:00-10:20:30 in Moscow, ended by going off line again
        # for lunch, back on line at 00:05 the next day: 8 hours counted, 10:20:30-18:20:30.
        breaks.start(tenant, boris, "meeting", now=at(11, 7))
        breaks.start(tenant, boris, "lunch", now=datetime(2026, 11, 11, 7, 20, 30, tzinfo=UTC))
        # Before the period (8 Nov) and after it (12 Nov): not counted.
        breaks.back_on_line(tenant, boris, now=at(11, 21, 5))
        breaks.start(tenant, boris, "lunch", now=at(8, 9))
        breaks.back_on_line(tenant, boris, now=at(8, 10))
        breaks.start(tenant, boris, "lunch", now=at(11, 21, 0))
        breaks.back_on_line(tenant, boris, now=at(11, 22, 0))

    auth.login(tenant_a.supervisor_email)
    page = client.get("/reports/operators?from=2026-11-10&to=2026-11-11").get_data(as_text=True)
    assert cells(page, anna, "2026-11-10") == {
        "meeting": "10:00",
        "lunch": "55:00",
        "Coaching": "30:00",
        "total": "1:35:00",
    }
    assert cells(page, anna, "2026-11-11") == {
        "Coaching": "30:00",
        "training": "8:00:00",
        "total": "8:30:00",
    }
    assert cells(page, boris, "2026-11-11") == {
        "meeting": "20:30",
        "lunch": "8:00:00",
        "total": "8:20:30",
    }
    assert 'data-day="2026-11-09"' not in page and 'data-day="2026-11-12"' not in page
    assert "end_of_shift" not in page
    # The default reasons in the viewer's language, the company's own as written.
    header = re.search(r"<table data-breaks>\s*<thead>(.*?)</thead>", page, re.DOTALL).group(1)
    assert re.findall(r"<th>([^<]*)</th>", header) == [
        "Day",
        "Operator",
        "Lunch",
        "Training",
        "Meeting",
        "Coaching",
        "Total",
    ]
    client.get("/lang/ru")
    page = client.get("/reports/operators?from=2026-11-10&to=2026-11-11").get_data(as_text=True)
    header = re.search(r"<table data-breaks>\s*<thead>(.*?)</thead>", page, re.DOTALL).group(1)
    assert re.findall(r"<th>([^<]*)</th>", header)[2:6] == [
        "Обед",
        "Обучение",
        "Совещание",
        "Coaching",
    ]
