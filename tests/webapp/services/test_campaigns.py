"""services/campaigns.py: naming a campaign by id or key, keys, renaming, who works a
campaign (members with weights); on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import func, select

from tests.webapp.jobs import Wakes
from webapp.extensions import db
from webapp.models import CampaignMember, Operator, Tenant
from webapp.services.campaigns import (
    CampaignError,
    add_member,
    campaign_for_leads,
    campaigns_worked,
    check_key,
    create_campaign,
    default_campaign,
    find_campaign,
    members_of,
    remove_member,
    rename_campaign,
    update_member,
    working_operators,
)


def test_a_campaign_is_found_by_id_or_key_in_its_tenant_only(app, tenant_a, tenant_b):
    with app.app_context():
        a, b = db.session.get(Tenant, tenant_a.id), db.session.get(Tenant, tenant_b.id)
        tv = create_campaign(a, "TV offer", "tv-offer", None)
        theirs = create_campaign(b, "Radio", "radio", None)
        for ref in (tv.id, str(tv.id), f" {tv.id} ", "tv-offer", " TV-OFFER "):
            assert find_campaign(a, ref) is tv, ref
        for ref in (theirs.id, "radio", "²", "", 0, -5, 2**64, "9" * 40):
            with pytest.raises(CampaignError, match="There is no campaign"):
                find_campaign(a, ref)
        for ref in (True, 1.0, ["tv-offer"], None):
            with pytest.raises(CampaignError, match="by its id"):
                find_campaign(a, ref)
        tv.state = "archived"
        assert find_campaign(a, "tv-offer") is tv  # archived ones are found (lists filter)
        with pytest.raises(CampaignError, match="archived"):
            campaign_for_leads(a, "tv-offer")
        assert campaign_for_leads(a, None).is_default and campaign_for_leads(a, "").is_default


@pytest.mark.parametrize("key", ["", "-a", "a b", "ä", "k" * 65, "2024"])
def test_wrong_keys_are_refused(key):
    with pytest.raises(CampaignError):
        check_key(key)


def test_a_campaign_is_renamed_unless_another_has_the_name_or_key(app, tenant_a):
    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        tv = create_campaign(tenant, "TV offer", "tv-offer", None)
        rename_campaign(tv, " Radio ", "Radio-1")
        assert (tv.name, tv.key) == ("Radio", "radio-1")
        rename_campaign(tv, "Radio", "radio-1")  # its own name and key
        with pytest.raises(CampaignError, match="Another campaign has the key 'default'"):
            rename_campaign(tv, "Radio", "default")
        db.session.rollback()
        with pytest.raises(CampaignError, match="Another campaign has the name 'Default'"):
            rename_campaign(tv, "Default", "radio-1")


def test_members_are_added_changed_and_removed_and_the_engine_is_told(app, tenant_a):
    wakes = Wakes(tenant_a.id)
    try:
        with app.app_context():
            tenant = db.session.get(Tenant, tenant_a.id)
            tv = create_campaign(tenant, "TV offer", "tv-offer", None)
            assert members_of(tv) == [] and working_operators(tv) is None
            team = add_member(tv, team_id=tenant_a.team_id, weight=100)
            own = add_member(tv, operator_id=tenant_a.operator_id)
            assert [(m.name, m.row.weight) for m in members_of(tv)] == [
                ("Alpha team", 100),
                ("Alpha operator", 1),
            ]
            # The operator's own weight outweighs their team's.
            assert [(o.id, w) for o, w in working_operators(tv)] == [(tenant_a.operator_id, 1)]
            update_member(own, 60)
            assert db.session.get(CampaignMember, own.id).weight == 60
            remove_member(own)
            assert [(o.id, w) for o, w in working_operators(tv)] == [(tenant_a.operator_id, 100)]
            remove_member(team)
            assert working_operators(tv) is None
        assert wakes.types() == ["campaigns"] * 5
    finally:
        wakes.close()


@pytest.mark.parametrize("weight", [0, 101, -1, 2.5, "3", True, None])
def test_a_weight_is_a_whole_number_from_1_to_100(app, tenant_a, weight):
    with app.app_context():
        tv = create_campaign(db.session.get(Tenant, tenant_a.id), "TV offer", "tv-offer", None)
        with pytest.raises(CampaignError, match="from 1 to 100"):
            add_member(tv, team_id=tenant_a.team_id, weight=weight)
        member = add_member(tv, team_id=tenant_a.team_id, weight=100)
        with pytest.raises(CampaignError, match="from 1 to 100"):
            update_member(member, weight)
        db.session.rollback()
        assert db.session.get(CampaignMember, member.id).weight == 100


def test_only_the_tenants_own_operator_or_team_once_and_one_of_them(app, tenant_a, tenant_b):
    with app.app_context():
        tv = create_campaign(db.session.get(Tenant, tenant_a.id), "TV offer", "tv-offer", None)
        for kind, other in (("operator", tenant_b.operator_id), ("team", tenant_b.team_id)):
            with pytest.raises(CampaignError, match=f"There is no {kind} {other} in this company"):
                add_member(tv, **{f"{kind}_id": other})
        with pytest.raises(CampaignError, match="one of them"):
            add_member(tv)
        with pytest.raises(CampaignError, match="one of them"):
            add_member(tv, operator_id=tenant_a.operator_id, team_id=tenant_a.team_id)
        add_member(tv, operator_id=tenant_a.operator_id)
        with pytest.raises(CampaignError, match="Alpha operator is in this campaign already"):
            add_member(tv, operator_id=tenant_a.operator_id, weight=5)
        assert db.session.scalar(select(func.count()).select_from(CampaignMember)) == 1


def test_campaigns_worked_by_each_operator_and_team(app, tenant_a):
    from tests.conftest import PASSWORD
    from webapp.services.accounts import create_operator

    with app.app_context():
        tenant = db.session.get(Tenant, tenant_a.id)
        boris = create_operator(
            tenant,
            name="Boris",
            email="boris@alpha.example",
            extension="102",
            password=PASSWORD,
            team_id=tenant_a.team_id,
        )
        db.session.commit()
        default = default_campaign(tenant)
        tv = create_campaign(tenant, "TV offer", "tv-offer", None)
        radio = create_campaign(tenant, "Radio", "radio", None)
        add_member(tv, team_id=tenant_a.team_id, weight=2)
        add_member(tv, operator_id=boris.id, weight=7)
        add_member(radio, operator_id=boris.id, weight=4)
        add_member(default, team_id=tenant_a.team_id, weight=1)
        by_operator, by_team = campaigns_worked(tenant)

        def listed(worked):
            return [(w.campaign.key, w.weight, w.through_team) for w in worked]

        # The default first, then by name; their own weight before the team's.
        assert listed(by_operator[boris.id]) == [
            ("default", 1, True),
            ("radio", 4, False),
            ("tv-offer", 7, False),
        ]
        assert listed(by_operator[tenant_a.operator_id]) == [
            ("default", 1, True),
            ("tv-offer", 2, True),
        ]
        assert listed(by_team[tenant_a.team_id]) == [("default", 1, False), ("tv-offer", 2, False)]
        # An operator without a team and in no campaign is not listed; archived campaigns
        # are left out.
        db.session.get(Operator, boris.id).team_id = None
        radio.state = "archived"
        db.session.commit()
        by_operator, _by_team = campaigns_worked(tenant)
        assert listed(by_operator[boris.id]) == [("tv-offer", 7, False)]
