"""The portal in a real browser: Debian's Chromium driven by Playwright, against the portal
served for real (migrated SQLite database, CSRF on, the real Redis).

A new company signs up, fills its dial format wrongly and then rightly (watching the live
preview), and adds an operator.
"""

import re
import threading

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, app_config

CHROMIUM = "/usr/bin/chromium"  # Debian's package; ./dev test installs it
#: Flags for a headless Chromium as root on a machine without outside network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture
def portal(tmp_path):
    """The base URL of the portal served on 127.0.0.1 from a freshly migrated database."""
    from webapp import create_app
    from webapp.cli import upgrade_database

    config = app_config(f"sqlite:///{tmp_path / 'portal.db'}")
    upgrade_database(config)
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page(tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US")
        page.set_default_timeout(10_000)
        yield page
        page.screenshot(path=str(tmp_path / "last-page.png"), full_page=True)
        browser.close()


def test_sign_up_set_the_dial_format_and_add_an_operator(portal, page):
    page.goto(f"{portal}/signup")
    page.fill("input[name=company]", "Acme Call Centre")
    page.fill("input[name=email]", "admin@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("form:has(input[name=company]) button[type=submit]")
    expect(page).to_have_url(re.compile(r"/settings/sip$"))

    page.goto(f"{portal}/settings/formats")
    dial = page.locator("input[name=dial_format]")
    dial.fill("{phone}@{host}")
    expect(page.locator("#preview-dial")).to_contain_text("Unknown macro {phone}")
    page.click("#formats-form button[type=submit]")
    expect(page.locator(".error").first).to_contain_text("Unknown macro {phone}")

    page.locator("input[name=dial_format]").fill("8{number}@{host}:{port}")
    expect(page.locator("#preview-dial")).to_contain_text("sip:8")
    page.click("#formats-form button[type=submit]")
    expect(page.get_by_text("The formats are saved.")).to_be_visible()
    expect(page.locator("input[name=dial_format]")).to_have_value("8{number}@{host}:{port}")

    page.goto(f"{portal}/operators/new")
    page.fill("input[name=name]", "Olga Ivanova")
    page.fill("input[name=extension]", "101")
    page.fill("input[name=email]", "olga@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=extension]) button[type=submit]")
    expect(page).to_have_url(re.compile(r"/operators/?$"))
    expect(page.get_by_text("Operator Olga Ivanova is added.")).to_be_visible()
    row = page.locator("tr", has=page.get_by_role("link", name="Olga Ivanova"))
    expect(row).to_contain_text("101")
    row.get_by_role("button", name="Deactivate").click()
    row = page.locator("tr", has=page.get_by_role("link", name="Olga Ivanova"))
    expect(row.get_by_role("button", name="Activate")).to_be_visible()
