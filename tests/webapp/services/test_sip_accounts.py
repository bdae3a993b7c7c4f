"""services/sip_accounts.py: a tenant's accounts, the first one given to its campaigns, a
delete refused while a campaign dials through it, and the engine's `Account`."""

import pytest
from sqlalchemy import select

from tests.webapp.jobs import Wakes
from webapp.extensions import db
from webapp.models import Campaign, SipAccount, Tenant
from webapp.services.campaigns import create_campaign
from webapp.services.sip_accounts import (
    Password,
    SipAccountError,
    create_account,
    delete_account,
    dialing_on,
    engine_account,
    outbound_proxy,
    update_account,
)

VALUES = {"name": "Main trunk", "host": "pbx.example.com", "port": 5070, "username": "acme"}


def _accounts_of_campaigns(tenant_id: int) -> list:
    return db.session.scalars(
        select(Campaign.sip_account_id).where(Campaign.tenant_id == tenant_id).order_by(Campaign.id)
    ).all()


def test_the_first_account_goes_to_the_campaigns_that_have_none(app, tenant_a, tenant_b):
    with app.app_context():
        secrets = app.extensions["autocall.secrets"]
        tenant = db.session.get(Tenant, tenant_a.id)
        create_campaign(tenant, "TV", "tv", None)
        wakes = Wakes(tenant.id)
        first = create_account(tenant, VALUES, Password(new="s3cret"), secrets)
        assert _accounts_of_campaigns(tenant.id) == [first.id, first.id]
        second = create_account(tenant, {**VALUES, "name": "Spare"}, Password(), secrets)
        assert _accounts_of_campaigns(tenant.id) == [first.id, first.id]
        assert _accounts_of_campaigns(tenant_b.id) == [None]  # another tenant's: untouched
        assert wakes.types() == ["settings", "settings"]
        wakes.close()
        assert secrets.decrypt(first.password_encrypted) == "s3cret"
        assert not second.has_password
        with pytest.raises(SipAccountError, match="Another SIP account has the name"):
            create_account(tenant, VALUES, Password(), secrets)
        # Another tenant may use the same name.
        create_account(db.session.get(Tenant, tenant_b.id), VALUES, Password(), secrets)


def test_an_account_in_use_is_not_deleted(app, tenant_a):
    with app.app_context():
        secrets = app.extensions["autocall.secrets"]
        tenant = db.session.get(Tenant, tenant_a.id)
        used = create_account(tenant, VALUES, Password(), secrets)
        spare = create_account(tenant, {**VALUES, "name": "Spare"}, Password(), secrets)
        with pytest.raises(SipAccountError) as refused:
            delete_account(used)
        assert refused.value.campaigns == ["Default"]
        delete_account(spare)
        assert db.session.scalars(select(SipAccount.name)).all() == ["Main trunk"]


def test_a_password_is_kept_changed_or_cleared(app, tenant_a):
    with app.app_context():
        secrets = app.extensions["autocall.secrets"]
        tenant = db.session.get(Tenant, tenant_a.id)
        account = create_account(tenant, VALUES, Password(new="one"), secrets)
        update_account(account, {"port": 5080}, Password(), secrets)
        assert (account.port, secrets.decrypt(account.password_encrypted)) == (5080, "one")
        update_account(account, {}, Password(new="two"), secrets)
        assert secrets.decrypt(account.password_encrypted) == "two"
        update_account(account, {}, Password(clear=True), secrets)
        assert account.password_encrypted is None


def test_dialing_is_on_with_the_switch_and_a_complete_account(app, tenant_a):
    with app.app_context():
        secrets = app.extensions["autocall.secrets"]
        tenant = db.session.get(Tenant, tenant_a.id)
        tenant.dialing_enabled = True
        assert not dialing_on(tenant)
        create_account(tenant, {**VALUES, "username": ""}, Password(), secrets)
        assert not dialing_on(tenant)  # no username: nothing to register with
        create_account(tenant, {**VALUES, "name": "Spare"}, Password(), secrets)
        assert dialing_on(tenant)
        tenant.dialing_enabled = False
        assert not dialing_on(tenant)


def test_the_engines_account(app):
    with app.app_context():
        secrets = app.extensions["autocall.secrets"]
        saved = SipAccount(
            name="x",
            host="pbx.example.com",
            port=5070,
            username="acme",
            auth_username="auth",
            realm="asterisk",
            outbound_proxy="[2001:db8::1]:5080",
            password_encrypted=secrets.encrypt("s3cret"),
        )
        account = engine_account(saved, secrets)
        assert (account.host, account.port, account.username, account.password) == (
            "pbx.example.com",
            5070,
            "acme",
            "s3cret",
        )
        assert (account.auth_username, account.realm) == ("auth", "asterisk")
        assert account.outbound_proxy == ("2001:db8::1", 5080)
        plain = engine_account(SipAccount(name="y", host="h", port=5060, username="u"), secrets)
        assert (plain.password, plain.auth_username, plain.realm, plain.outbound_proxy) == (
            "",
            None,
            None,
            None,
        )
    assert outbound_proxy("proxy.example") == ("proxy.example", 5060)
    assert outbound_proxy("") is None
