"""The portal in a real browser: Debian's Chromium driven by Playwright, against the portal
served for real (migrated SQLite database, CSRF on, the real Redis).

A new company signs up, fills its dial format wrongly and then rightly (watching the live
preview), and adds an operator; another imports a CSV file with a bad row (a real RQ worker
runs the import while the page watches its progress); an admin signs out and in again (a
wrong password first); an admin makes an API token, a CRM (plain urllib) posts a lead with
it, and the lead is in the list; an admin signs in with single sign-on through an OpenID
Connect provider (tests/oidc_provider.py) served beside the portal.
"""

import json
import re
import threading
import urllib.request
from contextlib import contextmanager
from dataclasses import replace

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, app_config
from tests.oidc_provider import OpenIDProvider
from tests.webapp.jobs import run_jobs

CHROMIUM = "/usr/bin/chromium"  # Debian's package; ./dev test installs it
#: Flags for a headless Chromium as root on a machine without outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def serve(tmp_path, **overrides):
    """The portal served on 127.0.0.1 from a freshly migrated database: (base URL, app)."""
    from webapp import create_app
    from webapp.cli import upgrade_database

    config = app_config(
        f"sqlite:///{tmp_path / 'portal.db'}", upload_dir=str(tmp_path / "up"), **overrides
    )
    upgrade_database(config)
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # Links in mail and the single sign-on callback lead to where the portal is served.
    app.extensions["autocall.config"] = replace(app.extensions["autocall.config"], public_url=base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, app
    server.shutdown()
    thread.join(5)


@pytest.fixture
def served(tmp_path):
    with serve(tmp_path) as served:
        yield served


@pytest.fixture
def portal(served):
    """The base URL of the portal."""
    return served[0]


@pytest.fixture
def page(tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="en-US")
        page.set_default_timeout(10_000)
        yield page
        page.screenshot(path=str(tmp_path / "last-page.png"), full_page=True)
        browser.close()


def sign_up(portal, page, company: str = "Acme Call Centre") -> None:
    page.goto(f"{portal}/signup")
    page.fill("input[name=company]", company)
    page.fill("input[name=email]", "admin@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("form:has(input[name=company]) button[type=submit]")
    expect(page).to_have_url(re.compile(r"/settings/sip$"))


def test_sign_up_add_a_sip_account_set_its_dial_format_and_add_an_operator(portal, page):
    sign_up(portal, page)

    expect(page.locator("#no-sip-accounts")).to_be_visible()
    page.get_by_role("link", name="New SIP account").click()
    page.fill("input[name=name]", "Main trunk")
    page.fill("input[name=host]", "pbx.acme.example")
    page.fill("input[name=username]", "dialer")
    page.fill("input[name=password]", "pbx-secret")
    page.get_by_role("button", name="Add the SIP account").click()
    expect(page.get_by_text("The SIP account Main trunk is saved.")).to_be_visible()
    expect(page.locator("#used-by")).to_contain_text("Default")  # the first goes to every one
    expect(page.get_by_text("A password is saved.")).to_be_visible()

    page.get_by_role("link", name="Dial and REFER formats").click()
    dial = page.locator("input[name=dial_format]")
    dial.fill("{phone}@{host}")
    expect(page.locator("#preview-dial")).to_contain_text("Unknown macro {phone}")
    page.click("#formats-form button[type=submit]")
    expect(page.locator(".error").first).to_contain_text("Unknown macro {phone}")

    page.locator("input[name=dial_format]").fill("8{number}@{host}:{port}")
    expect(page.locator("#preview-dial")).to_contain_text("sip:8")
    expect(page.locator("#preview-dial")).to_contain_text("@pbx.acme.example:5060")
    page.click("#formats-form button[type=submit]")
    expect(page.get_by_text("The formats of Main trunk are saved.")).to_be_visible()
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


def test_import_a_csv_file_with_a_bad_row(served, page):
    portal, app = served
    sign_up(portal, page)
    page.goto(f"{portal}/leads/")
    page.get_by_role("link", name="Import from a CSV file").click()
    content = (
        "Phone;Name;Order\n+1 212 555 0101;Mary Major;shoes\n12;Bad Row;hat\n"
        "+1 212 555 0102;Ann Lee;coat\n"
    )
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "leads.csv", "mimeType": "text/csv", "buffer": content.encode()}],
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("select[name=col0]")).to_have_value("phone")
    expect(page.locator("select[name=col1]")).to_have_value("name")
    expect(page.locator(".preview-rows")).to_contain_text("'12' cannot be a phone number")
    page.get_by_role("button", name="Import 3 rows").click()
    expect(page).to_have_url(re.compile(r"/leads/import/jobs/"))
    expect(page.locator("progress")).to_be_visible()

    run_jobs(app)  # a real RQ worker takes the job; the page polls and shows the report
    expect(page.locator("#import-summary")).to_contain_text("Imported 2 of 3 rows.")
    expect(page.locator("#bad-rows")).to_contain_text("3")
    expect(page.locator("#bad-rows")).to_contain_text("cannot be a phone number")

    page.get_by_role("link", name="Go to the leads").click()
    expect(page.get_by_role("link", name="+12125550101")).to_be_visible()
    expect(page.get_by_role("link", name="+12125550102")).to_be_visible()
    expect(page.locator("table")).not_to_contain_text("Bad Row")


def test_sign_out_then_sign_in_with_a_wrong_and_then_the_right_password(portal, page):
    sign_up(portal, page)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    page.goto(f"{portal}/leads/")  # a signed-out visitor is sent to the sign-in page
    expect(page).to_have_url(re.compile(r"/login\?next="))

    page.fill("input[name=email]", "admin@acme.example")
    page.fill("input[name=password]", "not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".flash.error")).to_have_text("Wrong email or password.")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    page.fill("input[name=email]", "admin@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/leads/$"))  # back where the visitor was going
    expect(page.locator(".who")).to_contain_text("admin@acme.example")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def post_json(url: str, bearer: str, body: dict) -> tuple[int, dict]:
    """What a tenant's CRM does: a plain HTTP request with the bearer token."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def test_create_a_lead_through_the_api_and_see_it_in_the_list(portal, page):
    sign_up(portal, page)
    page.get_by_role("link", name="Company settings").click()
    page.get_by_role("link", name="API access").click()
    expect(page).to_have_url(re.compile(r"/settings/api$"))
    expect(page.get_by_text("No API tokens yet.")).to_be_visible()
    page.fill("input[name=token-name]", "Our CRM")
    page.get_by_role("button", name="Create a token").click()
    shown = page.locator("section:has(h2:text-is('Your new API token')) code")
    expect(shown).to_have_text(re.compile(r"^act_\d+_\S+$"))
    bearer = shown.inner_text()
    row = page.locator("tr", has_text="Our CRM")
    expect(row).to_contain_text(bearer.split("_")[1])  # the list shows only its start
    cells = row.locator("td")
    expect(cells.nth(2)).to_have_text("read leads")  # both scopes were ticked
    expect(cells.nth(3)).to_have_text("never")  # expires
    expect(cells.nth(5)).to_have_text("never")  # last used

    status, lead = post_json(
        f"{portal}/api/v1/leads",
        bearer,
        {
            "phone": "+1 212 555 0199",
            "name": "Grace Hopper",
            "external_id": "crm-42",
            "card": {"order": "compiler"},
        },
    )
    assert status == 201
    assert lead["phone"] == "+12125550199" and lead["status"] == "new"

    page.get_by_role("link", name="Leads", exact=True).click()
    page.fill("input[name=q]", "Hopper")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/leads/\?.*q=Hopper"))
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Grace Hopper")
    expect(row).to_contain_text("crm-42")
    expect(row).to_contain_text("new")
    row.get_by_role("link", name="+12125550199").click()

    expect(page).to_have_url(re.compile(rf"/leads/{lead['id']}$"))
    expect(page.locator("h1")).to_have_text("Grace Hopper")
    expect(page.locator("section.card table")).to_contain_text("compiler")
    expect(page.get_by_text("No attempts yet.")).to_be_visible()

    page.goto(f"{portal}/settings/api")  # the token's last use is noted
    expect(page.locator("tr", has_text="Our CRM").locator("td").nth(5)).not_to_have_text("never")


def test_sign_in_with_single_sign_on(tmp_path, page):
    with OpenIDProvider(redirect_uris=[], email="admin@acme.example") as provider:
        sso = {
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client.client_id,
            "oidc_client_secret": provider.client.client_secret,
            "oidc_name": "Example ID",
        }
        with serve(tmp_path, **sso) as (portal, _app):
            provider.client.redirect_uris.append(f"{portal}/login/sso/callback")
            sign_up(portal, page)
            page.get_by_role("button", name="Sign out").click()

            page.goto(f"{portal}/leads/")
            expect(page).to_have_url(re.compile(r"/login\?next="))
            page.get_by_role("link", name="Sign in with Example ID").click()
            expect(page).to_have_url(re.compile(r"/leads/$"))  # there and back, signed in
            expect(page.locator(".who")).to_contain_text("admin@acme.example")
            assert provider.requests[-1]["redirect_uri"] == f"{portal}/login/sso/callback"

            page.get_by_role("button", name="Sign out").click()
            provider.user["email"] = "nobody@acme.example"
            page.get_by_role("link", name="Sign in with Example ID").click()
            expect(page.locator(".flash.error")).to_contain_text(
                "No account uses this email (nobody@acme.example); ask your admin to add you."
            )
