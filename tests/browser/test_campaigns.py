"""Two campaigns in a real browser with the real engine and the demo PBX: an admin makes a
second campaign in the portal with other retry times (its Calling tab) and puts a team of one
operator into it, the default campaign staying everyone's; leads come through the API into
both; the operator, in both campaigns, goes on line in their console and gets customers of
both; then the admin pauses the second campaign, and from a second after the press the PBX
sees none of its calls while the default campaign's leads go on being dialed (the PBX's
journal says when each call came); the leads that rang unanswered wait each for their own
campaign's retry time."""

from __future__ import annotations

import json
import re
import time
import urllib.request

from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.test_console import operator_signs_in, ready_operators
from tests.browser.test_portal import page, served  # noqa: F401  (fixtures)
from tests.conftest import PASSWORD
from tests.engine.dialing import (
    HostThread,
    PbxThread,
    attempts_of,
    calls_at_pbx,
    demo_pbx_tenant,
    leads_of,
    wait_until,
)
from webapp.models.api import as_utc

#: The demo PBX answers a number ending in 0 and lets one ending in 3 ring until the ring
#: timeout (1 s here), so that the calls of phase two are spread over seconds.
TV_CUSTOMER, DEFAULT_CUSTOMER = "+15553100010", "+15553200010"
TV_RINGING = [f"+1555330{n:03d}3" for n in range(5)]
#: Retry times after no answer: the TV campaign's (set in the browser), the default's.
TV_RETRY_MINUTES, DEFAULT_RETRY_MINUTES = 45, 7  # the default: dialing_tenant's
DEFAULT_RINGING = [f"+1555340{n:03d}3" for n in range(5)]


def post_leads(base: str, app, tenant_id: int, leads: list[dict]) -> None:
    """What the CRM does: POST /api/v1/leads/bulk with the tenant's API token."""
    from webapp.extensions import db
    from webapp.services.api_access import create_token

    with app.app_context():
        _token, bearer = create_token(tenant_id, "CRM")
        db.session.commit()
    request = urllib.request.Request(
        f"{base}/api/v1/leads/bulk",
        data=json.dumps({"leads": leads}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    assert [item["status"] for item in answer["results"]] == ["created"] * len(leads), answer


def campaign_id(app, tenant_id: int, key: str) -> int:
    from webapp.extensions import db
    from webapp.models import Campaign

    with app.app_context():
        return db.session.scalar(
            select(Campaign.id).where(Campaign.tenant_id == tenant_id, Campaign.key == key)
        )


def admin_makes_a_campaign_for_a_team(base: str, page) -> None:  # noqa: F811
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "admin@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/login"))

    page.goto(f"{base}/campaigns/new")
    page.fill("input[name=name]", "TV offer")
    page.fill("input[name=key]", "tv-offer")
    page.get_by_role("button", name="Add the campaign").click()
    expect(page.get_by_text("Campaign TV offer is added and running")).to_be_visible()

    # Its own retry times (the default campaign's stay): the Calling tab opens by itself. Its
    # ring timeout goes to 5 s, the form's least (the default campaign's 1 s was set in the
    # database, for speed).
    expect(page).to_have_url(re.compile(r"/campaigns/\d+/calling$"))
    page.fill("input[name=retry_no_answer_minutes]", str(TV_RETRY_MINUTES))
    page.fill("input[name=retry_busy_minutes]", "3")
    page.fill("input[name=ring_timeout_seconds]", "5")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The calling settings of TV offer are saved.")).to_be_visible()
    expect(page.locator("input[name=retry_no_answer_minutes]")).to_have_value(str(TV_RETRY_MINUTES))
    page.goto(f"{base}/campaigns/")
    page.get_by_role("link", name="Default", exact=True).click()
    page.get_by_role("link", name="Calling", exact=True).click()
    expect(page.locator("input[name=retry_no_answer_minutes]")).to_have_value(
        str(DEFAULT_RETRY_MINUTES)
    )

    page.goto(f"{base}/operators/teams/new")
    page.fill("input[name=name]", "TV team")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Team TV team is added.")).to_be_visible()
    page.get_by_role("link", name="Operator 102").click()
    page.select_option("select[name=team_id]", label="TV team")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Operator Operator 102 is saved.")).to_be_visible()

    page.goto(f"{base}/campaigns/")
    row = page.locator("tr", has=page.get_by_role("link", name="TV offer"))
    row.get_by_role("link", name="every operator").click()
    expect(page.locator("#no-members")).to_contain_text("every operator works it")
    page.select_option("select[name=who]", label="TV team")
    page.fill("input[name=weight]", "1")
    page.get_by_role("button", name="Add to the campaign").click()
    expect(page.get_by_text("TV team works campaign TV offer now, weight 1.")).to_be_visible()
    expect(page.locator("#working")).to_contain_text("Operator 102 (102): weight 1")
    expect(page.locator("#working")).not_to_contain_text("Operator 101")

    # The default campaign stays everyone's; the Operators page says who works what.
    page.goto(f"{base}/campaigns/")
    default_row = page.locator("tr", has=page.get_by_role("link", name="Default"))
    expect(default_row.get_by_role("link", name="every operator")).to_be_visible()
    page.goto(f"{base}/operators/")
    expect(page.locator("tr", has=page.get_by_role("link", name="Operator 102"))).to_contain_text(
        "TV offer (weight 1, through the team)"
    )
    expect(page.locator("#everyones")).to_contain_text("Default")


def finish_the_card(console, name: str) -> None:
    """The customer `name` is put through to the operator, who says the call is over and
    records a sale. (The card opens while the transfer goes on; its "The call is over" button
    shows once the transfer succeeded.)"""
    card = console.locator(".lead-card [data-lead-name]")
    expect(card).to_have_text(name, timeout=15_000)
    expect(console.locator("[data-state-label]")).to_have_text("With a customer")
    console.get_by_role("button", name="The call is over").click()
    expect(console.locator("[data-state-label]")).to_have_text("Wrap-up")
    console.select_option("select[name=result]", label="Sale")
    console.get_by_role("button", name="Finish the lead").click()
    expect(console.locator("[data-state-label]")).to_have_text("On line: waiting for a call")


def test_an_operator_in_two_campaigns_gets_both_and_a_pause_stops_one_within_a_second(
    served,  # noqa: F811
    page,  # noqa: F811
):
    base, app = served
    with PbxThread() as pbx:
        tenant_id, operators = demo_pbx_tenant(app, "Acme", pbx, ring_timeout_seconds=1)
        ready_operators(app, ("102",))
        admin_makes_a_campaign_for_a_team(base, page)
        tv = campaign_id(app, tenant_id, "tv-offer")
        default = campaign_id(app, tenant_id, "default")

        console = page.context.browser.new_context(locale="en-US").new_page()
        console.set_default_timeout(10_000)
        operator_signs_in(base, console, "op102@acme.example")
        console.get_by_role("button", name="Go on line").click()
        expect(console.locator("[data-state-label]")).to_have_text("On line: waiting for a call")

        with HostThread(app.extensions["autocall.config"].database_url):
            # One customer of each campaign; one operator on line takes them one by one.
            post_leads(
                base,
                app,
                tenant_id,
                [
                    {"phone": TV_CUSTOMER, "name": "Tara Television", "campaign": "tv-offer"},
                    {"phone": DEFAULT_CUSTOMER, "name": "Dan Default"},
                ],
            )
            card = console.locator(".lead-card [data-lead-name]")
            expect(card).to_have_text(re.compile("Tara Television|Dan Default"), timeout=15_000)
            first = card.inner_text()
            finish_the_card(console, first)
            finish_the_card(console, ({"Tara Television", "Dan Default"} - {first}).pop())

            # Then leads that ring unanswered, in both campaigns, while the admin watches.
            page.goto(f"{base}/campaigns/")
            post_leads(
                base,
                app,
                tenant_id,
                [{"phone": phone, "campaign": "tv-offer"} for phone in TV_RINGING]
                + [{"phone": phone} for phone in DEFAULT_RINGING],
            )
            wait_until(
                lambda: any(call.number in TV_RINGING for call in calls_at_pbx(pbx.journal)),
                what="a ringing call of the TV campaign",
            )
            pause = page.locator(f'tr[data-campaign="{tv}"]').get_by_role("button", name="Pause")
            pressed = time.time()
            pause.click()
            paused = "Campaign TV offer is paused: no new calls; calls in flight finish."
            expect(page.get_by_text(paused)).to_be_visible()
            wait_until(
                lambda: {c.number for c in calls_at_pbx(pbx.journal)} >= set(DEFAULT_RINGING),
                what="every ringing lead of the default campaign dialed",
            )
            # The paused campaign's calls in flight finish: they ring out (5 s).
            wait_until(
                lambda: all(
                    call.end is not None
                    for call in calls_at_pbx(pbx.journal)
                    if call.number in TV_RINGING
                ),
                what="the TV calls in flight ended",
            )
        calls = calls_at_pbx(pbx.journal)
        console.context.close()

    tv_calls = [call for call in calls if call.number in TV_RINGING]
    late = [call for call in tv_calls if call.start >= pressed + 1.0]
    assert tv_calls and not late, (pressed, tv_calls)
    default_after = [c for c in calls if c.number in DEFAULT_RINGING and c.start >= pressed + 1.0]
    assert default_after, "the default campaign was not dialed after the pause"
    leads = leads_of(app, tenant_id)
    waiting = [phone for phone in TV_RINGING if leads[phone].status == "new"]
    assert waiting, "every TV lead was dialed before the pause: the test proves nothing"
    assert len(tv_calls) + len(waiting) == len(TV_RINGING)
    # Each lead that rang unanswered waits for its own campaign's retry time (a call the
    # engine's stop at the end of the test cut short waits for the technical error's).
    for numbers, minutes in (
        (TV_RINGING, TV_RETRY_MINUTES),
        (DEFAULT_RINGING, DEFAULT_RETRY_MINUTES),
    ):
        rang = [
            call
            for call in calls
            if call.number in numbers
            and call.end is not None
            and leads[call.number].last_outcome == "no_answer"
        ]
        assert rang, numbers
        for call in rang:
            lead = leads[call.number]
            waited = as_utc(lead.next_attempt_at).timestamp() - call.end
            assert minutes * 60 - 5 < waited < minutes * 60 + 5, (call.number, waited)
    # The operator took a customer of each campaign.
    answered = [a for a in attempts_of(app, tenant_id) if a.transfer_result == "succeeded"]
    assert sorted((a.campaign_id, a.operator_id) for a in answered) == sorted(
        [(tv, operators["102"]), (default, operators["102"])]
    )
