"""The live wall: operators' states from presence, today's counters from the attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt


def add_attempt(app, tenant, **values):
    with app.app_context():
        db.session.add(
            Attempt(
                tenant_id=tenant.id,
                lead_id=tenant.lead_id,
                dialed_uri="sip:+1@pbx",
                invite_at=datetime.now(UTC),
                **values,
            )
        )
        db.session.commit()


def test_the_wall_counts_today_and_shows_each_operator(app, client, auth, tenant_a, tenant_b):
    now = datetime.now(UTC)
    # The fixture's tenant has one answered, transferred attempt already (conftest).
    add_attempt(app, tenant_a, outcome="busy", sip_code=486)
    add_attempt(app, tenant_a, outcome="technical_error", detail="no_free_operator", answer_at=now)
    add_attempt(
        app,
        tenant_a,
        outcome="answered",
        answer_at=now,
        transfer_result="succeeded",
        operator_id=tenant_a.operator_id,
    )
    add_attempt(app, tenant_b, outcome="answered", answer_at=now)  # another tenant's
    with app.app_context():
        db.session.add(
            Attempt(
                tenant_id=tenant_a.id,
                lead_id=tenant_a.lead_id,
                dialed_uri="sip:+1@pbx",
                outcome="busy",
                invite_at=now - timedelta(days=2),
            )
        )
        db.session.commit()
        presence = bus.presence(tenant_a.id)
        presence.go_on_line(tenant_a.operator_id)
        presence.take(tenant_a.lead_id)
    auth.login(tenant_a.supervisor_email)
    state = client.get("/live/state").get_json()
    assert state["today"]["attempts"] == 4
    assert state["today"]["picked_up"] == 2  # the fixture's attempt has no answer time
    assert (state["today"]["transferred"], state["today"]["abandoned"]) == (2, 1)
    assert state["today"]["abandon_rate"] == 50.0
    [operator] = state["operators"]
    assert (operator["state"], operator["lead"], operator["state_label"]) == (
        "transferring",
        "Alpha lead",
        "call coming",
    )
    assert state["engine_text"] == "Automatic dialing is off."
    page = client.get("/live/").get_data(as_text=True)
    assert "Alpha operator" in page and "call coming" in page


def test_an_operator_taken_off_line_for_failed_transfers_says_why(app, client, auth, tenant_a):
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.go_on_line(tenant_a.operator_id)
        presence.take(tenant_a.lead_id)
        presence.transferred(tenant_a.operator_id, False, failure_limit=1)
        bus.client().hset(
            bus.keys(tenant_a.id).off_line_why, tenant_a.operator_id, "failed_transfers"
        )  # what the engine writes
    auth.login(tenant_a.admin_email)
    client.get("/lang/ru")
    [operator] = client.get("/live/state").get_json()["operators"]
    assert operator["state"] == "off_line" and operator["off_line_why"] == "failed_transfers"
    assert "не удавались" in operator["why"]
    with app.app_context():
        bus.presence(tenant_a.id).go_on_line(tenant_a.operator_id)  # back by choice
    [operator] = client.get("/live/state").get_json()["operators"]
    assert operator["state"] == "free" and operator["why"] == ""


# --- campaigns -----------------------------------------------------------------------------


def add_campaign_with_calls(app, tenant, name="TV offer", members=()):
    """A second campaign with a lead and two attempts today (one picked up and abandoned),
    worked by `members` (operator ids); returns its id and a second operator's id, who works
    the default campaign only when `members` are given."""
    from webapp.models import Campaign, CampaignMember, Lead, Tenant
    from webapp.services.accounts import create_operator

    now = datetime.now(UTC)
    with app.app_context():
        campaign = Campaign(tenant_id=tenant.id, name=name, key="tv-live")
        db.session.add(campaign)
        db.session.flush()
        lead = Lead(tenant_id=tenant.id, phone="+15550177", name="TV lead", campaign_id=campaign.id)
        db.session.add(lead)
        db.session.flush()
        for values in (
            {"outcome": "busy"},
            {"outcome": "technical_error", "detail": "no_free_operator", "answer_at": now},
        ):
            db.session.add(
                Attempt(
                    tenant_id=tenant.id,
                    lead_id=lead.id,
                    dialed_uri="sip:+1@pbx",
                    invite_at=now,
                    **values,
                )
            )
        other = create_operator(
            db.session.get(Tenant, tenant.id),
            name="Zoe second",
            email=f"zoe{tenant.id}@live.example",
            extension="109",
            password="x" * 12,
            team_id=None,
        )
        for operator_id in members:
            db.session.add(
                CampaignMember(
                    tenant_id=tenant.id, campaign_id=campaign.id, operator_id=operator_id
                )
            )
        db.session.commit()
        return campaign.id, other.id


def test_the_wall_of_one_campaign(app, client, auth, tenant_a):
    tv, zoe = add_campaign_with_calls(app, tenant_a, members=[tenant_a.operator_id])
    auth.login(tenant_a.supervisor_email)
    every = client.get("/live/state").get_json()
    assert every["today"]["attempts"] == 3  # the fixture's attempt and the campaign's two
    assert {op["id"] for op in every["operators"]} == {tenant_a.operator_id, zoe}
    rows = {row["name"]: row for row in every["by_campaign"]}
    assert (rows["TV offer"]["attempts"], rows["TV offer"]["abandon_rate"]) == (2, 100.0)
    assert rows["Default"]["attempts"] == 1 and list(rows) == ["Default", "TV offer"]

    one = client.get("/live/state", query_string={"campaign": tv}).get_json()
    assert one["campaign"] == tv and one["by_campaign"] == []
    assert (one["today"]["attempts"], one["today"]["picked_up"], one["today"]["abandoned"]) == (
        2,
        1,
        1,
    )
    # Who works it: its members (Zoe is not one).
    assert [op["id"] for op in one["operators"]] == [tenant_a.operator_id]
    # The default campaign has no members: every operator works it.
    with app.app_context():
        from webapp.models import Campaign

        default = db.session.scalar(
            db.select(Campaign.id).where(
                Campaign.tenant_id == tenant_a.id, Campaign.is_default.is_(True)
            )
        )
    default_wall = client.get("/live/state", query_string={"campaign": default}).get_json()
    assert default_wall["today"]["attempts"] == 1
    assert {op["id"] for op in default_wall["operators"]} == {tenant_a.operator_id, zoe}

    page = client.get("/live/", query_string={"campaign": tv}).get_data(as_text=True)
    assert f'<option value="{tv}" selected>TV offer</option>' in page
    assert f"/live/state?campaign={tv}" in page and "Zoe second" not in page
    page = client.get("/live/").get_data(as_text=True)
    assert f'data-campaign="{tv}"' in page and "Zoe second" in page


def test_a_team_works_a_campaign_through_its_operators(app, client, auth, tenant_a):
    from webapp.models import CampaignMember

    tv, _zoe = add_campaign_with_calls(app, tenant_a)
    with app.app_context():
        db.session.add(
            CampaignMember(tenant_id=tenant_a.id, campaign_id=tv, team_id=tenant_a.team_id)
        )
        db.session.commit()
    auth.login(tenant_a.admin_email)
    state = client.get("/live/state", query_string={"campaign": tv}).get_json()
    assert [op["id"] for op in state["operators"]] == [tenant_a.operator_id]  # Alpha team's


def test_a_tenant_with_one_campaign_has_no_campaign_table(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    assert client.get("/live/state").get_json()["by_campaign"] == []
    page = client.get("/live/").get_data(as_text=True)
    assert "data-campaigns" not in page and 'name="campaign"' not in page


def test_another_tenants_campaign_shows_nothing_on_the_wall(app, client, auth, tenant_a, tenant_b):
    theirs, _zoe = add_campaign_with_calls(app, tenant_b, name="Bravo TV")
    add_campaign_with_calls(app, tenant_a)
    auth.login(tenant_a.admin_email)
    state = client.get("/live/state", query_string={"campaign": theirs}).get_json()
    assert state["today"] == {
        "attempts": 0,
        "picked_up": 0,
        "transferred": 0,
        "abandoned": 0,
        "abandon_rate": None,
    }
    assert state["operators"] == [] and state["by_campaign"] == []
    page = client.get("/live/", query_string={"campaign": theirs}).get_data(as_text=True)
    assert "no campaign with this id" in page and "Bravo" not in page
    assert "Alpha operator" not in page


# --- taking an operator off line -----------------------------------------------------------


def test_a_supervisor_takes_a_ghost_off_line_and_the_operator_sees_why(app, client, auth, tenant_a):
    """The operator left their console open and went home: a supervisor takes them off
    line from the wall, for a reason. The engine can no longer take them, their console's
    heartbeats do not bring them back, the wall says why and since when, and their console
    tells them who and why until they go on line again."""
    from tests.conftest import AuthActions

    ghost = app.test_client()
    AuthActions(ghost).login(tenant_a.operator_email)
    ghost.post("/console/on-line")
    auth.login(tenant_a.supervisor_email)
    # A reason is required: without one, nothing happens.
    client.post(f"/live/operators/{tenant_a.operator_id}/off-line", data={})
    assert client.get("/live/state").get_json()["operators"][0]["state"] == "free"
    answer = client.post(
        f"/live/operators/{tenant_a.operator_id}/off-line", data={"reason": "end_of_shift"}
    )
    assert answer.status_code == 302
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        assert presence.take(tenant_a.lead_id) is None  # the engine finds nobody
    assert ghost.post("/console/heartbeat", data={"on_line": "1"}).get_json()["state"] == (
        "off_line"
    )
    [operator] = client.get("/live/state").get_json()["operators"]
    assert operator["state"] == "off_line" and operator["seconds"] is not None
    assert operator["why"] == "End of shift (taken off line by a supervisor)"
    client.get("/lang/ru")
    page = client.get("/live/").get_data(as_text=True)
    assert "Конец смены (снят(а) с линии супервизором)" in page
    # Their console, when they come back to it.
    state = ghost.get("/console/state").get_json()
    assert state["label"] == "Off line · End of shift"
    assert state["notice"] == (
        f"{tenant_a.supervisor_email} took you off line: End of shift. "
        "Go on line when you are back at work."
    )
    assert tenant_a.supervisor_email in ghost.get("/console/").get_data(as_text=True)
    # Someone not on line cannot be taken off again.
    client.get("/lang/en")
    answer = client.post(
        f"/live/operators/{tenant_a.operator_id}/off-line",
        data={"reason": "lunch"},
        follow_redirects=True,
    )
    assert "was not on line" in answer.get_data(as_text=True)
    # Back on line by their own choice: the engine may take them again, the notice is gone.
    assert (
        ghost.post("/console/on-line", headers={"Accept": "application/json"}).get_json()["state"]
        == "free"
    )
    assert ghost.get("/console/state").get_json()["notice"] == ""
    with app.app_context():
        assert (
            bus.presence(tenant_a.id).take(tenant_a.lead_id) == str(tenant_a.operator_id).encode()
        )
        from webapp.models import OperatorSession

        whys = [
            s.off_line_why
            for s in db.session.scalars(db.select(OperatorSession).order_by(OperatorSession.id))
        ]
    assert whys == ["supervisor", None]
    # Later their console goes quiet: the wall shows no reason of the earlier break.
    with app.app_context():
        presence = bus.presence(tenant_a.id)
        presence.heartbeat_ttl = 30.0
        presence.sweep(wrap_up_timeout=0, now=__import__("time").time() + 60)
    [operator] = client.get("/live/state").get_json()["operators"]
    assert operator["state"] == "off_line" and operator["why"] == ""
    assert operator["seconds"] is None


def test_an_operator_of_another_company_cannot_be_taken_off_line(
    app, client, auth, tenant_a, tenant_b
):
    with app.app_context():
        bus.presence(tenant_b.id).go_on_line(tenant_b.operator_id)
    auth.login(tenant_a.admin_email)
    answer = client.post(
        f"/live/operators/{tenant_b.operator_id}/off-line", data={"reason": "lunch"}
    )
    assert answer.status_code == 404
    with app.app_context():
        assert bus.presence(tenant_b.id).take(tenant_b.lead_id) is not None
