"""Breaks in real browsers with the real engine and SIPp as the PBX: a supervisor takes a
ghost operator (who left their console open) off line from the live wall, for a reason; the
engine gives the next customer to another operator; the ghost's console says who took them
off line and why; going off line again asks for a reason."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.test_console import operator_signs_in, post_lead, ready_operators
from tests.browser.test_portal import page, serve, served  # noqa: F401  (fixtures)
from tests.conftest import PASSWORD
from tests.engine.dialing import HostThread, attempts_of, dialing_tenant, wait_until


def add_supervisor(app, tenant_id: int, email: str) -> None:
    from webapp.extensions import db
    from webapp.models import Role, Tenant
    from webapp.services.accounts import new_user

    with app.app_context():
        user = new_user(email, PASSWORD, Role.SUPERVISOR, db.session.get(Tenant, tenant_id))
        user.must_change_password = False
        db.session.commit()


def test_a_supervisor_takes_a_ghost_off_line_and_the_engine_calls_another_operator(
    served,  # noqa: F811
    page,  # noqa: F811
    pbx,
):
    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101", "102"))
    ready_operators(app, ("101", "102"))
    add_supervisor(app, tenant_id, "boss@acme.example")
    browser = page.context.browser
    ghost, other, boss = page, *(browser.new_context(locale="en-US").new_page() for _ in "ab")

    # 101 goes on line first: free the longest, the engine would give them the next call.
    for console, email in ((ghost, "op101@acme.example"), (other, "op102@acme.example")):
        operator_signs_in(base, console, email)
        console.get_by_role("button", name="Go on line").click()
        expect(console.locator("[data-state-label]")).to_have_text("On line: waiting for a call")

    boss.goto(f"{base}/login")
    boss.fill("input[name=email]", "boss@acme.example")
    boss.fill("input[name=password]", PASSWORD)
    boss.click("button[type=submit]")
    boss.goto(f"{base}/live/")
    row = boss.locator(f'[data-operators] [data-operator="{operators["101"]}"]')
    row.locator("select[name=reason]").select_option(label="Meeting")
    row.get_by_role("button", name="Take off line").click()
    expect(boss.locator(".flash.success")).to_contain_text("Operator 101 is off line: Meeting.")
    expect(row).to_contain_text("off line · Meeting (taken off line by a supervisor)")
    expect(row.locator("form[data-take-off]")).to_be_hidden()

    # The ghost's console hears it (and its heartbeats do not bring it back).
    expect(ghost.locator("[data-state-label]")).to_have_text("Off line · Meeting")
    expect(ghost.locator("[data-break-notice]")).to_have_text(
        "boss@acme.example took you off line: Meeting. Go on line when you are back at work."
    )

    with HostThread(app.extensions["autocall.config"].database_url):
        post_lead(base, app, tenant_id, {"phone": "+15550000210", "name": "Olga Smirnova"})
        expect(other.locator(".lead-card [data-lead-name]")).to_have_text(
            "Olga Smirnova", timeout=15_000
        )
        wait_until(
            lambda: [a.operator_id for a in attempts_of(app, tenant_id)] == [operators["102"]]
        )
    expect(ghost.locator(".lead-card")).to_have_count(0)

    # The operator is back: on line by their own choice, the notice is gone.
    ghost.get_by_role("button", name="Go on line").click()
    expect(ghost.locator("[data-state-label]")).to_have_text("On line: waiting for a call")
    expect(ghost.locator("[data-break-notice]")).to_be_hidden()
    # Going off line asks why: without a reason the browser asks, and nothing is sent.
    ghost.get_by_role("button", name="Go off line").click()
    expect(ghost.locator("select[name=reason]:invalid")).to_have_count(1)
    expect(ghost.locator("[data-state-label]")).to_have_text("On line: waiting for a call")
    ghost.locator("select[name=reason]").select_option(label="Lunch")
    ghost.get_by_role("button", name="Go off line").click()
    expect(ghost.locator("[data-state-label]")).to_have_text("Off line · Lunch")
    expect(ghost.locator("[data-break-notice]")).to_be_hidden()
    # The wall, refreshing itself, says so and since when.
    expect(row.locator("td").nth(2)).to_have_text("off line · Lunch", timeout=10_000)
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+:\d\d$"))
    for context in (other.context, boss.context):
        context.close()
