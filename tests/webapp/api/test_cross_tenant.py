"""With tenant A's token, every API route that takes an id is tried with tenant B's
objects: each answers 404 exactly like a missing object, and nothing of B changes."""

import pytest

from webapp.extensions import db
from webapp.models import DoNotCall, Lead
from webapp.services.leads import add_do_not_call

#: URL arguments of the API and how to find tenant B's object for them.
OBJECT_ARGUMENTS = {"lead_id", "entry_id"}


@pytest.fixture
def b_entry_id(app, tenant_b) -> int:
    from webapp.models import Tenant

    with app.app_context():
        return add_do_not_call(db.session.get(Tenant, tenant_b.id), "+12125557777").id


def test_every_api_argument_is_covered(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            assert set(rule.arguments) <= OBJECT_ARGUMENTS, rule.endpoint


def test_tenant_a_gets_404_for_every_object_of_tenant_b(app, api, tenant_b, b_entry_id):
    ids = {"lead_id": tenant_b.lead_id, "entry_id": b_entry_id}
    tried = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or not rule.arguments:
            continue
        url = rule.rule.removeprefix("/api/v1")
        for argument in rule.arguments:
            url = url.replace(f"<int:{argument}>", str(ids[argument]))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = api.client.open(
                f"/api/v1{url}", method=method, headers=api.headers(), json={}
            )
            assert response.status_code == 404, (rule.endpoint, method)
            missing = api.client.open(
                f"/api/v1{url.replace(str(ids[argument]), '999999')}",
                method=method,
                headers=api.headers(),
                json={},
            )
            error, missing_error = response.get_json()["error"], missing.get_json()["error"]
            assert error["code"] == missing_error["code"] == "not_found"
            assert "Bravo" not in response.get_data(as_text=True)
            tried += 1
    assert tried == 5
    with app.app_context():
        lead = db.session.get(Lead, tenant_b.lead_id)
        assert lead.status == "new"
        assert db.session.get(DoNotCall, b_entry_id) is not None


def test_lists_and_lookups_show_only_the_own_tenant(api, api_b, tenant_a, tenant_b, b_entry_id):
    leads = api.get("/leads").get_json()["leads"]
    assert [lead["id"] for lead in leads] == [tenant_a.lead_id]
    assert api.get("/leads", external_id="bravo-crm-1").get_json()["leads"] == []
    assert api.get("/do-not-call").get_json()["entries"] == []
    assert [e["id"] for e in api_b.get("/do-not-call").get_json()["entries"]] == [b_entry_id]


def test_the_same_external_id_in_two_tenants_makes_two_leads(api, api_b):
    a = api.post("/leads", {"phone": "+12125551234", "external_id": "shared"})
    b = api_b.post("/leads", {"phone": "+12125551234", "external_id": "shared"})
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.get_json()["id"] != b.get_json()["id"]


def test_a_lead_cannot_go_to_nor_be_listed_by_another_tenants_campaign(
    app, api, tenant_a, tenant_b
):
    from webapp.models import Campaign, Tenant
    from webapp.services.campaigns import create_campaign

    with app.app_context():
        theirs = create_campaign(db.session.get(Tenant, tenant_b.id), "Bravo TV", "bravo-tv", None)
        theirs_id = theirs.id
    for ref in (theirs_id, str(theirs_id), "bravo-tv"):
        response = api.post("/leads", {"phone": "+12125551234", "campaign": ref})
        assert response.status_code == 422, ref
        assert response.get_json()["error"]["field"] == "campaign"
        bulk = api.post("/leads/bulk", {"leads": [{"phone": "+12125551234", "campaign": ref}]})
        assert bulk.get_json()["failed"] == 1
        assert api.get("/leads", campaign=str(ref)).status_code == 422
        assert "Bravo" not in response.get_data(as_text=True) + bulk.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Lead).filter_by(campaign_id=theirs_id).count() == 0
        assert db.session.query(Lead).filter_by(tenant_id=tenant_a.id).count() == 1
        assert db.session.get(Campaign, theirs_id).name == "Bravo TV"
