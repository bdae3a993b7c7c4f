"""The operator console in a real browser with the real engine: an operator goes on line, a
lead comes in through the API, SIPp (the PBX) answers, the lead's card opens by itself, the
operator records the result and is free again; two operators get different leads; a dropped
event stream catches up; a closed tab stops the calls to that operator; a console over the
person's cap of open streams says so and connects once another tab closes."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import expect

from tests.browser.test_portal import page, serve, served  # noqa: F401  (fixtures)
from tests.conftest import PASSWORD, make_tenant
from tests.engine.dialing import (
    HostThread,
    attempts_of,
    dialing_tenant,
    engine_state,
    wait_until,
)


def post_lead(base: str, app, tenant_id: int, lead: dict) -> None:
    from webapp.extensions import db
    from webapp.services.api_access import create_token

    with app.app_context():
        _token, bearer = create_token(tenant_id, "CRM")
        db.session.commit()
    request = urllib.request.Request(
        f"{base}/api/v1/leads",
        data=json.dumps(lead).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def operator_signs_in(base: str, page, email: str) -> None:  # noqa: F811
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")


def test_the_card_opens_when_the_customer_answers_and_finishing_frees_the_operator(
    served,  # noqa: F811
    page,  # noqa: F811
    pbx,
):
    from webapp.extensions import db
    from webapp.models import User

    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, operators = dialing_tenant(app, "Acme", peer, extensions=("101",))
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "op101@acme.example"))
        user.must_change_password = False
        db.session.commit()
    database_url = app.extensions["autocall.config"].database_url

    operator_signs_in(base, page, "op101@acme.example")
    state = page.locator("[data-state-label]")
    expect(state).to_have_text("Off line")
    page.get_by_role("button", name="Go on line").click()
    expect(state).to_have_text("On line: waiting for a call")

    with HostThread(database_url):
        post_lead(
            base,
            app,
            tenant_id,
            {"phone": "+15550000170", "name": "Ivan Petrov", "card": {"order": "A-1001"}},
        )
        card = page.locator(".lead-card")
        expect(card).to_contain_text("Ivan Petrov", timeout=15_000)
        expect(card).to_contain_text("A-1001")
        expect(state).to_have_text("With a customer")
        page.get_by_role("button", name="The call is over").click()
        expect(state).to_have_text("Wrap-up")
        page.select_option("select[name=result]", label="Sale")
        page.fill("textarea[name=comment]", "Wants the yearly plan")
        page.get_by_role("button", name="Finish the lead").click()
        expect(state).to_have_text("On line: waiting for a call")
        expect(card).to_have_count(0)
        wait_until(lambda: [a.outcome for a in attempts_of(app, tenant_id)] == ["answered"])
    attempt = attempts_of(app, tenant_id)[0]
    assert (attempt.operator_id, attempt.result, attempt.comment) == (
        operators["101"],
        "Sale",
        "Wants the yearly plan",
    )


def ready_operators(app, extensions: tuple[str, ...]) -> None:
    from webapp.extensions import db
    from webapp.models import User

    with app.app_context():
        for extension in extensions:
            email = f"op{extension}@acme.example"
            db.session.scalar(
                db.select(User).where(User.email == email)
            ).must_change_password = False
        db.session.commit()


def test_two_operators_in_two_browsers_get_different_leads(served, page, pbx):  # noqa: F811
    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, _ = dialing_tenant(app, "Acme", peer, extensions=("101", "102"))
    ready_operators(app, ("101", "102"))
    second = page.context.browser.new_context(locale="en-US").new_page()
    for p, email in ((page, "op101@acme.example"), (second, "op102@acme.example")):
        operator_signs_in(base, p, email)
        p.get_by_role("button", name="Go on line").click()
        expect(p.locator("[data-state-label]")).to_have_text("On line: waiting for a call")
    with HostThread(app.extensions["autocall.config"].database_url):
        post_lead(base, app, tenant_id, {"phone": "+15550000180", "name": "First Customer"})
        post_lead(base, app, tenant_id, {"phone": "+15550000190", "name": "Second Customer"})
        names = set()
        for p in (page, second):
            card = p.locator(".lead-card [data-lead-name]")
            expect(card).to_have_text(re.compile("(First|Second) Customer"), timeout=15_000)
            names.add(card.inner_text())
    assert names == {"First Customer", "Second Customer"}
    second.context.close()


def test_a_dropped_event_stream_catches_up_on_the_card(served, page, pbx):  # noqa: F811
    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, _ = dialing_tenant(app, "Acme", peer, extensions=("101",))
    ready_operators(app, ("101",))
    operator_signs_in(base, page, "op101@acme.example")
    page.route("**/console/events*", lambda route: route.abort())  # the network drops
    page.get_by_role("button", name="Go on line").click()
    expect(page.locator("[data-state-label]")).to_have_text("On line: waiting for a call")
    with HostThread(app.extensions["autocall.config"].database_url):
        post_lead(base, app, tenant_id, {"phone": "+15550000200", "name": "Missed Pop"})
        wait_until(
            lambda: any(a.refer_at or a.outcome for a in attempts_of(app, tenant_id)),
            what="the customer answered while the stream was down",
        )
        page.unroute("**/console/events*")  # back: EventSource reconnects by itself
        expect(page.locator(".lead-card")).to_contain_text("Missed Pop", timeout=15_000)


def test_a_closed_tab_stops_the_calls_to_that_operator(served, page, pbx):  # noqa: F811
    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, _ = dialing_tenant(app, "Acme", peer, extensions=("101",))
    ready_operators(app, ("101",))
    tab = page.context.browser.new_context(locale="en-US").new_page()
    operator_signs_in(base, tab, "op101@acme.example")
    tab.get_by_role("button", name="Go on line").click()
    expect(tab.locator("[data-state-label]")).to_have_text("On line: waiting for a call")
    tab.close()  # no more heartbeats
    database_url = app.extensions["autocall.config"].database_url
    with HostThread(database_url, heartbeat_ttl=2.0):
        wait_until(
            lambda: engine_state(app, tenant_id).get("reason") == "no_operator_on_line",
            what="the operator taken off line",
        )
        post_lead(base, app, tenant_id, {"phone": "+15550000210", "name": "Nobody Calls"})
        wait_until(lambda: engine_state(app, tenant_id).get("reason") == "no_operator_on_line")
    assert attempts_of(app, tenant_id) == []


def test_a_console_over_the_cap_says_so_and_connects_when_another_tab_closes(tmp_path, page):  # noqa: F811
    with serve(tmp_path, streams_per_user=2) as (base, app):
        email = make_tenant(app, "Acme").operator_email
        context = page.context.browser.new_context(locale="en-US")
        first = context.new_page()
        operator_signs_in(base, first, email)  # the first console
        tabs = [context.new_page() for _ in range(2)]
        for tab in tabs:
            tab.goto(f"{base}/console/")
        refused = tabs[1].locator("[data-stream-refused]")
        expect(refused).to_have_text(
            "You have 2 consoles open (tabs or browsers), as many as one person may: close one "
            "and this one connects by itself."
        )
        expect(first.locator("[data-stream-refused]")).to_be_hidden()
        tabs[0].close()  # its stream ends; the refused console tries again after Retry-After
        expect(refused).to_be_hidden(timeout=30_000)
        context.close()
