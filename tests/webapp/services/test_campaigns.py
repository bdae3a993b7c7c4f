"""services/campaigns.py: naming a campaign by id or key, keys, renaming; on SQLite and
PostgreSQL."""

import pytest

from webapp.extensions import db
from webapp.models import Tenant
from webapp.services.campaigns import (
    CampaignError,
    campaign_for_leads,
    check_key,
    create_campaign,
    find_campaign,
    rename_campaign,
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
