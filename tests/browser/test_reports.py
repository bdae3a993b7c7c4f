"""The reports in a real browser (Chromium through Playwright, the portal served for real):
an admin opens each report from the menu on the fixed data set of tests/webapp/reports, sees
the charts and the figures, filters the call log, opens a call's timeline, downloads the CSV
export and reads it back, and switches to Russian."""

import csv
import io
import re

from playwright.sync_api import expect

from tests.browser.test_portal import page, served  # noqa: F401  (fixtures)
from tests.conftest import PASSWORD, make_tenant
from tests.webapp.reports import dataset
from webapp.services import rollup

WEEKEND = "from=2026-10-24&to=2026-10-25"


def test_an_admin_opens_each_report(served, page, tmp_path):  # noqa: F811
    portal, app = served
    tenant = make_tenant(app, "Alpha")
    data = dataset.build(app, tenant.id)
    with app.app_context():
        rollup.roll_up_all(now=dataset.at(26, 0))

    page.goto(f"{portal}/login")
    page.fill("input[name=email]", tenant.admin_email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=password]) button[type=submit]")
    page.get_by_role("link", name="Reports").click()
    expect(page).to_have_url(re.compile(r"/reports/$"))

    # The summary: pick the weekend with the date fields.
    page.fill("input[name=from]", "2026-10-24")
    page.fill("input[name=to]", "2026-10-25")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("[data-figure=attempts]")).to_have_text("9")
    expect(page.locator("[data-figure=abandon_rate]")).to_have_text("16.7 %")
    expect(page.locator("svg.chart").first).to_be_visible()
    # Each campaign of the data set apart, and the summary of one.
    expect(page.locator(f"[data-campaigns] tr[data-campaign='{data.tv}']")).to_contain_text(
        "25.0 %"
    )
    page.select_option("select[name=campaign]", str(data.tv))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("[data-figure=attempts]")).to_have_text("5")
    page.select_option("select[name=campaign]", "")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("[data-figure=attempts]")).to_have_text("9")

    page.locator(".report-nav").get_by_role("link", name="Operators").click()
    row = page.locator(f"tr[data-operator='{data.o1}']")
    expect(row).to_contain_text("Ирина Петрова")
    expect(row).to_contain_text("6:00:00")

    page.locator(".report-nav").get_by_role("link", name="When customers answer").click()
    expect(page.locator("svg.chart rect[data-day='7'][data-hour='2']")).to_have_count(1)
    page.get_by_text("The numbers: picked up of attempts").click()
    expect(page.locator("[data-cell='7-2']")).to_have_text("1/2")
    page.get_by_role("link", name="by week").click()
    expect(page.locator("[data-bucket='2026-10-19']")).to_contain_text("9")

    page.locator(".report-nav").get_by_role("link", name="Failed transfers").click()
    expect(page.get_by_text("The PBX does not support transfers (REFER)")).to_be_visible()

    page.locator(".report-nav").get_by_role("link", name="Call log").click()
    expect(page.locator("tr[data-attempt]")).to_have_count(10)
    page.select_option("select[name=outcome]", "busy")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr[data-attempt]")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export to CSV").click()
    text = download.value.path().read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 2 and rows[1][4] == "Клиент L1"

    page.locator("tr[data-attempt]").get_by_role("link", name="Timeline").click()
    expect(page.locator("[data-timeline]")).to_contain_text("INVITE")
    expect(page.locator("[data-timeline]")).to_contain_text("486")

    page.goto(f"{portal}/reports/?{WEEKEND}")
    page.get_by_role("link", name="Русский").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Отчёты")
    expect(page.locator("[data-figure=attempts]")).to_have_text("9")
