"""The Campaigns page, on SQLite and PostgreSQL: the list with today's figures per campaign,
New campaign, a campaign's name and key, Start / Pause / Archive; admins change, supervisors
read."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.webapp.jobs import Wakes
from webapp.extensions import db
from webapp.models import Attempt, Campaign, CampaignState, Lead, Tenant, User
from webapp.models.api import as_utc
from webapp.services.campaigns import create_campaign, default_campaign
from webapp.services.live import today_by_campaign
from webapp.services.sip_accounts import Password, create_account


def give_an_account(tenant_id: int):
    """A SIP account for the tenant (in an app context): every campaign dials through it."""
    from flask import current_app

    secrets = current_app.extensions["autocall.secrets"]
    values = {"name": "PBX", "host": "pbx.example.com", "port": 5060, "username": "acme"}
    return create_account(db.session.get(Tenant, tenant_id), values, Password(), secrets)


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def _campaign(app, tenant_id: int, key: str) -> Campaign:
    with app.app_context():
        campaign = db.session.scalar(
            select(Campaign).where(Campaign.tenant_id == tenant_id, Campaign.key == key)
        )
        db.session.expunge(campaign)
        return campaign


def _add_campaign(app, tenant_id: int, name: str = "TV offer", key: str = "tv-offer") -> int:
    with app.app_context():
        return create_campaign(db.session.get(Tenant, tenant_id), name, key, None).id


def _row(page: str, campaign_id: int) -> str:
    return page.split(f'data-campaign="{campaign_id}"')[1].split("</tr>")[0]


def test_the_list_shows_the_default_campaign_and_says_each_has_its_rules(app, client, admin):
    page = client.get("/campaigns/").get_data(as_text=True)
    default = _campaign(app, admin.id, "default")
    row = _row(page, default.id)
    assert "Default" in row and "<code>default</code>" in row and "Running" in row
    assert "by the system" in row
    assert "Archive" not in row  # the default campaign is never archived
    assert "Pause" in row
    assert "Each campaign dials by its own rules" in page
    assert "Duplicate" in row
    assert 'href="/campaigns/new"' in page
    assert 'href="/campaigns/"' in client.get("/leads/").get_data(as_text=True)  # the nav link


def test_a_new_campaign_runs_and_says_who_made_it(app, client, admin):
    response = client.post("/campaigns/new", data={"name": " TV offer ", "key": "TV-Offer"})
    assert response.status_code == 302
    campaign = _campaign(app, admin.id, "tv-offer")
    assert (campaign.name, campaign.state, campaign.is_default) == ("TV offer", "running", False)
    with app.app_context():
        assert db.session.get(User, campaign.state_changed_by_id).email == admin.admin_email
    page = client.get("/campaigns/", follow_redirects=True).get_data(as_text=True)
    row = _row(page, campaign.id)
    assert "TV offer" in row and f"by {admin.admin_email}" in row
    assert "Archive" in row and "Pause" in row and "Start" not in row
    assert "Campaign TV offer is added and running, with the default campaign&#39;s" in page
    assert response.headers["Location"].endswith(f"/campaigns/{campaign.id}/calling")


@pytest.mark.parametrize(
    ("name", "key", "words"),
    [
        ("TV", "tv offer", "Use lower-case letters, digits and dashes"),
        ("TV", "-tv", "Use lower-case letters, digits and dashes"),
        ("TV", "2024", "Not digits alone: a number names a campaign by its id."),
        ("TV", "k" * 65, "Field cannot be longer than 64 characters."),
        ("TV", "", "This field is required."),
        ("", "tv", "This field is required."),
        ("Default", "tv", "Another campaign has this name."),
        ("TV", "default", "Another campaign has this key."),
    ],
)
def test_a_wrong_or_taken_name_or_key_is_explained(app, client, admin, name, key, words):
    response = client.post("/campaigns/new", data={"name": name, "key": key})
    assert response.status_code == 200
    assert words in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Campaign)) == 1


def test_another_tenants_names_and_keys_are_free_here(app, client, admin, tenant_b):
    _add_campaign(app, tenant_b.id, "TV offer", "tv-offer")
    assert (
        client.post("/campaigns/new", data={"name": "TV offer", "key": "tv-offer"}).status_code
        == 302
    )


def test_a_campaign_is_renamed_and_given_another_key(app, client, admin):
    campaign_id = _add_campaign(app, admin.id)
    form = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'value="tv-offer"' in form
    assert 'a lead sent to the API with "campaign": "tv-offer"' in form
    response = client.post(f"/campaigns/{campaign_id}", data={"name": "Radio", "key": "radio"})
    assert response.status_code == 302
    assert _campaign(app, admin.id, "radio").name == "Radio"
    taken = client.post(f"/campaigns/{campaign_id}", data={"name": "Radio", "key": "default"})
    assert "Another campaign has this key." in taken.get_data(as_text=True)
    # Its own name and key are no clash; the default campaign may be renamed too.
    same = client.post(f"/campaigns/{campaign_id}", data={"name": "Radio", "key": "radio"})
    assert same.status_code == 302
    default = _campaign(app, admin.id, "default")
    client.post(f"/campaigns/{default.id}", data={"name": "Main", "key": "main"})
    assert _campaign(app, admin.id, "main").is_default


def test_pause_run_and_archive_say_who_and_wake_the_engine(app, client, admin):
    campaign_id = _add_campaign(app, admin.id)
    wakes = Wakes(admin.id)
    try:
        response = client.post(f"/campaigns/{campaign_id}/pause", follow_redirects=True)
        assert "Campaign TV offer is paused: no new calls; calls in flight finish." in (
            response.get_data(as_text=True)
        )
        assert _campaign(app, admin.id, "tv-offer").state == "paused"
        row = _row(response.get_data(as_text=True), campaign_id)
        assert "Paused" in row and "Start" in row and "Pause<" not in row
        assert f"by {admin.admin_email}" in row

        client.post(f"/campaigns/{campaign_id}/archive")
        assert _campaign(app, admin.id, "tv-offer").state == "archived"
        # An archived campaign can be started again: it runs and takes leads again.
        client.post(f"/campaigns/{campaign_id}/run")
        campaign = _campaign(app, admin.id, "tv-offer")
        assert campaign.state == "running"
        assert datetime.now(UTC) - as_utc(campaign.state_changed_at) < timedelta(minutes=1)
        assert wakes.types() == ["campaigns", "campaigns", "campaigns"]
    finally:
        wakes.close()


def test_the_default_campaign_cannot_be_archived(app, client, admin):
    default = _campaign(app, admin.id, "default")
    response = client.post(f"/campaigns/{default.id}/archive", follow_redirects=True)
    assert "The default campaign cannot be archived" in response.get_data(as_text=True)
    assert _campaign(app, admin.id, "default").state == "running"


def test_todays_figures_and_the_leads_to_dial_are_per_campaign(app, client, admin):
    tv = _add_campaign(app, admin.id)
    now = datetime.now(UTC)
    with app.app_context():
        tenant = db.session.get(Tenant, admin.id)
        default_id = default_campaign(tenant).id
        leads = [
            Lead(tenant_id=admin.id, phone=f"+1212555010{i}", campaign_id=tv, status=status)
            for i, status in enumerate(("new", "retry", "reached", "dialing"))
        ]
        db.session.add_all(leads)
        db.session.flush()

        def attempt(when, **fields):
            return Attempt(
                tenant_id=admin.id,
                lead_id=leads[0].id,
                dialed_uri="sip:x@pbx",
                invite_at=when,
                **fields,
            )

        db.session.add_all(
            [
                attempt(now, answer_at=now, transfer_result="succeeded", outcome="answered"),
                attempt(now, answer_at=now, transfer_result="unconfirmed", outcome="answered"),
                attempt(now, answer_at=now, detail="no_free_operator", outcome="technical_error"),
                attempt(now, answer_at=now, transfer_result="failed", outcome="answered"),
                attempt(now, outcome="no_answer"),
                attempt(now - timedelta(days=2), answer_at=now, outcome="answered"),
            ]
        )
        db.session.commit()
        counted = today_by_campaign(tenant)
        assert set(counted) == {default_id, tv}  # the fixture's attempt is the default's
        assert (counted[tv].attempts, counted[tv].picked_up, counted[tv].transferred) == (5, 4, 2)
        assert (counted[tv].abandoned, counted[tv].abandon_rate) == (1, 25.0)
        assert counted[default_id].attempts == 1
    row = _row(client.get("/campaigns/").get_data(as_text=True), tv)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells == ["5", "4", "2", "25.0 %", "3"]  # attempts, picked up, transferred, rate, due
    default_row = _row(client.get("/campaigns/").get_data(as_text=True), default_id)
    assert re.findall(r"<td>([^<]*)</td>", default_row) == ["1", "0", "1", "—", "1"]


def test_supervisors_read_and_change_nothing(app, client, auth, tenant_a):
    campaign_id = _add_campaign(app, tenant_a.id)
    auth.login(tenant_a.supervisor_email)
    page = client.get("/campaigns/").get_data(as_text=True)
    assert "TV offer" in page
    assert "New campaign" not in page and "<button" not in page.split("<main>")[1]
    form = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "readonly" in form and "Save" not in form
    assert client.get("/campaigns/new").status_code == 403
    for action in ("pause", "archive", "run"):
        assert client.post(f"/campaigns/{campaign_id}/{action}").status_code == 403
    assert (
        client.post(f"/campaigns/{campaign_id}", data={"name": "X", "key": "x"}).status_code == 403
    )
    assert _campaign(app, tenant_a.id, "tv-offer").state == "running"


def test_operators_do_not_see_campaigns(client, auth, tenant_a):
    auth.login(tenant_a.operator_email)
    assert client.get("/campaigns/").status_code == 403


def test_the_campaigns_page_speaks_russian(app, client, admin):
    _add_campaign(app, admin.id)
    client.get("/lang/ru")
    page = client.get("/campaigns/").get_data(as_text=True)
    for words in ("Кампании", "Запущена", "Приостановить", "В архив", "Новая кампания"):
        assert words in page, words
    assert "Каждая кампания звонит по своим правилам" in page
    form = client.get("/campaigns/new").get_data(as_text=True)
    assert "Ключ" in form and "Название кампании" in form


def test_each_campaign_says_whether_it_dials_and_why_not(app, client, admin):
    """Its state, its leads, whether one of its operators is on line, then the engine."""
    from webapp import bus
    from webapp.services.campaigns import add_member, set_state

    paused, staffed, empty = (
        _add_campaign(app, admin.id, name, key)
        for name, key in (("Held", "held"), ("Staffed", "staffed"), ("Empty", "empty"))
    )
    with app.app_context():
        for campaign_id in (paused, staffed):
            db.session.add(Lead(tenant_id=admin.id, campaign_id=campaign_id, phone="+15550101"))
        db.session.commit()
        set_state(db.session.get(Campaign, paused), CampaignState.PAUSED, None)
        add_member(db.session.get(Campaign, staffed), operator_id=admin.operator_id)
    default = _campaign(app, admin.id, "default").id  # the fixture's lead is there
    with app.app_context():  # its account: the campaigns' own reasons are test_calling's
        give_an_account(admin.id)

    def why() -> dict:
        page = client.get("/campaigns/").get_data(as_text=True)
        found = {}
        for campaign_id in (default, paused, staffed, empty):
            cell = _row(page, campaign_id).split("<td data-why>")[1].split("</td>")[0]
            found[campaign_id] = cell.strip()
        return found

    off = "Automatic dialing is off."  # the fixture's company: dialing off
    assert why() == {
        default: off,
        paused: "Paused: no new calls.",
        staffed: "None of its operators is on line.",  # its one operator is off line
        empty: "No leads to dial.",
    }
    with app.app_context():
        bus.presence(admin.id).go_on_line(admin.operator_id)
    assert why()[staffed] == off  # on line now: what the engine says
