"""A personal callback in real browsers with the real engine and SIPp: operator 101 ticks
"call back myself", sees it in their callbacks for today and goes off line; when its time
comes, operator 102 is free but gets a new lead, not the callback, which waits for 101 and
opens on 101's console once they are back on line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.test_console import operator_signs_in, post_lead, ready_operators
from tests.browser.test_portal import page, serve, served  # noqa: F401  (fixtures)
from tests.engine.dialing import HostThread, attempts_of, dialing_tenant, wait_until

WAITING = "On line: waiting for a call"


def test_a_personal_callback_waits_for_its_operator_in_the_browser(
    served,  # noqa: F811
    page,  # noqa: F811
    pbx,
):
    from webapp.extensions import db
    from webapp.models import Lead, Tenant

    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101", "102"))
    ready_operators(app, ("101", "102"))
    second = page.context.browser.new_context(locale="en-US").new_page()
    operator_signs_in(base, page, "op101@acme.example")
    operator_signs_in(base, second, "op102@acme.example")
    state = page.locator("[data-state-label]")
    page.get_by_role("button", name="Go on line").click()
    expect(state).to_have_text(WAITING)

    with HostThread(app.extensions["autocall.config"].database_url):
        post_lead(base, app, tenant_id, {"phone": "+15550000610", "name": "Callback Customer"})
        card = page.locator(".lead-card")
        expect(card).to_contain_text("Callback Customer", timeout=15_000)
        with app.app_context():
            lead = db.session.scalar(db.select(Lead).where(Lead.tenant_id == tenant_id))
            zone = ZoneInfo(lead.time_zone or db.session.get(Tenant, tenant_id).time_zone)
            lead_id = lead.id
        later = (datetime.now(zone) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
        page.get_by_role("button", name="The call is over").click()
        page.select_option("select[name=result]", label="Call back")
        page.fill("textarea[name=comment]", "after the meeting")
        page.fill("input[name=call_back_at]", later)
        page.get_by_label("Call back myself").check()
        page.get_by_role("button", name="Finish the lead").click()
        expect(state).to_have_text(WAITING)
        mine = page.locator("[data-callbacks]")
        expect(mine).to_contain_text("Callback Customer")
        expect(mine).to_contain_text("after the meeting")
        expect(mine).to_contain_text("yours")
        page.locator("select[name=reason]").select_option(label="Lunch")  # going off line asks why
        page.get_by_role("button", name="Go off line").click()
        expect(state).to_have_text("Off line · Lunch")

        with app.app_context():  # the clock reaches the callback's time
            lead = db.session.get(Lead, lead_id)
            assert lead.callback_operator_id == operators["101"]
            lead.callback_at = lead.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
            db.session.commit()
        # 102 is free: the engine's claim passes over the callback (it waits for 101) and
        # dials the new lead, which comes after a due callback in every order.
        second.get_by_role("button", name="Go on line").click()
        expect(second.locator("[data-state-label]")).to_have_text(WAITING)
        post_lead(base, app, tenant_id, {"phone": "+15550000620", "name": "Other Customer"})
        expect(second.locator(".lead-card")).to_contain_text("Other Customer", timeout=15_000)
        assert [a.lead_id for a in attempts_of(app, tenant_id)].count(lead_id) == 1

        page.get_by_role("button", name="Go on line").click()
        expect(card).to_contain_text("Callback Customer", timeout=15_000)
        wait_until(lambda: len(attempts_of(app, tenant_id)) == 3, what="the callback's attempt")
    callback = attempts_of(app, tenant_id)[-1]
    assert (callback.lead_id, callback.callback) == (lead_id, True)
    assert callback.operator_id == operators["101"]
    second.context.close()
