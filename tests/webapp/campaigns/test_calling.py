"""A campaign's Calling tab (its dialing rules), Duplicate, and the reasons a campaign gives
by its own rules for not dialing, on SQLite and PostgreSQL."""

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.webapp.campaigns.test_views import give_an_account
from tests.webapp.jobs import Wakes
from webapp import bus
from webapp.extensions import db
from webapp.models import Campaign, CampaignMember, CampaignState, Lead, SipAccount, Tenant
from webapp.models.campaign import RULES
from webapp.services.campaigns import add_member, create_campaign, default_campaign

CALLING = {
    "retry_no_answer_minutes": "90",
    "retry_unavailable_minutes": "90",
    "retry_busy_minutes": "5",
    "retry_technical_error_minutes": "10",
    "max_attempts": "5",
    "ring_timeout_seconds": "30",
    "calling_hours_start": "09:00",
    "calling_hours_end": "21:00",
    "calling_weekdays": ["1", "2", "3", "4", "5"],
    "start_date": "",
    "end_date": "",
    "pacing_mode": "multiplier",
    "call_multiplier": "1.2",
    "abandon_rate_cap_percent": "3",
    "abandon_rate_window_days": "30",
    "abandon_tolerance_seconds": "2",
    "max_calls_at_once": "30",
    "max_calls_per_second": "10",
    "wrap_up_timeout_seconds": "600",
    "failed_transfers_limit": "3",
    "preview_countdown_seconds": "0",
    "results": "Продажа\n  Отказ  \n\nПерезвонить",
    "lead_order": "new_first",
    "callback_grace_minutes": "30",
}


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


@pytest.fixture
def account(app, admin) -> int:
    with app.app_context():
        return give_an_account(admin.id).id


def _get(app, campaign_id: int) -> Campaign:
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        db.session.expunge(campaign)
        return campaign


def _default_id(app, tenant_id: int) -> int:
    with app.app_context():
        return default_campaign(db.session.get(Tenant, tenant_id)).id


def _post(client, campaign_id: int, account: int, **changes):
    return client.post(
        f"/campaigns/{campaign_id}/calling",
        data={**CALLING, "sip_account_id": str(account), **changes},
    )


def test_the_calling_tab_saves_every_rule_and_wakes_the_engine(app, client, admin, account):
    campaign_id = _default_id(app, admin.id)
    wakes = Wakes(admin.id)
    response = _post(
        client,
        campaign_id,
        account,
        hide_numbers="y",
        start_date="2026-12-01",
        end_date="2026-12-31",
        pacing_mode="predictive",
        abandon_rate_window_days="1",
        max_calls_at_once="200",
        wrap_up_timeout_seconds="0",
        lead_order="priority",
        callback_grace_minutes="45",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/campaigns/{campaign_id}/calling")
    assert wakes.types() == ["settings"]
    wakes.close()
    campaign = _get(app, campaign_id)
    assert campaign.sip_account_id == account
    assert campaign.call_multiplier == 1.2 and campaign.hide_numbers is True
    assert campaign.calling_weekdays == "12345"
    assert (campaign.start_date, campaign.end_date) == (date(2026, 12, 1), date(2026, 12, 31))
    assert (campaign.pacing_mode, campaign.abandon_rate_window_days) == ("predictive", 1)
    assert (campaign.max_calls_at_once, campaign.wrap_up_timeout_seconds) == (200, 0)
    assert campaign.result_choices == ["Продажа", "Отказ", "Перезвонить"]
    assert (campaign.lead_order, campaign.callback_grace_minutes) == ("priority", 45)
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert 'value="1.20"' in page and 'value="2026-12-01"' in page
    assert '<input checked id="calling_weekdays-4"' in page  # Friday
    assert '<input id="calling_weekdays-5"' in page  # Saturday, not chosen
    assert "the last 24 hours" in page and "00:00 and 00:00: all day" in page
    # Unticked boxes switch off; empty dates take the limits away; commas are decimals.
    _post(client, campaign_id, account, call_multiplier="1,35", abandon_rate_cap_percent=" 2,5 ")
    campaign = _get(app, campaign_id)
    assert campaign.hide_numbers is False and campaign.start_date is None
    assert (campaign.call_multiplier, campaign.abandon_rate_cap_percent) == (1.35, 2.5)


def test_one_campaigns_rules_leave_the_others_alone(app, client, admin, account):
    with app.app_context():
        other = create_campaign(db.session.get(Tenant, admin.id), "TV", "tv", None).id
    _post(client, _default_id(app, admin.id), account, retry_busy_minutes="45")
    assert _get(app, _default_id(app, admin.id)).retry_busy_minutes == 45
    assert _get(app, other).retry_busy_minutes == 5


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("call_multiplier", "0.5", "between 1 and 5"),
        ("retry_busy_minutes", "0", "between 1 and 10080"),
        ("max_attempts", "0", "between 1 and 100"),
        ("ring_timeout_seconds", "4", "between 5 and 300"),
        ("calling_hours_end", "08:00", "must be after the start"),
        ("calling_weekdays", [], "Choose at least one day."),
        ("calling_weekdays", ["8"], "is not a valid choice"),
        ("start_date", "2026-13-01", "Not a valid date value."),
        ("end_date", "2026-11-30", "The end date cannot be before the start date."),
        ("pacing_mode", "adaptive", "Not a valid choice"),
        ("preview_countdown_seconds", "601", "between 0 and 600"),
        ("abandon_rate_window_days", "7", "Not a valid choice"),
        ("max_calls_at_once", "1001", "between 1 and 1000"),
        ("max_calls_per_second", "501", "between 1 and 500"),
        ("wrap_up_timeout_seconds", "86401", "between 0 and 86400"),
        ("failed_transfers_limit", "-1", "between 0 and 100"),
        ("results", " \n ", "from 1 to 30 results"),
        ("results", "x" * 101, "at most 100 characters"),
        ("sip_account_id", "999999", "Not a valid choice"),
        ("abandon_tolerance_seconds", "10.5", "between 0 and 10"),
        ("abandon_tolerance_seconds", "", "This field is required"),
        ("fallback_target", "70 0", "Use digits (and letters) only"),
        ("fallback_target", "7" * 33, "up to 32"),
    ],
)
def test_the_calling_tab_explains_bad_values(app, client, admin, account, field, value, words):
    campaign_id = _default_id(app, admin.id)
    response = _post(client, campaign_id, account, **{"start_date": "2026-12-01", field: value})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)
    assert _get(app, campaign_id).start_date is None  # nothing saved


def test_the_account_is_one_of_the_tenants_own(app, client, admin, account, tenant_b):
    with app.app_context():
        theirs = give_an_account(tenant_b.id).id
    campaign_id = _default_id(app, admin.id)
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    select = page.split('name="sip_account_id"')[1].split("</select>")[0]
    assert f'value="{account}"' in select and f'value="{theirs}"' not in select
    assert "Not a valid choice" in _post(client, campaign_id, theirs).get_data(as_text=True)
    assert _get(app, campaign_id).sip_account_id == account


def test_a_campaign_may_be_given_another_account(app, client, admin, account):
    with app.app_context():
        second = SipAccount(tenant_id=admin.id, name="Second", host="pbx2.example", username="b")
        db.session.add(second)
        db.session.commit()
        second_id = second.id
    campaign_id = _default_id(app, admin.id)
    assert _post(client, campaign_id, second_id).status_code == 302
    assert _get(app, campaign_id).sip_account_id == second_id
    # The first account is free now, and may go.
    assert client.post(f"/settings/sip/{account}/delete").status_code == 302
    held = client.post(f"/settings/sip/{second_id}/delete", follow_redirects=True)
    assert "is not deleted: campaigns dial through it (Default)" in held.get_data(as_text=True)


def test_a_new_campaign_dials_like_the_default_one(app, client, admin, account):
    _post(client, _default_id(app, admin.id), account, retry_busy_minutes="45", hide_numbers="y")
    client.post("/campaigns/new", data={"name": "TV", "key": "tv"})
    with app.app_context():
        tv = db.session.scalar(
            select(Campaign).where(Campaign.tenant_id == admin.id, Campaign.key == "tv")
        )
        default = default_campaign(db.session.get(Tenant, admin.id))
        assert {rule: getattr(tv, rule) for rule in RULES} == {
            rule: getattr(default, rule) for rule in RULES
        }
        assert (tv.retry_busy_minutes, tv.hide_numbers, tv.sip_account_id) == (45, True, account)


def test_duplicate_copies_every_rule_and_every_member_paused(app, client, admin, account):
    with app.app_context():
        tenant = db.session.get(Tenant, admin.id)
        original = create_campaign(tenant, "TV offer", "tv-offer", None)
        for rule, value in {
            "retry_no_answer_minutes": 11,
            "retry_unavailable_minutes": 12,
            "retry_busy_minutes": 13,
            "retry_technical_error_minutes": 14,
            "max_attempts": 7,
            "ring_timeout_seconds": 25,
            "calling_hours_start": time(10, 0),
            "calling_hours_end": time(18, 30),
            "calling_weekdays": "135",
            "start_date": date(2026, 1, 1),
            "end_date": date(2027, 1, 1),
            "pacing_mode": "progressive",
            "call_multiplier": 2.5,
            "abandon_rate_cap_percent": 1.5,
            "abandon_rate_window_days": 1,
            "max_calls_at_once": 77,
            "max_calls_per_second": 7,
            "wrap_up_timeout_seconds": 45,
            "failed_transfers_limit": 9,
            "results": "Yes\nNo",
            "hide_numbers": True,
            "lead_order": "retries_first",
            "callback_grace_minutes": 5,
        }.items():
            setattr(original, rule, value)
        db.session.commit()
        add_member(original, operator_id=admin.operator_id, weight=5)
        add_member(original, team_id=admin.team_id, weight=2)
        original_id = original.id
    wakes = Wakes(admin.id)
    response = client.post(f"/campaigns/{original_id}/duplicate")
    assert response.status_code == 302
    assert wakes.types() == ["campaigns"]
    wakes.close()
    copy_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    again = client.post(f"/campaigns/{original_id}/duplicate")
    with app.app_context():
        original, copy = db.session.get(Campaign, original_id), db.session.get(Campaign, copy_id)
        assert (copy.name, copy.key, copy.state) == ("TV offer (copy)", "tv-offer-copy", "paused")
        assert not copy.is_default
        assert {rule: getattr(copy, rule) for rule in RULES} == {
            rule: getattr(original, rule) for rule in RULES
        }
        members = db.session.scalars(
            select(CampaignMember).where(CampaignMember.tenant_id == admin.id)
        ).all()
        by_campaign = {}
        for member in members:
            row = (member.operator_id, member.team_id, member.weight)
            by_campaign.setdefault(member.campaign_id, set()).add(row)
        assert by_campaign[copy_id] == by_campaign[original_id] and len(by_campaign[copy_id]) == 2
        second = db.session.scalar(
            select(Campaign).where(
                Campaign.tenant_id == admin.id, Campaign.key == "tv-offer-copy-2"
            )
        )
        assert second.name == "TV offer (copy 2)"
        assert again.headers["Location"].endswith(f"/campaigns/{second.id}")
        assert (
            db.session.scalar(  # the leads stay where they were
                select(db.func.count()).select_from(Lead).where(Lead.campaign_id == copy_id)
            )
            == 0
        )
    page = client.get(f"/campaigns/{copy_id}", follow_redirects=True).get_data(as_text=True)
    assert "is made from TV offer" in page and "Paused" in page


def test_the_default_campaign_duplicates_into_an_ordinary_one(app, client, admin, account):
    response = client.post(f"/campaigns/{_default_id(app, admin.id)}/duplicate")
    copy = _get(app, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert (copy.name, copy.key, copy.is_default) == ("Default (copy)", "default-copy", False)


def test_the_campaign_pages_have_three_tabs(app, client, admin, account):
    campaign_id = _default_id(app, admin.id)
    for page in ("", "/calling", "/members"):
        text = client.get(f"/campaigns/{campaign_id}{page}").get_data(as_text=True)
        for tab in ("", "/calling", "/members"):
            assert f'href="/campaigns/{campaign_id}{tab}"' in text
        assert 'aria-current="page">' in text
    assert "Duplicate" in client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)


def test_supervisors_read_the_calling_tab_and_change_nothing(app, client, auth, tenant_a):
    with app.app_context():
        account = give_an_account(tenant_a.id).id
    campaign_id = _default_id(app, tenant_a.id)
    auth.login(tenant_a.supervisor_email)
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert "readonly" in page and 'type="submit">Save' not in page
    assert "Duplicate" not in client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert _post(client, campaign_id, account, max_attempts="9").status_code == 403
    assert client.post(f"/campaigns/{campaign_id}/duplicate").status_code == 403
    assert _get(app, campaign_id).max_attempts == 5
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Campaign)) == 1


# --- why a campaign does not dial, by its own rules ------------------------------------------


def _why(client, campaign_id: int) -> str:
    page = client.get("/campaigns/").get_data(as_text=True)
    row = page.split(f'data-campaign="{campaign_id}"')[1].split("</tr>")[0]
    return row.split("<td data-why>")[1].split("</td>")[0].strip()


def test_a_campaign_says_why_its_own_rules_keep_it_from_dialing(app, client, admin):
    campaign_id = _default_id(app, admin.id)  # the fixture's lead is there
    assert _why(client, campaign_id) == "No SIP account: choose one on its Calling tab."
    with app.app_context():
        give_an_account(admin.id)
        tenant = db.session.get(Tenant, admin.id)
        tenant.time_zone = "Pacific/Kiritimati"  # UTC+14: its today is not UTC's
        db.session.commit()
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()

    def rules(**values) -> str:
        with app.app_context():
            campaign = db.session.get(Campaign, campaign_id)
            for name, value in values.items():
                setattr(campaign, name, value)
            db.session.commit()
        return _why(client, campaign_id)

    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    assert rules(start_date=tomorrow) == f"It starts on {tomorrow.isoformat()}."
    assert rules(start_date=today) == "Automatic dialing is off."  # the company's switch
    assert rules(end_date=yesterday) == f"It ended on {yesterday.isoformat()}."
    assert rules(end_date=today) == "Automatic dialing is off."
    other_days = "".join(str(d) for d in range(1, 8) if d != today.isoweekday())
    assert rules(calling_weekdays=other_days) == "Today is not one of its calling days."
    assert rules(calling_weekdays=str(today.isoweekday())) == "Automatic dialing is off."


def test_the_engines_reason_for_a_campaign_comes_before_the_companys(app, client, admin):
    with app.app_context():
        give_an_account(admin.id)
        tenant = db.session.get(Tenant, admin.id)
        tenant.dialing_enabled = True
        other = create_campaign(tenant, "TV", "tv", None).id
        db.session.add(Lead(tenant_id=admin.id, campaign_id=other, phone="+15550102"))
        db.session.commit()
        state = {
            "state": "dialing",
            "reason": "",
            "detail": "",
            "in_flight": 2,
            "campaigns": {str(other): ["registration_failed", "403 Forbidden"]},
        }
        key = bus.keys(admin.id).state
        bus.client().hset(key, mapping={k: json.dumps(v) for k, v in state.items()})
    try:
        default = _default_id(app, admin.id)
        assert _why(client, default) == "Dialing: 2 calls in progress."
        assert _why(client, other) == (
            "Not dialing: The PBX refused the registration. (403 Forbidden)"
        )
        client.get("/lang/ru")
        assert _why(client, other) == "Обзвон не идёт: АТС отклонила регистрацию. (403 Forbidden)"
    finally:
        with app.app_context():
            bus.client().delete(key)


def test_a_paused_campaign_says_paused_before_its_rules(app, client, admin):
    from webapp.services.campaigns import set_state

    with app.app_context():
        campaign = create_campaign(db.session.get(Tenant, admin.id), "TV", "tv", None)
        set_state(campaign, CampaignState.PAUSED, None)
        campaign_id = campaign.id
    assert _why(client, campaign_id) == "Paused: no new calls."


def test_preview_with_its_countdown_is_saved_and_reaches_the_engine(app, client, admin, account):
    campaign_id = _default_id(app, admin.id)
    response = _post(
        client, campaign_id, account, pacing_mode="preview", preview_countdown_seconds="15"
    )
    assert response.status_code == 302
    campaign = _get(app, campaign_id)
    assert (campaign.pacing_mode, campaign.preview_countdown_seconds) == ("preview", 15)
    with app.app_context():
        from webapp.services.dialing import DialingStore

        store = DialingStore(
            app.extensions["autocall.config"].database_url, app.extensions["autocall.secrets"]
        )
        try:
            (settings,) = [
                c for c in store.settings(admin.id).campaigns if c.campaign_id == campaign_id
            ]
        finally:
            store.close()
    assert (settings.pacing_mode, settings.preview_countdown) == ("preview", 15.0)


def test_the_hold_and_the_fallback_for_abandoned_calls_are_saved(app, client, admin, account):
    campaign_id = _default_id(app, admin.id)
    assert (
        _get(app, campaign_id).abandon_tolerance_seconds,
        _get(app, campaign_id).fallback_target,
    ) == (2.0, None)
    response = _post(
        client, campaign_id, account, abandon_tolerance_seconds="1,5", fallback_target=" 700 "
    )
    assert response.status_code == 302
    campaign = _get(app, campaign_id)
    assert (campaign.abandon_tolerance_seconds, campaign.fallback_target) == (1.5, "700")
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert 'value="1.5"' in page and 'value="700"' in page
    _post(client, campaign_id, account, fallback_target="  ")  # none: hung up
    assert _get(app, campaign_id).fallback_target is None


@pytest.mark.parametrize(
    ("pacing", "fallback", "warned"),
    [
        ({"pacing_mode": "predictive"}, "", True),
        ({"pacing_mode": "multiplier", "call_multiplier": "1.5"}, "", True),
        ({"pacing_mode": "multiplier", "call_multiplier": "1"}, "", False),
        ({"pacing_mode": "progressive"}, "", False),
        ({"pacing_mode": "predictive"}, "*700", False),
    ],
)
def test_the_calling_tab_warns_when_abandoned_calls_have_no_fallback(
    app, client, admin, account, pacing, fallback, warned
):
    campaign_id = _default_id(app, admin.id)
    assert (
        _post(client, campaign_id, account, fallback_target=fallback, **pacing).status_code == 302
    )
    page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
    assert ('id="no-fallback-warning"' in page) is warned
    assert ("This pacing can abandon calls" in page) is warned
    if warned:
        client.get("/lang/ru")
        page = client.get(f"/campaigns/{campaign_id}/calling").get_data(as_text=True)
        assert "При таком темпе набора вызовы могут быть брошены" in page
        assert "Куда переводить брошенные вызовы" in page
