"""Campaigns through the API, on SQLite and PostgreSQL: a lead names its campaign by id or
key (none: the default campaign); an unknown, archived or another tenant's campaign is a 422
and nothing is stored; leads and attempts say their campaign; the list filters by it."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead, Tenant
from webapp.services.campaigns import create_campaign


@pytest.fixture
def campaigns(app, tenant_a, tenant_b) -> dict[str, int]:
    """Tenant A's campaigns by key (`default`, running `tv-offer`, archived `old`), and
    tenant B's `tv-offer` as `bravo`."""
    with app.app_context():
        a = db.session.get(Tenant, tenant_a.id)
        tv = create_campaign(a, "TV offer", "tv-offer", None)
        old = create_campaign(a, "Old offer", "old", None)
        old.state = "archived"
        bravo = create_campaign(db.session.get(Tenant, tenant_b.id), "Bravo TV", "tv-offer", None)
        db.session.commit()
        default = db.session.scalar(
            select(Campaign.id).where(Campaign.tenant_id == tenant_a.id, Campaign.is_default)
        )
        return {"default": default, "tv-offer": tv.id, "old": old.id, "bravo": bravo.id}


def _count(app, tenant_id: int) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(Lead).where(Lead.tenant_id == tenant_id)
        )


def test_a_lead_goes_to_the_campaign_named_by_key_or_id(api, campaigns):
    tv = {"id": campaigns["tv-offer"], "key": "tv-offer"}
    default = {"id": campaigns["default"], "key": "default"}
    for ref, expected in [
        ("tv-offer", tv),
        ("TV-Offer", tv),
        (campaigns["tv-offer"], tv),
        (str(campaigns["tv-offer"]), tv),
        (None, default),
        ("default", default),
    ]:
        response = api.post("/leads", {"phone": "+12125551234", "campaign": ref})
        assert response.status_code == 201, ref
        assert response.get_json()["campaign"] == expected, ref
    lead = api.post("/leads", {"phone": "+12125551234"}).get_json()
    assert lead["campaign"] == default  # no campaign: the default one, as before campaigns
    assert api.get(f"/leads/{lead['id']}").get_json()["campaign"] == default


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("radio", "There is no campaign 'radio' in this company."),
        (999999, "There is no campaign 999999 in this company."),
        (-1, "There is no campaign -1 in this company."),
        (2**70, "There is no campaign"),
        ("old", "The campaign 'Old offer' is archived: it takes no new leads."),
        ("<bravo>", "There is no campaign"),  # tenant B's campaign, by its id
        (True, "campaign must be a campaign's id (a number) or key (a string), or null."),
        ({"id": 1}, "campaign must be a campaign's id"),
        ("  ", "There is no campaign"),
    ],
)
def test_an_unknown_archived_or_foreign_campaign_is_a_422_and_nothing_is_stored(
    app, api, tenant_a, campaigns, ref, words
):
    if ref == "<bravo>":
        ref = campaigns["bravo"]
    before = _count(app, tenant_a.id)
    response = api.post("/leads", {"phone": "+12125551234", "campaign": ref, "external_id": "x"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "campaign")
    assert words in error["message"]
    assert "Bravo" not in error["message"]
    assert _count(app, tenant_a.id) == before


def test_another_tenants_campaign_is_answered_like_a_missing_one(api, campaigns):
    theirs = api.post("/leads", {"phone": "+12125551234", "campaign": campaigns["bravo"]})
    missing = api.post("/leads", {"phone": "+12125551234", "campaign": campaigns["bravo"] + 1000})
    assert theirs.status_code == missing.status_code == 422
    words = theirs.get_json()["error"]["message"].replace(str(campaigns["bravo"]), "N")
    assert words == missing.get_json()["error"]["message"].replace(
        str(campaigns["bravo"] + 1000), "N"
    )


def test_a_known_external_id_keeps_its_campaign(api, campaigns):
    first = api.post("/leads", {"phone": "+12125551234", "external_id": "crm-1"}).get_json()
    again = api.post(
        "/leads", {"phone": "+12125551234", "external_id": "crm-1", "campaign": "tv-offer"}
    )
    assert again.status_code == 200
    assert (
        again.get_json()["campaign"]
        == first["campaign"]
        == {
            "id": campaigns["default"],
            "key": "default",
        }
    )


def test_in_a_bulk_a_bad_campaign_fails_its_index_only(app, api, tenant_a, campaigns):
    response = api.post(
        "/leads/bulk",
        {
            "leads": [
                {"phone": "+12125551001", "campaign": "tv-offer"},
                {"phone": "+12125551002", "campaign": "old"},
                {"phone": "+12125551003", "campaign": "nope"},
                {"phone": "+12125551004"},
                {"phone": "+12125551005", "campaign": campaigns["bravo"]},
                {"phone": "+12125551006", "campaign": "tv-offer"},
            ]
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["existing"], body["failed"]) == (3, 0, 3)
    results = body["results"]
    assert [r["status"] for r in results] == [
        "created",
        "failed",
        "failed",
        "created",
        "failed",
        "created",
    ]
    assert results[1]["error"]["field"] == "campaign"
    assert "archived" in results[1]["error"]["message"]
    assert "There is no campaign 'nope'" in results[2]["error"]["message"]
    assert results[4]["error"]["field"] == "campaign"
    assert [results[i]["lead"]["campaign"]["key"] for i in (0, 3, 5)] == [
        "tv-offer",
        "default",
        "tv-offer",
    ]
    with app.app_context():
        phones = set(
            db.session.scalars(
                select(Lead.phone).where(
                    Lead.tenant_id == tenant_a.id, Lead.campaign_id == campaigns["tv-offer"]
                )
            )
        )
    assert phones == {"+12125551001", "+12125551006"}


def test_attempts_say_their_campaign(app, api, tenant_a, campaigns):
    lead = api.post("/leads", {"phone": "+12125551234", "campaign": "tv-offer"}).get_json()
    with app.app_context():
        db.session.add(
            Attempt(
                tenant_id=tenant_a.id,
                lead_id=lead["id"],
                dialed_uri="sip:+12125551234@pbx",
                invite_at=datetime.now(UTC),
            )
        )
        db.session.commit()
    [attempt] = api.get(f"/leads/{lead['id']}/attempts").get_json()["attempts"]
    assert attempt["campaign"] == {"id": campaigns["tv-offer"], "key": "tv-offer"}
    [old] = api.get(f"/leads/{tenant_a.lead_id}/attempts").get_json()["attempts"]
    assert old["campaign"] == {"id": campaigns["default"], "key": "default"}


def test_the_list_filters_by_campaign(app, api, tenant_a, campaigns):
    tv = api.post("/leads", {"phone": "+12125551234", "campaign": "tv-offer"}).get_json()
    with app.app_context():  # a lead of a campaign archived since
        db.session.add(
            Lead(tenant_id=tenant_a.id, phone="+12125559999", campaign_id=campaigns["old"])
        )
        db.session.commit()
    for ref in ("tv-offer", str(campaigns["tv-offer"])):
        assert [lead["id"] for lead in api.get("/leads", campaign=ref).get_json()["leads"]] == [
            tv["id"]
        ]
    defaults = api.get("/leads", campaign="default").get_json()["leads"]
    assert [lead["id"] for lead in defaults] == [tenant_a.lead_id]
    olds = api.get("/leads", campaign="old").get_json()["leads"]
    assert [lead["phone"] for lead in olds] == ["+12125559999"]
    for ref in ("nope", str(campaigns["bravo"])):
        response = api.get("/leads", campaign=ref)
        assert response.status_code == 422
        assert response.get_json()["error"]["field"] == "campaign"
