"""Preview dialing in a real browser with the real engine and SIPp as the PBX: the lead's
card opens before anyone is dialed; Call dials the customer and hands them to this operator;
Skip (in Russian here) with a reason frees the operator, dials nobody, and the lead keeps
the reason."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_console import operator_signs_in, post_lead, ready_operators
from tests.browser.test_portal import page, serve, served  # noqa: F401  (fixtures)
from tests.engine.dialing import HostThread, attempts_of, dialing_tenant, leads_of, wait_until
from tests.engine.test_preview import invites


def test_the_card_comes_first_and_call_dials_the_customer_for_this_operator(
    served,  # noqa: F811
    page,  # noqa: F811
    pbx,
):
    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, operators = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="preview"
    )
    ready_operators(app, ("101",))
    operator_signs_in(base, page, "op101@acme.example")
    state = page.locator("[data-state-label]")
    page.get_by_role("button", name="Go on line").click()
    expect(state).to_have_text("On line: waiting for a call")

    with HostThread(app.extensions["autocall.config"].database_url):
        post_lead(base, app, tenant_id, {"phone": "+15550000170", "name": "Ivan Petrov"})
        card = page.locator(".lead-card")
        expect(card).to_contain_text("Ivan Petrov", timeout=15_000)
        expect(state).to_have_text("A lead to look at: call or skip")
        assert invites(peer) == 0  # the card is open, nobody is dialed
        expect(card.get_by_role("button", name="Finish the lead")).to_have_count(0)
        card.get_by_role("button", name="Call now").click()
        expect(state).to_have_text("With a customer", timeout=15_000)
        expect(card.get_by_role("button", name="Call now")).to_have_count(0)
        page.get_by_role("button", name="Finish the lead").click()
        expect(state).to_have_text("On line: waiting for a call")
        wait_until(lambda: [a.outcome for a in attempts_of(app, tenant_id)] == ["answered"])
    (attempt,) = attempts_of(app, tenant_id)
    assert attempt.operator_id == operators["101"]
    assert invites(peer) == 1


def test_skip_with_a_reason_in_russian_frees_the_operator_and_dials_nobody(
    served,  # noqa: F811
    page,  # noqa: F811
    pbx,
):
    base, app = served
    peer = pbx("pbx.xml", calls=50, timeout=60, fill={"ring_ms": 200})
    tenant_id, _ = dialing_tenant(
        app, "Acme", peer, extensions=("101",), pacing_mode="preview", preview_countdown_seconds=300
    )
    ready_operators(app, ("101",))
    russian = page.context.browser.new_context(locale="ru-RU").new_page()
    operator_signs_in(base, russian, "op101@acme.example")
    state = russian.locator("[data-state-label]")
    russian.get_by_role("button", name="Встать на линию").click()
    expect(state).to_have_text("На линии: ждёте вызова")

    with HostThread(app.extensions["autocall.config"].database_url):
        post_lead(base, app, tenant_id, {"phone": "+15550000180", "name": "Anna Ivanova"})
        card = russian.locator(".lead-card")
        expect(card).to_contain_text("Anna Ivanova", timeout=15_000)
        expect(state).to_have_text("Лид на просмотре: позвоните или пропустите")
        expect(card.locator("[data-countdown]")).to_contain_text("Наберётся сам через")
        card.get_by_label("Причина пропуска").select_option(label="Данные лида неверны")
        card.get_by_role("button", name="Пропустить").click()
        expect(state).to_have_text("На линии: ждёте вызова")
        expect(card).to_have_count(0)
        wait_until(lambda: leads_of(app, tenant_id)["+15550000180"].status != "dialing")
    lead = leads_of(app, tenant_id)["+15550000180"]
    assert (lead.status, lead.skip_reason, lead.attempts) == ("new", "wrong_data", 0)
    assert attempts_of(app, tenant_id) == [] and invites(peer) == 0
    russian.context.close()
