"""Signed in as tenant A's admin, every route that takes an object id is tried with
tenant B's objects: each answers 404, and nothing of tenant B changes or shows."""

import re

import pytest
from sqlalchemy import func, select

from engine.formats import DEFAULT_DIAL_FORMAT
from tests.webapp.objects import add_portal_objects
from tests.webapp.reports.objects import add_report_objects
from webapp.extensions import db
from webapp.leads import imports
from webapp.models import (
    ApiClient,
    ApiToken,
    Campaign,
    CampaignMember,
    DoNotCall,
    Operator,
    SipAccount,
    Team,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)

#: URL arguments that name a tenant-owned object, and the fixture attribute holding B's id.
OBJECT_ARGUMENTS = {
    "operator_id": "operator_id",
    "team_id": "team_id",
    "user_id": "supervisor_id",
    "lead_id": "lead_id",
    "entry_id": "entry_id",
    "upload_id": "upload_id",
    "job_id": "import_job_id",
    "api_token_id": "api_token_id",
    "api_client_id": "api_client_id",
    "webhook_id": "webhook_id",
    "attempt_id": "attempt_id",
    "campaign_id": "campaign_id",
    "member_id": "member_id",
    "account_id": "account_id",
}
#: A campaign's Calling tab, as an attacker would fill it (with tenant A's own account).
CALLING = {
    "retry_no_answer_minutes": "1",
    "retry_unavailable_minutes": "1",
    "retry_busy_minutes": "1",
    "retry_technical_error_minutes": "1",
    "max_attempts": "99",
    "ring_timeout_seconds": "60",
    "calling_hours_start": "00:00",
    "calling_hours_end": "00:00",
    "calling_weekdays": ["1", "2", "3", "4", "5", "6", "7"],
    "pacing_mode": "multiplier",
    "call_multiplier": "5",
    "abandon_rate_cap_percent": "20",
    "abandon_rate_window_days": "1",
    "abandon_tolerance_seconds": "2",
    "max_calls_at_once": "1000",
    "max_calls_per_second": "500",
    "wrap_up_timeout_seconds": "0",
    "failed_transfers_limit": "0",
    "results": "Hacked",
}
#: A route's job id names an import, or (under /settings/) a connection check.
CHECK_JOBS = "/settings/"


@pytest.fixture
def config_overrides(tmp_path):
    return {"upload_dir": str(tmp_path / "uploads")}


def _object_rules(app):
    """The portal's routes; the API answers a session with 401 whatever the tenant, and
    tests/webapp/api/test_cross_tenant.py tries it with tenant A's bearer."""
    for rule in app.url_map.iter_rules():
        if rule.arguments and rule.endpoint != "static" and not rule.endpoint.startswith("api."):
            yield rule


def test_every_object_argument_is_covered(app):
    unknown = set()
    for rule in _object_rules(app):
        if rule.endpoint.startswith(("auth.", "pages.", "staff.")):
            continue  # tokens and language codes; staff read every tenant (tests/webapp/staff)
        unknown |= set(rule.arguments) - set(OBJECT_ARGUMENTS)
    assert unknown == set()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tenant_a_gets_404_for_every_object_of_tenant_b(
    app, client, auth, tenant_a, tenant_b, method, request
):
    add_portal_objects(app, tenant_a, request)
    add_portal_objects(app, tenant_b, request)
    add_report_objects(app, tenant_a)
    add_report_objects(app, tenant_b)
    auth.login(tenant_a.admin_email)
    tried = 0
    for rule in _object_rules(app):
        if set(rule.arguments) - set(OBJECT_ARGUMENTS) or method not in rule.methods:
            continue

        def value(match, rule=rule):
            attribute = OBJECT_ARGUMENTS[match.group(1)]
            if attribute == "import_job_id" and rule.rule.startswith(CHECK_JOBS):
                attribute = "check_id"
            return str(getattr(tenant_b, attribute))

        url = re.sub(r"<(?:\w+:)?(\w+)>", value, rule.rule)
        response = client.open(
            url,
            method=method,
            data={
                "name": "Hacked",
                "key": "hacked",
                "extension": "666",
                "team_id": "0",
                "url": "https://evil.example/hook",
                "active": "y",
                "weight": "77",
                "who": f"operator-{tenant_b.operator_id}",
                "host": "evil.example",
                "port": "5060",
                "transport": "udp",
                "username": "hacked",
                "dial_format": "9{number}@{host}",
                "refer_format": "{extension}@{host}",
                "sip_account_id": str(tenant_a.account_id),
                **CALLING,
            },
        )
        assert response.status_code == 404, (rule.endpoint, method)
        assert "Bravo" not in response.get_data(as_text=True)
        tried += 1
    assert tried >= (13 if method == "GET" else 24)
    with app.app_context():
        operator = db.session.get(Operator, tenant_b.operator_id)
        assert (operator.name, operator.extension, operator.active) == (
            "Bravo operator",
            "101",
            True,
        )
        assert db.session.get(Team, tenant_b.team_id).name == "Bravo team"
        campaign = db.session.get(Campaign, tenant_b.campaign_id)
        assert (campaign.name, campaign.key, campaign.state) == ("Bravo TV", "tv-offer", "running")
        assert campaign.state_changed_by_id is None
        member = db.session.get(CampaignMember, tenant_b.member_id)
        assert (member.campaign_id, member.operator_id, member.weight) == (
            tenant_b.campaign_id,
            tenant_b.operator_id,
            5,
        )
        assert db.session.scalar(select(func.count()).select_from(CampaignMember)) == 2
        # Their account and their campaigns' rules are untouched; no campaign was duplicated.
        account = db.session.get(SipAccount, tenant_b.account_id)
        assert (account.name, account.host, account.username) == (
            "Bravo PBX",
            f"pbx.{tenant_b.id}.example",
            "u",
        )
        assert account.dial_format == DEFAULT_DIAL_FORMAT and account.password_encrypted
        theirs = db.session.scalars(select(Campaign).where(Campaign.tenant_id == tenant_b.id)).all()
        assert len(theirs) == 2
        for theirs_campaign in theirs:
            assert theirs_campaign.sip_account_id == tenant_b.account_id
            assert (theirs_campaign.max_attempts, theirs_campaign.retry_busy_minutes) == (5, 5)
        assert db.session.scalar(select(func.count()).select_from(Campaign)) == 4
        assert db.session.get(User, tenant_b.supervisor_id).active is True
        assert db.session.get(DoNotCall, tenant_b.entry_id) is not None
        assert imports.find_upload(tenant_b.id, tenant_b.upload_id) is not None
        assert db.session.get(ApiToken, tenant_b.api_token_id) is not None
        assert db.session.get(ApiClient, tenant_b.api_client_id) is not None
        webhook = db.session.get(WebhookEndpoint, tenant_b.webhook_id)
        assert (webhook.url, webhook.active) == ("https://crm.bravo.example/hooks", True)
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_lists_show_only_the_own_tenant(client, auth, tenant_a, tenant_b):
    auth.login(tenant_a.admin_email)
    page = client.get("/operators/").get_data(as_text=True)
    assert "Alpha operator" in page
    assert "Bravo" not in page


def test_the_lead_list_and_search_show_only_the_own_tenant(client, auth, tenant_a, tenant_b):
    auth.login(tenant_a.admin_email)
    for query in ({}, {"q": "+1555"}, {"q": "bravo-crm-1"}, {"q": "lead"}):
        page = client.get("/leads/", query_string=query).get_data(as_text=True)
        # (the search text itself comes back in the form and the language links)
        assert "Bravo lead" not in page and f"/leads/{tenant_b.lead_id}" not in page


def test_settings_are_the_own_tenants(app, client, auth, tenant_a, tenant_b, request):
    add_portal_objects(app, tenant_a, request)
    add_portal_objects(app, tenant_b, request)
    auth.login(tenant_b.admin_email)
    client.post(
        f"/settings/sip/{tenant_b.account_id}/formats",
        data={"dial_format": "9{number}@{host}", "refer_format": "{extension}@{host}"},
    )
    auth.logout()
    auth.login(tenant_a.admin_email)
    page = client.get(f"/settings/sip/{tenant_a.account_id}/formats").get_data(as_text=True)
    assert "9{number}" not in page
    listing = client.get("/settings/sip").get_data(as_text=True)
    assert "Alpha PBX" in listing and "Bravo" not in listing
    assert f'data-sip-account="{tenant_b.account_id}"' not in listing


def test_a_campaign_dials_only_through_its_own_tenants_account(
    app, client, auth, tenant_a, tenant_b, request
):
    """Their account is no choice on our Calling tab, the service refuses it (worded as one
    that does not exist), and the database's composite foreign key refuses it too."""
    from sqlalchemy.exc import IntegrityError

    from webapp.services.campaigns import CampaignError, update_rules

    add_portal_objects(app, tenant_a, request)
    add_portal_objects(app, tenant_b, request)
    auth.login(tenant_a.admin_email)
    url = f"/campaigns/{tenant_a.campaign_id}/calling"
    page = client.get(url).get_data(as_text=True)
    assert "Bravo" not in page
    response = client.post(url, data={**CALLING, "sip_account_id": str(tenant_b.account_id)})
    assert response.status_code == 200 and "Not a valid choice" in response.get_data(as_text=True)
    with app.app_context():
        campaign = db.session.get(Campaign, tenant_a.campaign_id)
        with pytest.raises(CampaignError, match="There is no SIP account"):
            update_rules(campaign, {"sip_account_id": tenant_b.account_id})
        db.session.rollback()
        campaign = db.session.get(Campaign, tenant_a.campaign_id)
        campaign.sip_account_id = tenant_b.account_id
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        assert db.session.get(Campaign, tenant_a.campaign_id).sip_account_id == tenant_a.account_id


def test_campaigns_are_the_own_tenants(app, client, auth, tenant_a, tenant_b, request):
    add_portal_objects(app, tenant_a, request)
    add_portal_objects(app, tenant_b, request)
    auth.login(tenant_a.admin_email)
    page = client.get("/campaigns/").get_data(as_text=True)
    assert "Alpha TV" in page and "Bravo" not in page
    assert f'data-campaign="{tenant_b.campaign_id}"' not in page
    # Their campaign is no filter of the lead list, and no choice for an import.
    leads = client.get("/leads/", query_string={"campaign": tenant_b.campaign_id})
    assert "Alpha lead" in leads.get_data(as_text=True)
    assert "Bravo" not in leads.get_data(as_text=True)
    mapping = client.get(f"/leads/import/{tenant_a.upload_id}").get_data(as_text=True)
    assert "Alpha TV" in mapping and "Bravo" not in mapping
    # A new campaign may take the name and key another tenant uses.
    response = client.post("/campaigns/new", data={"name": "Bravo TV", "key": "bravo-tv"})
    assert response.status_code == 302
    with app.app_context():
        theirs = db.session.get(Campaign, tenant_b.campaign_id)
        assert (theirs.tenant_id, theirs.name, theirs.key) == (tenant_b.id, "Bravo TV", "tv-offer")


def test_campaign_members_are_the_own_tenants(app, client, auth, tenant_a, tenant_b, request):
    """Their member under our campaign's URL is a 404; their operator or team is no choice
    of our form, and the service refuses them too (worded as one that does not exist)."""
    from webapp.services.campaigns import CampaignError, add_member

    add_portal_objects(app, tenant_a, request)
    add_portal_objects(app, tenant_b, request)
    auth.login(tenant_a.admin_email)
    ours, theirs = tenant_a.campaign_id, tenant_b.member_id
    member_url = f"/campaigns/{ours}/members/{theirs}"
    for url in (member_url, f"{member_url}/remove"):
        assert client.post(url, data={"weight": "9"}).status_code == 404
    page = client.get(f"/campaigns/{ours}/members").get_data(as_text=True)
    assert "Bravo" not in page
    assert f"operator-{tenant_b.operator_id}" not in page
    for who in (f"operator-{tenant_b.operator_id}", f"team-{tenant_b.team_id}"):
        response = client.post(f"/campaigns/{ours}/members", data={"who": who, "weight": "3"})
        assert response.status_code == 200 and "Not a valid choice" in response.get_data(
            as_text=True
        )
    with app.app_context():
        campaign = db.session.get(Campaign, ours)
        for kind, other in (("operator", tenant_b.operator_id), ("team", tenant_b.team_id)):
            with pytest.raises(CampaignError, match=f"There is no {kind}"):
                add_member(campaign, **{f"{kind}_id": other})
            db.session.rollback()
        rows = db.session.scalars(select(CampaignMember).order_by(CampaignMember.id)).all()
        assert [(m.tenant_id, m.campaign_id, m.weight) for m in rows] == [
            (tenant_a.id, tenant_a.campaign_id, 5),
            (tenant_b.id, tenant_b.campaign_id, 5),
        ]
        assert db.session.get(CampaignMember, theirs).weight == 5


#: Pages that take a campaign filter (`?campaign=<id>`), besides the lead list above.
CAMPAIGN_FILTERED = (
    "/reports/",
    "/reports/calls",
    "/reports/calls.csv",
    "/reports/operators",
    "/reports/answers",
    "/reports/failed-transfers",
    "/reports/results",
    "/reports/results.csv",
    "/live/",
    "/live/state",
)


def test_another_tenants_campaign_as_a_filter_shows_nothing(
    app, client, auth, tenant_a, tenant_b, request
):
    """Tenant B's campaign as tenant A's filter: no page shows B's calls or names, nor A's
    (the filter finds nothing: a campaign of another tenant is no campaign of A's)."""
    from webapp.models import Attempt, Lead

    add_portal_objects(app, tenant_a, request)
    add_portal_objects(app, tenant_b, request)
    with app.app_context():  # a call of B's campaign today
        lead = Lead(
            tenant_id=tenant_b.id,
            phone="+15550188",
            name="Bravo TV lead",
            campaign_id=tenant_b.campaign_id,
        )
        db.session.add(lead)
        db.session.flush()
        db.session.add(
            Attempt(
                tenant_id=tenant_b.id,
                lead_id=lead.id,
                operator_id=tenant_b.operator_id,
                dialed_uri="sip:+15550188@pbx",
                outcome="answered",
                invite_at=db.func.now(),
                transfer_result="succeeded",
            )
        )
        db.session.commit()
    auth.login(tenant_a.admin_email)
    for path in CAMPAIGN_FILTERED:
        response = client.get(path, query_string={"campaign": tenant_b.campaign_id})
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        assert "Bravo" not in text, path
        # (A's own operators and teams stay choices of the call log's other filters)
        assert "Alpha lead" not in text, path
        assert "data-attempt=" not in text and "data-operator=" not in text, path
    state = client.get("/live/state", query_string={"campaign": tenant_b.campaign_id})
    assert state.get_json()["today"]["attempts"] == 0 and state.get_json()["operators"] == []
    rows = client.get("/reports/calls.csv", query_string={"campaign": tenant_b.campaign_id})
    assert len(rows.get_data(as_text=True).strip().splitlines()) == 1  # the header alone
    # Their campaign is no choice of A's filters.
    page = client.get("/reports/").get_data(as_text=True)
    assert "Alpha TV" in page and f'value="{tenant_b.campaign_id}"' not in page
