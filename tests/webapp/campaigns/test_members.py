"""Who works a campaign, on SQLite and PostgreSQL: a campaign's members page (its operators
and teams with their weights: add, change a weight, remove), what the Operators page says
each operator and team works, and who may do what. Admins change, supervisors read."""

import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.webapp.jobs import Wakes
from webapp.extensions import db
from webapp.models import Campaign, CampaignMember, Team, Tenant
from webapp.services.accounts import create_operator
from webapp.services.campaigns import add_member, create_campaign, default_campaign


@pytest.fixture
def admin(client, auth, tenant_a):
    auth.login(tenant_a.admin_email)
    return tenant_a


@pytest.fixture
def tv(app, tenant_a) -> int:
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        return create_campaign(tenant, "TV offer", "tv-offer", None).id


def _second_operator(
    app, tenant_id: int, name: str = "Boris", extension: str = "102", team_id: int | None = None
) -> int:
    """Another operator of the tenant (the fixture's "Alpha operator" is in "Alpha team")."""
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        operator = create_operator(
            tenant,
            name=name,
            email=f"{name.lower()}@alpha.example",
            extension=extension,
            password=PASSWORD,
            team_id=team_id,
        )
        db.session.commit()
        return operator.id


def _members(app, campaign_id: int) -> list[tuple[int | None, int | None, int]]:
    with app.app_context():
        rows = db.session.scalars(
            select(CampaignMember)
            .where(CampaignMember.campaign_id == campaign_id)
            .order_by(CampaignMember.id)
        ).all()
        return [(m.operator_id, m.team_id, m.weight) for m in rows]


def _row(page: str, member_id: int) -> str:
    return page.split(f'data-member="{member_id}"')[1].split("</tr>")[0]


def test_a_campaign_without_members_says_every_operator_works_it(client, admin, tv):
    page = client.get(f"/campaigns/{tv}/members").get_data(as_text=True)
    assert "Nobody is in this campaign: every operator works it, weight 1." in page
    assert "A campaign with nobody in it is worked by every operator." in page
    assert "An operator's own weight outweighs their team's" in page
    options = re.findall(r'<option value="([^"]+)"', page)
    assert options == [f"team-{admin.team_id}", f"operator-{admin.operator_id}"]
    assert 'id="working"' not in page  # everyone works it: no list of who
    # The list and the campaign's page lead here.
    assert f'href="/campaigns/{tv}/members"' in client.get("/campaigns/").get_data(as_text=True)
    assert f'href="/campaigns/{tv}/members"' in client.get(f"/campaigns/{tv}").get_data(
        as_text=True
    )


def test_an_admin_adds_a_team_and_an_operator_changes_a_weight_and_removes(app, client, admin, tv):
    boris = _second_operator(app, admin.id, team_id=admin.team_id)
    wakes = Wakes(admin.id)
    try:
        response = client.post(
            f"/campaigns/{tv}/members",
            data={"who": f"team-{admin.team_id}", "weight": "3"},
            follow_redirects=True,
        )
        page = response.get_data(as_text=True)
        assert "Alpha team works campaign TV offer now, weight 3." in page
        assert _members(app, tv) == [(None, admin.team_id, 3)]
        # Both of the team's operators take its calls, at the team's weight...
        working = page.split('id="working"')[1].split("</section>")[0]
        assert "Alpha operator (101): weight 3" in working and "Boris (102): weight 3" in working

        client.post(f"/campaigns/{tv}/members", data={"who": f"operator-{boris}", "weight": "1"})
        assert _members(app, tv) == [(None, admin.team_id, 3), (boris, None, 1)]
        # ...but an operator's own weight outweighs their team's.
        page = client.get(f"/campaigns/{tv}/members").get_data(as_text=True)
        working = page.split('id="working"')[1].split("</section>")[0]
        assert "Alpha operator (101): weight 3" in working and "Boris (102): weight 1" in working
        # Who is in it already is no choice any more.
        assert re.findall(r'<option value="([^"]+)"', page) == [f"operator-{admin.operator_id}"]

        with app.app_context():
            member_id = db.session.scalar(
                select(CampaignMember.id).where(CampaignMember.operator_id == boris)
            )
        response = client.post(
            f"/campaigns/{tv}/members/{member_id}", data={"weight": "40"}, follow_redirects=True
        )
        assert "The weight of Boris in campaign TV offer is 40 now." in response.get_data(
            as_text=True
        )
        assert 'value="40"' in _row(response.get_data(as_text=True), member_id)
        assert _members(app, tv)[1] == (boris, None, 40)

        response = client.post(f"/campaigns/{tv}/members/{member_id}/remove", follow_redirects=True)
        assert "Boris no longer works campaign TV offer." in response.get_data(as_text=True)
        assert _members(app, tv) == [(None, admin.team_id, 3)]
        team_row = _members_ids(app, tv)[0]
        response = client.post(f"/campaigns/{tv}/members/{team_row}/remove", follow_redirects=True)
        assert "Nobody is in it now: every operator works it." in response.get_data(as_text=True)
        assert _members(app, tv) == []
        assert wakes.types() == ["campaigns"] * 5
    finally:
        wakes.close()


def _members_ids(app, campaign_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(CampaignMember.id)
                .where(CampaignMember.campaign_id == campaign_id)
                .order_by(CampaignMember.id)
            )
        )


@pytest.mark.parametrize(
    ("weight", "words"),
    [
        ("0", "A weight is a whole number from 1 to 100."),
        ("101", "A weight is a whole number from 1 to 100."),
        ("two", "Not a valid integer value."),
        ("", "This field is required."),
    ],
)
def test_a_wrong_weight_is_explained_and_nothing_changes(app, client, admin, tv, weight, words):
    response = client.post(
        f"/campaigns/{tv}/members", data={"who": f"team-{admin.team_id}", "weight": weight}
    )
    assert response.status_code == 200 and words in response.get_data(as_text=True)
    assert _members(app, tv) == []
    with app.app_context():
        campaign = db.session.get(Campaign, tv)
        member_id = add_member(campaign, team_id=admin.team_id, weight=7).id
    response = client.post(
        f"/campaigns/{tv}/members/{member_id}", data={"weight": weight}, follow_redirects=True
    )
    assert f"Alpha team: {words}" in response.get_data(as_text=True)
    assert _members(app, tv) == [(None, admin.team_id, 7)]


def test_a_member_of_another_campaign_is_not_found_under_this_one(app, client, admin, tv):
    with app.app_context():
        tenant = db.session.get(Tenant, admin.id)
        member_id = add_member(default_campaign(tenant), operator_id=admin.operator_id).id
    assert client.post(f"/campaigns/{tv}/members/{member_id}/remove").status_code == 404
    assert client.post(f"/campaigns/{tv}/members/{member_id}", data={"weight": 5}).status_code == (
        404
    )
    assert client.post(f"/campaigns/{tv}/members/{member_id + 1000}/remove").status_code == 404
    assert client.get(f"/campaigns/{tv + 1000}/members").status_code == 404
    with app.app_context():
        assert db.session.get(CampaignMember, member_id).weight == 1


def test_members_with_no_active_operator_leave_the_campaign_to_nobody(app, client, admin, tv):
    with app.app_context():
        empty = Team(tenant_id=admin.id, name="Night shift")
        db.session.add(empty)
        db.session.commit()
        add_member(db.session.get(Campaign, tv), team_id=empty.id)
    page = client.get(f"/campaigns/{tv}/members").get_data(as_text=True)
    assert "None of its members is an active operator: nobody takes its calls" in page
    # A deactivated operator can be in it, is shown so, and is offered no more.
    client.post(f"/operators/{admin.operator_id}/deactivate")
    with app.app_context():
        add_member(db.session.get(Campaign, tv), operator_id=admin.operator_id, weight=2)
    page = client.get(f"/campaigns/{tv}/members").get_data(as_text=True)
    assert "deactivated" in page and "nobody takes its calls" in page


def test_a_deleted_team_leaves_its_campaigns(app, client, admin, tv):
    with app.app_context():
        add_member(db.session.get(Campaign, tv), team_id=admin.team_id, weight=4)
    wakes = Wakes(admin.id)
    try:
        client.post(f"/operators/teams/{admin.team_id}/delete")
        assert wakes.types() == ["operators"]
    finally:
        wakes.close()
    assert _members(app, tv) == []


def test_the_operators_page_says_which_campaigns_each_works(app, client, admin, tv):
    boris = _second_operator(app, admin.id, team_id=admin.team_id)
    _second_operator(app, admin.id, name="Vera", extension="103")  # no team, in no campaign
    with app.app_context():
        campaign = db.session.get(Campaign, tv)
        add_member(campaign, team_id=admin.team_id, weight=3)
        add_member(campaign, operator_id=boris, weight=9)
    page = client.get("/operators/").get_data(as_text=True)
    everyone = page.split('id="everyones"')[1].split("</p>")[0]
    assert "Campaigns with nobody in them are worked by every operator, weight 1:" in everyone
    assert "Default" in everyone and "TV offer" not in everyone

    def cell(name: str) -> str:
        row = page.split(f">{name}</a>")[1].split("</tr>")[0]
        return re.sub(r"\s+", " ", row.split("data-campaigns>")[1].split("</td>")[0])

    link = f'<a href="/campaigns/{tv}/members">TV offer</a>'
    assert cell("Alpha operator") == f"{link} (weight 3, through the team)"
    assert cell("Boris") == f"{link} (weight 9)"  # their own weight outweighs the team's
    assert cell("Vera") == "—"
    assert cell("Alpha team") == f"{link} (weight 3)"
    # A paused campaign says so; an archived one is not listed.
    client.post(f"/campaigns/{tv}/pause")
    assert "(weight 9, paused)" in client.get("/operators/").get_data(as_text=True)
    client.post(f"/campaigns/{tv}/archive")
    assert link not in client.get("/operators/").get_data(as_text=True)


def test_supervisors_read_and_change_nothing(app, client, auth, tenant_a, tv):
    with app.app_context():
        member_id = add_member(db.session.get(Campaign, tv), team_id=tenant_a.team_id).id
    auth.login(tenant_a.supervisor_email)
    page = client.get(f"/campaigns/{tv}/members").get_data(as_text=True)
    assert "Alpha team" in page
    main = page.split("<main>")[1]
    assert "<form" not in main and "<button" not in main and "<input" not in main
    assert "Add an operator or a team" not in page
    assert "TV offer" in client.get("/operators/").get_data(as_text=True)
    for url, data in (
        (f"/campaigns/{tv}/members", {"who": f"operator-{tenant_a.operator_id}", "weight": "2"}),
        (f"/campaigns/{tv}/members/{member_id}", {"weight": "50"}),
        (f"/campaigns/{tv}/members/{member_id}/remove", {}),
    ):
        assert client.post(url, data=data).status_code == 403, url
    assert _members(app, tv) == [(None, tenant_a.team_id, 1)]


def test_operators_do_not_see_who_works_a_campaign(client, auth, tenant_a, tv):
    auth.login(tenant_a.operator_email)
    assert client.get(f"/campaigns/{tv}/members").status_code == 403


def test_the_members_page_speaks_russian(app, client, admin, tv):
    with app.app_context():
        add_member(db.session.get(Campaign, tv), team_id=admin.team_id, weight=2)
    client.get("/lang/ru")
    page = client.get(f"/campaigns/{tv}/members").get_data(as_text=True)
    for words in (
        "Кто работает в кампании TV offer",
        "Кампанию, в которой никого нет, обслуживают все операторы",
        "Вес",
        "Группа",
        "Добавить оператора или группу",
        "Убрать",
    ):
        assert words in page, words
    operators = client.get("/operators/").get_data(as_text=True)
    assert "вес 2" in operators and "Кампании" in operators
    assert "все операторы" in client.get("/campaigns/").get_data(as_text=True)
