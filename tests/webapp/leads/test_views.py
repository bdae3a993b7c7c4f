import re
from datetime import UTC, datetime, timedelta

import pytest

from webapp.extensions import db
from webapp.leads.views import PAGE_SIZE
from webapp.models import Attempt, Lead


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


def _add_leads(app, tenant_id, count, **fields):
    with app.app_context():
        leads = [
            Lead(tenant_id=tenant_id, phone=f"+4420700{i:05d}", name=f"Customer {i}", **fields)
            for i in range(count)
        ]
        db.session.add_all(leads)
        db.session.commit()
        return [lead.id for lead in leads]


def test_the_list_shows_leads_newest_first(app, client, admin):
    _add_leads(app, admin.id, 3)
    page = client.get("/leads/").get_data(as_text=True)
    assert page.index("Customer 2") < page.index("Customer 1") < page.index("Alpha lead")
    assert "answered" in page  # the last outcome column


def test_keyset_paging(app, client, admin):
    _add_leads(app, admin.id, PAGE_SIZE + 5)
    first = client.get("/leads/").get_data(as_text=True)
    assert f"Customer {PAGE_SIZE + 4}" in first and "Customer 0" not in first
    assert "Older leads" in first
    older_url = re.search(r'href="([^"]*before=[^"]*)"', first).group(1).replace("&amp;", "&")
    older = client.get(older_url).get_data(as_text=True)
    assert "Customer 0" in older and "Alpha lead" in older
    assert f"Customer {PAGE_SIZE + 4}" not in older
    assert "Older leads" not in older and "First page" in older


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"q": "+44 20 700 00001"}, "Customer 1", "Customer 2"),
        ({"q": "442070000002"}, "Customer 2", "Customer 1"),
        ({"q": "customer 1"}, "Customer 1", "Customer 2"),
        ({"q": "alpha-crm-1"}, "Alpha lead", "Customer 1"),
        ({"status": "new", "outcome": "answered"}, "Alpha lead", "Customer 1"),
        ({"status": "exhausted"}, "No leads match.", "Customer 1"),
        ({"q": "%"}, "No leads match.", "Customer 1"),
        ({"due": "now"}, "Customer 1", "Customer 2"),
        ({"due": "later"}, "Customer 2", "Customer 1"),
    ],
)
def test_search_and_filters(app, client, admin, query, shown, hidden):
    _add_leads(app, admin.id, 3)
    with app.app_context():
        lead = db.session.get(Lead, admin.lead_id)
        lead.last_outcome = "answered"
        later, now = datetime.now(UTC) + timedelta(hours=2), datetime.now(UTC)
        for lead in db.session.scalars(db.select(Lead).where(Lead.name.like("Customer %"))):
            lead.status = "retry"
            lead.next_attempt_at = later if lead.name == "Customer 2" else now
        db.session.commit()
    page = client.get("/leads/", query_string=query).get_data(as_text=True)
    assert shown in page and hidden not in page


def test_a_lead_page_shows_the_card_and_the_attempts(app, client, admin):
    with app.app_context():
        db.session.add(
            Attempt(
                tenant_id=admin.id,
                lead_id=admin.lead_id,
                dialed_uri="sip:x@y",
                outcome="technical_error",
                detail="no_free_operator",
                sip_code=200,
                invite_at=datetime.now(UTC),
            )
        )
        db.session.commit()
    page = client.get(f"/leads/{admin.lead_id}").get_data(as_text=True)
    assert "Alpha order" in page
    assert "Alpha operator" in page and "transferred" in page
    assert "technical error" in page and "no free operators" in page


def test_lead_pages_speak_russian(client, admin):
    client.get("/lang/ru")
    page = client.get(f"/leads/{admin.lead_id}").get_data(as_text=True)
    assert "Попытки" in page


def _campaign_with_leads(app, tenant_id: int, state: str = "running") -> int:
    from webapp.models import Tenant
    from webapp.services.campaigns import create_campaign

    with app.app_context():
        campaign = create_campaign(db.session.get(Tenant, tenant_id), "TV offer", "tv", None)
        campaign.state = state
        db.session.add(
            Lead(
                tenant_id=tenant_id,
                phone="+442070099999",
                name="TV customer",
                campaign_id=campaign.id,
            )
        )
        db.session.commit()
        return campaign.id


def test_the_list_has_a_campaign_column_and_filter(app, client, admin, tenant_b):
    tv = _campaign_with_leads(app, admin.id, state="archived")
    page = client.get("/leads/").get_data(as_text=True)
    rows = page.split("<tbody>")[1]
    assert re.search(r"TV customer</td>\s*<td></td>\s*<td>TV offer</td>", rows)
    assert re.search(r"Alpha lead</td>\s*<td>alpha-crm-1</td>\s*<td>Default</td>", rows)
    # Archived campaigns are in the filter: their leads stay to be looked at.
    assert f'<option value="{tv}" >TV offer (Archived)</option>' in page
    only_tv = client.get("/leads/", query_string={"campaign": tv}).get_data(as_text=True)
    assert "TV customer" in only_tv and "Alpha lead" not in only_tv
    assert f'<option value="{tv}" selected>' in only_tv
    assert ">Clear</a>" in only_tv and ">Clear</a>" not in page  # a filter is on
    # Another tenant's campaign (or none) is no filter: the tenant's own leads show.
    other = _campaign_with_leads(app, tenant_b.id)
    page = client.get("/leads/", query_string={"campaign": other}).get_data(as_text=True)
    assert "TV customer" in page and "Alpha lead" in page
    assert "Bravo" not in page


def test_a_lead_page_names_its_campaign(app, client, admin):
    page = client.get(f"/leads/{admin.lead_id}").get_data(as_text=True)
    assert re.search(r'Campaign</small><br><a href="/campaigns/\d+">Default</a> \(Running\)', page)


def test_a_lead_skipped_in_preview_says_why_in_both_languages(app, client, admin):
    page = client.get(f"/leads/{admin.lead_id}").get_data(as_text=True)
    assert "Skipped in preview" not in page
    with app.app_context():
        lead = db.session.get(Lead, admin.lead_id)
        lead.skip_reason, lead.skipped_at = "wrong_data", datetime.now(UTC)
        db.session.commit()
    page = client.get(f"/leads/{admin.lead_id}").get_data(as_text=True)
    assert "Skipped in preview" in page and "The lead's data is wrong" in page
    client.get("/lang/ru")
    page = client.get(f"/leads/{admin.lead_id}").get_data(as_text=True)
    assert "Пропущен при предпросмотре" in page and "Данные лида неверны" in page
