"""Platform staff in a real browser: billing for a month (the small fixed data set of
tests/webapp/staff/data.py), the CSV download for accounting, the ops page, in English and
Russian."""

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_portal import page, served  # noqa: F401  (fixtures)
from tests.conftest import PASSWORD
from tests.webapp.staff import data


def test_staff_read_billing_download_the_csv_and_open_ops(served, page):  # noqa: F811
    portal, app = served
    dataset = data.load(app)
    from webapp.services.accounts import create_staff

    with app.app_context():
        create_staff("ops@autocall.example", PASSWORD)

    page.goto(f"{portal}/login")
    page.fill("input[name=email]", "ops@autocall.example")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))

    page.get_by_role("link", name="Billing").first.click()
    page.fill("input[name=month]", "2026-10")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/staff/billing\?month=2026-10$"))
    expect(page.get_by_role("heading", name="Billing for 2026-10")).to_be_visible()
    romashka = page.locator(f"tr[data-tenant='{dataset.romashka}']")
    expect(romashka).to_contain_text(data.ROMASHKA)
    expect(romashka.locator("td")).to_have_text(
        [data.ROMASHKA, "5", "4", "2", "6", "Default: 1 · ТВ-реклама: 5", "246"]
    )
    expect(page.locator("tr.total th")).to_have_text(["Total", "7", "5", "3", "7", "", "306"])

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV for accounting").click()
    assert download.value.suggested_filename == "autocall-billing-2026-10.csv"
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = {r["tenant"]: r for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}
    assert rows[data.ROMASHKA]["billable_minutes"] == "6"
    assert rows[data.ROMASHKA]["billable_minutes_by_campaign"] == "default=1; tv=5"

    page.get_by_role("link", name=data.ROMASHKA).click()
    expect(page.locator("tr[data-month='2026-10'] td")).to_have_text(
        ["2026-10", "5", "4", "2", "6", "Default: 1 · ТВ-реклама: 5", "246"]
    )

    page.get_by_role("link", name="Ops").first.click()
    expect(page.get_by_role("heading", name="Queues and workers")).to_be_visible()
    expect(page.locator(f"tr[data-tenant='{dataset.bravo}']")).to_contain_text("not running")
    expect(page.locator("tr[data-queue='engines']")).to_be_visible()

    page.get_by_role("link", name="Русский").click()
    expect(page.get_by_role("heading", name="Очереди и обработчики")).to_be_visible()
    page.get_by_role("link", name="Расчёты").first.click()
    expect(page.locator("#billing th").first).to_have_text("Компания")
