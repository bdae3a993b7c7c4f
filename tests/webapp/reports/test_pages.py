"""The report pages on the fixed data set (tests/webapp/reports/dataset.py): the figures as
shown, the call log's filters and paging, the CSV export read back, a call's timeline, the
period's errors, Russian, and isolation from the other tenant's identical data."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.webapp.reports import dataset
from webapp.reports import views
from webapp.services import rollup

WEEKEND = {"from": "2026-10-24", "to": "2026-10-25"}


@pytest.fixture
def data(app, tenant_a, tenant_b):
    built = dataset.build(app, tenant_a.id)
    dataset.build(app, tenant_b.id, suffix=" B")
    with app.app_context():
        rollup.roll_up_all(now=dataset.at(26, 0))  # partly rolled up: raw rows after 25 12:00
    return built


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return client


def figure(page: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', page).group(1)


def test_the_summary_page(admin, data):
    page = admin.get("/reports/", query_string=WEEKEND).get_data(as_text=True)
    shown = {
        name: figure(page, name)
        for name in (
            "attempts",
            "picked_up",
            "transferred",
            "no_answer",
            "busy",
            "unavailable",
            "technical_error",
            "no_free_operator",
            "abandon_rate",
            "contact_rate",
            "average_ring",
            "average_talk",
            "reached",
            "exhausted",
            "very_short",
        )
    }
    assert shown == {
        "attempts": "9",
        "picked_up": "6",
        "transferred": "3",
        "no_answer": "1",
        "busy": "1",
        "unavailable": "1",
        "technical_error": "2",
        "no_free_operator": "1",
        "abandon_rate": "16.7 %",
        "contact_rate": "66.7 %",
        "average_ring": "0:08",
        "average_talk": "1:02",
        "reached": "2",
        "exhausted": "1",
        "very_short": "1",
    }
    assert "<svg" in page and "Europe/Berlin" in page
    assert "under 10 s" in page
    # The chart's bars are outcomes: `answered` is the transferred, not all who picked up.
    assert "<title>answered: 3</title>" in page
    assert "<title>no answer: 1</title>" in page


def test_the_summary_of_one_local_day(admin, data):
    page = admin.get("/reports/", query_string={"from": "2026-10-25", "to": "2026-10-25"})
    assert figure(page.get_data(as_text=True), "attempts") == "7"


def test_bad_dates_are_said_and_the_last_7_days_shown(admin, data):
    page = admin.get("/reports/", query_string={"from": "24.10.2026"}).get_data(as_text=True)
    assert "Write dates as YYYY-MM-DD" in page
    assert figure(page, "attempts") == "1"  # the fixture's own attempt, made today


def test_the_operators_page(admin, data):
    page = admin.get("/reports/operators", query_string=WEEKEND).get_data(as_text=True)
    row = re.search(rf'data-operator="{data.o1}">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    # received, failed, on line 6 h, free 6 h - 3 min 20 s, with customers 3 min, in wrap-up
    # 20 s, occupancy (3 min 20 s of 6 h), very short
    assert cells[1:] == ["2", "1", "6:00:00", "5:56:40", "3:00", "0:20", "0.9 %", "0"]
    assert "Ирина Петрова" in page and "Oleg B" not in page


def test_the_answers_page(admin, data):
    page = admin.get("/reports/answers", query_string=WEEKEND).get_data(as_text=True)
    assert 'data-cell="7-2">1/2<' in page  # both 02:30s of the Sunday DST change
    assert 'data-cell="6-10">1/2<' in page
    assert re.search(r'data-bucket="2026-10-25"><td>2026-10-25</td><td>7</td><td>5</td>', page)
    weeks = admin.get("/reports/answers", query_string={**WEEKEND, "step": "week"})
    assert 'data-bucket="2026-10-19"><td>2026-10-19</td><td>9</td>' in weeks.get_data(as_text=True)


def test_a_half_hour_zone_labels_its_hours(app, admin, data):
    from webapp.extensions import db
    from webapp.models import Tenant

    with app.app_context():
        db.session.get(Tenant, data.tenant_id).time_zone = "Asia/Kolkata"
        db.session.commit()
    page = admin.get("/reports/answers", query_string=WEEKEND).get_data(as_text=True)
    assert "Each hour starts at :30" in page and ">00:30<" in page


def test_the_failed_transfers_page(admin, data):
    page = admin.get("/reports/failed-transfers", query_string=WEEKEND).get_data(as_text=True)
    assert "The PBX does not support transfers (REFER)" in page
    assert "The operator&#39;s phone cannot be reached" in page
    assert "Oleg B" not in page


def calls_shown(page: str) -> list[int]:
    return [int(value) for value in re.findall(r'data-attempt="(\d+)"', page)]


def test_the_call_log_and_its_filters(admin, data):
    a = data.attempts
    everything = calls_shown(admin.get("/reports/calls", query_string=WEEKEND).get_data(True))
    assert everything == [
        a[k] for k in ("A10", "A9", "A8", "A7", "A6", "A5", "A4", "A3", "A2", "A1")
    ]
    cases = [
        ({"outcome": "answered"}, ["A10", "A5", "A2"]),
        ({"detail": "no_free_operator"}, ["A3"]),
        ({"operator": data.o2}, ["A8", "A5"]),
        ({"team": data.team}, ["A10", "A6", "A2"]),  # O1's team
        ({"lead": data.leads["L5"]}, ["A8", "A7"]),
        ({"sip": 486}, ["A4"]),
        ({"sip": 480}, ["A8"]),  # the transfer's SIP code counts too
        ({"from": "2026-10-24", "to": "2026-10-24"}, ["A2", "A1"]),
        ({"operator": "not a number"}, list(reversed([f"A{n}" for n in range(1, 11)]))),
    ]
    for query, expected in cases:
        page = admin.get("/reports/calls", query_string={**WEEKEND, **query}).get_data(True)
        assert calls_shown(page) == [a[k] for k in expected], query


def test_the_twice_happening_hour_says_which_it_is(admin, data):
    page = admin.get("/reports/calls", query_string=WEEKEND).get_data(as_text=True)
    assert "2026-10-25 02:30:00 CEST" in page and "2026-10-25 02:30:00 CET" in page
    assert "2026-10-25 10:15:00<" in page  # other hours need no zone


def test_the_call_log_pages_by_keyset(admin, data, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    seen, url, pages = [], "/reports/calls?from=2026-10-24&to=2026-10-25", 0
    while url:
        page = admin.get(url).get_data(as_text=True)
        seen += calls_shown(page)
        pages += 1
        found = re.search(r'href="([^"]+)" rel="next"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert pages == 4 and len(seen) == 10 and len(set(seen)) == 10
    assert seen == sorted(seen, reverse=True)  # ids grow with time in this data set


def read_csv(response, delimiter=","):
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=delimiter))


def test_the_csv_export_is_what_is_filtered(admin, data):
    response = admin.get("/reports/calls.csv", query_string={**WEEKEND, "operator": data.o1})
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == [
        "Attempt",
        "Started",
        "Lead",
        "CRM id",
        "Lead name",
        "Number",
        "Operator",
        "Outcome",
        "Detail",
        "SIP code",
        "SIP reason",
        "Ringing",
        "Picked up",
        "REFER",
        "Refer-To",
        "Transfer",
        "Transfer SIP code",
        "Transfer SIP reason",
        "Talk ended",
        "Wrap-up ended",
        "Ended",
        "Ring seconds",
        "Talk seconds",
        "Wrap-up seconds",
        "Operator's result",
        "Comment",
        "Campaign",
    ]
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [int(row["Attempt"]) for row in body] == [data.attempts[k] for k in ("A10", "A6", "A2")]
    a2 = body[2]
    assert (a2["Started"], a2["Lead name"], a2["Operator"]) == (
        "2026-10-24 10:30:00",
        "Клиент L2",
        "Ирина Петрова",
    )
    assert (a2["Outcome"], a2["Transfer"], a2["Ring seconds"], a2["Talk seconds"]) == (
        "answered",
        "succeeded",
        "5.0",
        "120.0",
    )
    assert (a2["Talk ended"], a2["Wrap-up ended"], a2["Wrap-up seconds"]) == (
        "2026-10-24 10:32:07",
        "2026-10-24 10:32:27",
        "20.0",
    )
    assert body[0]["Wrap-up ended"] == body[0]["Wrap-up seconds"] == ""  # A10: no Finish
    assert body[1]["Detail"] == "the PBX refused the transfer (REFER)"
    assert body[1]["Transfer SIP code"] == "405"
    assert [row["Campaign"] for row in body] == ["Default", "TV offer", "Default"]


def test_the_csv_export_in_russian_for_russian_excel(admin, data):
    response = admin.get(
        "/reports/calls.csv",
        query_string={**WEEKEND, "outcome": "busy"},
        headers={"Accept-Language": "ru"},
    )
    rows = read_csv(response, delimiter=";")
    assert rows[0][:3] == ["Попытка", "Начало", "Лид"] and rows[0][-1] == "Кампания"
    assert rows[1][4] == "Клиент L1" and rows[1][7] == "номер занят"
    assert rows[1][1] == "2026-10-25 02:30:00"  # the first 02:30 (CEST)


def test_the_csv_export_never_hands_a_formula_to_a_spreadsheet(app, admin, data):
    from webapp.extensions import db
    from webapp.models import Attempt, Lead, Operator

    with app.app_context():
        db.session.get(Lead, data.leads["L2"]).name = '=HYPERLINK("https://evil.example","x")'
        db.session.get(Operator, data.o1).name = "@SUM(A1:A9)"
        a2 = db.session.get(Attempt, data.attempts["A2"])
        a2.result, a2.comment = "-2+3", "+cmd|' /C calc'!A0"
        phone = db.session.get(Lead, data.leads["L2"]).phone
        db.session.commit()
    rows = read_csv(admin.get("/reports/calls.csv", query_string={**WEEKEND, "operator": data.o1}))
    a2 = next(
        dict(zip(rows[0], row, strict=True))
        for row in rows[1:]
        if row[0] == str(data.attempts["A2"])
    )
    assert a2["Lead name"] == '\'=HYPERLINK("https://evil.example","x")'
    assert a2["Operator"] == "'@SUM(A1:A9)"
    assert (a2["Operator's result"], a2["Comment"]) == ("'-2+3", "'+cmd|' /C calc'!A0")
    assert a2["Number"] == phone and phone.startswith("+1555")  # a number is data, not a formula


def test_a_call_timeline(admin, data):
    page = admin.get(f"/reports/calls/{data.attempts['A6']}").get_data(as_text=True)
    steps = re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", page
    )
    assert [step[2] for step in steps] == [
        "INVITE",
        "Ringing",
        "Answer",
        "REFER",
        "Transfer result",
        "End",
    ]
    assert steps[0][0] == "2026-10-25 10:15:00" and steps[2][1] == "+3.000 s"
    assert "405" in steps[4][3] and "does not support transfers" in steps[4][3]
    assert "Клиент L3" in page


def test_a_call_timeline_in_the_order_things_happened(admin, data):
    page = admin.get(f"/reports/calls/{data.attempts['A2']}").get_data(as_text=True)
    steps = re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", page
    )
    # Our leg ends with the transfer's result; the talk 120 s later, then Finish 20 s after.
    assert [step[2] for step in steps] == [
        "INVITE",
        "Ringing",
        "Answer",
        "REFER",
        "Transfer result",
        "End",
        "Talk ended",
        "Wrap-up ended",
    ]
    assert [step[1] for step in steps][-2:] == ["+127.000 s", "+147.000 s"]


def test_the_pages_in_russian(admin, data):
    page = admin.get("/reports/", query_string=WEEKEND, headers={"Accept-Language": "ru"})
    text = page.get_data(as_text=True)
    assert "Доля брошенных вызовов" in text and "Отчёты" in text


def test_the_other_tenant_sees_only_its_own(client, auth, tenant_b, data):
    auth.login(tenant_b.admin_email)
    page = client.get("/reports/calls", query_string=WEEKEND).get_data(as_text=True)
    assert "Клиент L1 B" in page and "Клиент L1<" not in page
    assert client.get(f"/reports/calls/{data.attempts['A6']}").status_code == 404
    # Tenant A's operator as a filter: nothing of A shows.
    page = client.get("/reports/calls", query_string={**WEEKEND, "operator": data.o1})
    assert calls_shown(page.get_data(as_text=True)) == []
    rows = read_csv(client.get("/reports/calls.csv", query_string=WEEKEND))
    assert len(rows) == 11 and all(row[4].endswith(" B") for row in rows[1:])


# --- campaigns ---------------------------------------------------------------------------


def test_the_summary_of_each_campaign(admin, data):
    page = admin.get("/reports/", query_string=WEEKEND).get_data(as_text=True)
    table = page[page.index("data-campaigns") :]
    rows = {
        int(campaign): re.findall(r"<td>([^<]*)</td>", cells)
        for campaign, cells in re.findall(r'data-campaign="(\d+)">(.*?)</tr>', table, re.S)
    }
    # attempts, picked up, transferred, abandon rate (the name is a link)
    assert rows == {
        data.default_campaign: ["4", "2", "2", "0.0 %"],
        data.tv: ["5", "4", "1", "25.0 %"],
    }
    assert table.index(f'data-campaign="{data.default_campaign}"') < table.index(
        f'data-campaign="{data.tv}"'
    )  # the default campaign first
    assert "<title>TV offer: 5</title>" in page  # the chart of attempts by campaign
    assert "TV offer B" not in page


def test_the_summary_of_one_campaign(admin, data):
    page = admin.get("/reports/", query_string={**WEEKEND, "campaign": data.tv})
    text = page.get_data(as_text=True)
    assert (figure(text, "attempts"), figure(text, "abandon_rate")) == ("5", "25.0 %")
    assert f'<option value="{data.tv}" selected>TV offer</option>' in text
    assert "data-campaigns" not in text  # one campaign: no table of campaigns
    # The report's other pages keep the campaign.
    assert f"/reports/operators?campaign={data.tv}&amp;" in text


def test_a_tenant_with_one_campaign_gets_no_table_of_campaigns(app, admin, tenant_a):
    page = admin.get("/reports/").get_data(as_text=True)
    assert "data-campaigns" not in page and 'name="campaign"' in page


def test_an_archived_campaign_is_a_choice_still(app, admin, data):
    from webapp.extensions import db
    from webapp.models import Campaign

    with app.app_context():
        db.session.get(Campaign, data.tv).state = "archived"
        db.session.commit()
    page = admin.get("/reports/calls", query_string=WEEKEND).get_data(as_text=True)
    assert f'<option value="{data.tv}" >TV offer (Archived)</option>' in page


def test_the_call_log_of_one_campaign_with_its_column(admin, data):
    a = data.attempts
    page = admin.get("/reports/calls", query_string={**WEEKEND, "campaign": data.tv})
    text = page.get_data(as_text=True)
    assert calls_shown(text) == [a[k] for k in ("A8", "A7", "A6", "A5", "A3")]
    row = re.search(rf'data-attempt="{a["A8"]}">(.*?)</tr>', text, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row)[2:4] == ["TV offer", "Oleg"]
    default = admin.get(
        "/reports/calls", query_string={**WEEKEND, "campaign": data.default_campaign}
    )
    assert calls_shown(default.get_data(as_text=True)) == [
        a[k] for k in ("A10", "A9", "A4", "A2", "A1")
    ]
    # with another filter, and the CSV of the same
    both = {**WEEKEND, "campaign": data.tv, "operator": data.o1}
    assert calls_shown(admin.get("/reports/calls", query_string=both).get_data(True)) == [a["A6"]]
    rows = read_csv(admin.get("/reports/calls.csv", query_string=both))
    assert [(row[0], row[-1]) for row in rows[1:]] == [(str(a["A6"]), "TV offer")]
    assert "campaign=" in text[text.index("data-csv") - 300 : text.index("data-csv")]


def test_the_operators_of_one_campaign(admin, data):
    page = admin.get("/reports/operators", query_string={**WEEKEND, "campaign": data.tv})
    text = page.get_data(as_text=True)
    row = re.search(rf'data-operator="{data.o1}">(.*?)</tr>', text, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    # one call of the campaign, failed; on line, free and occupancy are O1's whole
    assert cells[1:] == ["0", "1", "6:00:00", "5:56:40", "0:00", "0:00", "0.9 %", "0"]
    assert "the operator's whole" in text
    assert "data-received" not in text


def test_the_operators_calls_by_campaign(admin, data):
    text = admin.get("/reports/operators", query_string=WEEKEND).get_data(as_text=True)
    received = dict(
        re.findall(r'data-operator="(\d+)">.*?<td data-received>([^<]*)</td>', text, re.S)
    )
    assert received == {str(data.o1): "Default: 2", str(data.o2): "TV offer: 1"}


def test_when_customers_answer_in_one_campaign(admin, data):
    page = admin.get("/reports/answers", query_string={**WEEKEND, "campaign": data.tv})
    text = page.get_data(as_text=True)
    assert 'data-cell="7-2">1/1<' in text and 'data-cell="6-10"><' in text
    assert re.search(r'data-bucket="2026-10-25"><td>2026-10-25</td><td>5</td><td>4</td>', text)
    assert (
        f"step=week&amp;campaign={data.tv}" in text or f"campaign={data.tv}&amp;step=week" in text
    )


def test_when_customers_answer_by_campaign(admin, data):
    text = admin.get("/reports/answers", query_string=WEEKEND).get_data(as_text=True)
    rows = dict(re.findall(r'data-campaign="(\d+)"><th>([^<]*)</th>', text))
    assert rows == {str(data.default_campaign): "Default", str(data.tv): "TV offer"}
    tv = re.search(rf'data-campaign="{data.tv}">(.*?)</tr>', text, re.S).group(1)
    assert 'data-hour="11" title="0/1">0.0 %<' in tv and 'data-hour="3"><' in tv
    default = re.search(rf'data-campaign="{data.default_campaign}">(.*?)</tr>', text, re.S)
    assert 'data-hour="10" title="1/2">50.0 %<' in default.group(1)
    one = admin.get("/reports/answers", query_string={**WEEKEND, "campaign": data.tv})
    assert "data-campaign-hours" not in one.get_data(as_text=True)


def test_failed_transfers_by_campaign(admin, data):
    text = admin.get("/reports/failed-transfers", query_string=WEEKEND).get_data(as_text=True)
    rows = re.findall(
        r'data-campaign="(\d+)">\s*<td><a [^>]*>[^<]*</a></td>\s*<td>([^<]*)</td>', text
    )
    assert rows == [(str(data.tv), "TV offer")] * 2
    default = admin.get(
        "/reports/failed-transfers", query_string={**WEEKEND, "campaign": data.default_campaign}
    )
    assert "No transfer failed in this period." in default.get_data(as_text=True)


def test_the_campaign_filter_in_russian(admin, data):
    page = admin.get(
        "/reports/calls", query_string=WEEKEND, headers={"Accept-Language": "ru"}
    ).get_data(as_text=True)
    assert "Кампания" in page and "все кампании" in page


REPORT_PAGES = (
    "/reports/",
    "/reports/calls",
    "/reports/operators",
    "/reports/answers",
    "/reports/failed-transfers",
)


def test_another_tenants_campaign_shows_nothing(client, auth, tenant_a, tenant_b, data):
    """Tenant B's campaign as tenant A's filter (B has the same calls): every page says
    there is no such campaign and shows nothing, neither A's calls nor B's."""
    from webapp.extensions import db
    from webapp.models import Campaign

    with client.application.app_context():
        theirs = db.session.scalar(
            db.select(Campaign.id).where(
                Campaign.tenant_id == tenant_b.id, Campaign.key == "tv-dataset"
            )
        )
    auth.login(tenant_a.admin_email)
    for path in REPORT_PAGES:
        text = client.get(path, query_string={**WEEKEND, "campaign": theirs}).get_data(True)
        assert "no campaign with this id" in text, path
        assert " B<" not in text and "TV offer B" not in text, path
        # nothing of A's either (A's operators stay choices of the call log's filters)
        assert "Клиент" not in text, path
        assert "data-attempt=" not in text and "data-operator=" not in text, path
    summary = client.get("/reports/", query_string={**WEEKEND, "campaign": theirs})
    assert figure(summary.get_data(as_text=True), "attempts") == "0"
    rows = read_csv(client.get("/reports/calls.csv", query_string={**WEEKEND, "campaign": theirs}))
    assert len(rows) == 1  # the header alone
