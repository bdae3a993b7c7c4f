"""Row-level security on tenants, users, operators, teams, API tokens and API clients
(migration 0011), on a database built by the migrations and read as an ordinary role, like
production's portal: a tenant's request reads and changes its own rows only, even with no
tenant filter at all; a visitor's none; staff read all. And the portal, the API and the engine
still work through the few explicit paths that find a row before its tenant is known."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import ProgrammingError

from tests.conftest import PASSWORD, app_config, login_as, make_tenant
from tests.webapp.auth.test_sso import sign_in_through
from tests.webapp.test_tenancy import rls_database  # noqa: F401  (the fixture)
from webapp.extensions import db
from webapp.models import ApiClient, ApiToken, Campaign, Operator, SipAccount, Team, Tenant, User
from webapp.services.accounts import create_staff

STAFF = "ops@autocall.example"


@pytest.fixture
def rls_app(rls_database):  # noqa: F811
    from webapp import create_app

    app = create_app(app_config(rls_database))
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    _empty(app)


def _empty(app) -> None:
    with app.app_context():
        db.session.remove()
        for table in (
            "webhook_deliveries",
            "webhook_endpoints",
            "api_tokens",
            "api_clients",
            "attempts",
            "leads",
            "operators",
            "teams",
            "users",
            "tenants",
        ):
            db.session.execute(db.text(f"DELETE FROM {table}"))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def two(rls_app):
    """Tenants A and B, and a member of the staff."""
    a, b = make_tenant(rls_app, "Alpha"), make_tenant(rls_app, "Bravo")
    with rls_app.app_context():
        create_staff(STAFF, PASSWORD)
        for tenant in (a, b):
            db.session.add(
                SipAccount(tenant_id=tenant.id, name="PBX", host="pbx.example", username="u")
            )
        db.session.commit()
    return a, b


#: Each table: its model, the column naming the tenant, a column to change, and a row of
#: tenant `b` to slip in (user `u` is one of b's people).
TABLES = {
    "tenants": (Tenant, Tenant.id, Tenant.name, lambda b, u: Tenant(name="Charlie")),
    "users": (
        User,
        User.tenant_id,
        User.email,
        lambda b, u: User(tenant_id=b, email="mole@bravo.example", role="admin", password_hash="x"),
    ),
    "teams": (Team, Team.tenant_id, Team.name, lambda b, u: Team(tenant_id=b, name="Moles")),
    "campaigns": (
        Campaign,
        Campaign.tenant_id,
        Campaign.name,
        lambda b, u: Campaign(tenant_id=b, name="Moles", key="moles"),
    ),
    "sip_accounts": (
        SipAccount,
        SipAccount.tenant_id,
        SipAccount.name,
        lambda b, u: SipAccount(tenant_id=b, name="Mole", host="mole.example", username="mole"),
    ),
    "operators": (
        Operator,
        Operator.tenant_id,
        Operator.name,
        lambda b, u: Operator(tenant_id=b, user_id=u, name="Mole", extension="999"),
    ),
    "api_tokens": (
        ApiToken,
        ApiToken.tenant_id,
        ApiToken.name,
        lambda b, u: ApiToken(tenant_id=b, name="Mole", secret_hash="0" * 64),
    ),
    "api_clients": (
        ApiClient,
        ApiClient.tenant_id,
        ApiClient.name,
        lambda b, u: ApiClient(tenant_id=b, name="Mole", secret_hash="0" * 64),
    ),
}


def _seen(app, key, email=None) -> list:
    """The tenant of every row a query with no tenant filter returns, for a request signed in
    as `email` (None: a visitor)."""
    with app.test_request_context():
        if email is not None:
            login_as(email)
        return sorted(db.session.scalars(select(key)), key=lambda value: (value is None, value))


@pytest.mark.parametrize("table", list(TABLES))
def test_a_tenant_reads_and_changes_only_its_own_rows(rls_app, two, table):
    model, key, column, intruder = TABLES[table]
    a, b = two
    with rls_app.app_context():  # trusted code outside requests sees every row
        everything = sorted(db.session.scalars(select(key)), key=lambda v: (v is None, v))
        before = db.session.execute(select(column).where(key == b.id)).all()
    assert set(everything) >= {a.id, b.id}
    assert set(_seen(rls_app, key, a.admin_email)) == {a.id}  # no tenant filter in the query
    assert set(_seen(rls_app, key, b.operator_email)) == {b.id}
    assert _seen(rls_app, key) == []  # a visitor: not a row
    assert _seen(rls_app, key, STAFF) == everything  # staff read all (the staff users too)

    with rls_app.test_request_context():
        login_as(a.admin_email)
        changed = db.session.execute(update(model).where(key == b.id).values({column: "x"}))
        assert changed.rowcount == 0
        assert db.session.execute(delete(model).where(key == b.id)).rowcount == 0
        db.session.commit()
        db.session.add(intruder(b.id, b.supervisor_id))
        with pytest.raises(ProgrammingError, match="row-level security"):
            db.session.commit()
        db.session.rollback()
    with rls_app.app_context():
        assert db.session.execute(select(column).where(key == b.id)).all() == before
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 2


def test_a_tenant_may_write_its_own_rows(rls_app, two):
    a, _b = two
    with rls_app.test_request_context():
        login_as(a.admin_email)
        db.session.add(Team(tenant_id=a.id, name="Evening"))
        db.session.execute(update(Tenant).where(Tenant.id == a.id).values(name="Alpha Ltd"))
        db.session.commit()
        assert db.session.scalar(select(Tenant.name)) == "Alpha Ltd"
        assert set(db.session.scalars(select(Team.name))) == {"Alpha team", "Evening"}


def test_the_portal_works_as_an_ordinary_role(rls_app, two):
    """Every place that finds a row before its tenant is known: signup, sign-in, the
    session's user, a taken address, the password reset, staff pages."""
    a, b = two
    client = rls_app.test_client()
    signup = {
        "company": "Charlie",
        "email": "boss@charlie.example",
        "password": PASSWORD,
        "confirm": PASSWORD,
    }
    assert client.post("/signup", data=signup).headers["Location"].endswith("/settings/sip")
    page = client.get("/settings/sip")  # the session's user, loaded across tenants
    assert page.status_code == 200 and "Charlie" in page.get_data(as_text=True)
    with rls_app.app_context():
        charlie = db.session.scalar(select(Tenant).where(Tenant.name == "Charlie"))
        assert (
            db.session.scalar(select(User.tenant_id).where(User.email == signup["email"]))
            == charlie.id
        )
    client.post("/logout")
    assert client.post("/signup", data={**signup, "company": "Again"}).status_code == 200
    assert client.post("/signup", data={**signup, "email": a.admin_email}).status_code == 200

    assert (
        client.post("/login", data={"email": a.admin_email, "password": "wrong"}).status_code == 401
    )
    client.post("/login", data={"email": a.admin_email, "password": PASSWORD})
    people = client.get("/people/").get_data(as_text=True)
    assert a.supervisor_email in people and b.supervisor_email not in people
    operators = client.get("/operators/").get_data(as_text=True)
    assert "Alpha operator" in operators and "Bravo operator" not in operators
    taken = client.post(
        "/people/new",
        data={"email": b.supervisor_email, "password": PASSWORD, "role": "supervisor"},
    )
    assert taken.status_code == 200
    assert "already exists" in taken.get_data(as_text=True)
    assert client.get(f"/operators/{b.operator_id}").status_code == 404
    client.post("/logout")

    client.post("/reset", data={"email": b.supervisor_email})
    [mail] = rls_app.extensions["autocall.outbox"][-1:]
    link = re.search(r"http://127\.0\.0\.1:5000(/reset/\S+)", mail.body).group(1)
    new = "a brand new password"
    assert client.post(link, data={"password": new, "confirm": new}).status_code == 302
    assert (
        client.post("/login", data={"email": b.supervisor_email, "password": new}).status_code
        == 302
    )
    client.post("/logout")

    client.post("/login", data={"email": STAFF, "password": PASSWORD})  # a user of no tenant
    ops = client.get("/staff/ops")
    assert ops.status_code == 200
    assert all(name in ops.get_data(as_text=True) for name in ("Alpha", "Bravo", "Charlie"))
    assert client.get(f"/staff/billing/{b.id}").status_code == 200


def test_an_address_confirmation_works_as_an_ordinary_role(rls_database):  # noqa: F811
    from webapp import create_app

    app = create_app(app_config(rls_database, email_verification=True))
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        client = app.test_client()
        client.post(
            "/signup",
            data={
                "company": "Delta",
                "email": "boss@delta.example",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        )
        [mail] = app.extensions["autocall.outbox"]
        link = re.search(r"http://127\.0\.0\.1:5000(/verify/\S+)", mail.body).group(1)
        assert client.get(link).headers["Location"].endswith("/login")
        signed_in = client.post(
            "/login", data={"email": "boss@delta.example", "password": PASSWORD}
        )
        assert signed_in.headers["Location"] == "/"
    finally:
        _empty(app)


def test_the_api_and_the_engine_work_as_an_ordinary_role(rls_app, two, rls_database):  # noqa: F811
    """API credentials name their rows before their tenant is known; the engine reads every
    tenant that wants dialing with `all`, then each tenant in its own scope."""
    from webapp.services.api_access import create_client, create_token
    from webapp.services.dialing import DialingStore

    a, b = two
    with rls_app.app_context():
        bearer = create_token(a.id, "CRM")[1]
        client_row, secret = create_client(b.id, "Website")
        client_id = client_row.client_id
        tenant = db.session.get(Tenant, b.id)
        tenant.dialing_enabled = True
        account = db.session.scalar(select(SipAccount).where(SipAccount.tenant_id == b.id))
        account.host = "pbx.bravo.example"
        db.session.execute(
            update(Campaign).where(Campaign.tenant_id == b.id).values(sip_account_id=account.id)
        )
        db.session.commit()
        account_id = account.id
    api = rls_app.test_client()
    leads = api.get("/api/v1/leads", headers={"Authorization": f"Bearer {bearer}"})
    assert [lead["id"] for lead in leads.get_json()["leads"]] == [a.lead_id]
    issued = api.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert issued.status_code == 200, issued.get_data(as_text=True)
    token = issued.get_json()["access_token"]
    leads = api.get("/api/v1/leads", headers={"Authorization": f"Bearer {token}"})
    assert [lead["id"] for lead in leads.get_json()["leads"]] == [b.lead_id]
    refused = api.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "wrong"},
    )
    assert refused.status_code == 401

    store = DialingStore(rls_database, rls_app.extensions["autocall.secrets"])
    try:
        assert store.tenants_to_dial() == [b.id]
        settings = store.settings(b.id)
        assert settings.accounts[account_id].account.host == "pbx.bravo.example"
        assert list(settings.operators.values()) == ["101"]
    finally:
        store.close()


def test_single_sign_on_works_as_an_ordinary_role(rls_database, two_for_sso):  # noqa: F811
    """The provider vouches for an address: its user is found across tenants, and the
    confirmation of the address is written as the user's tenant."""
    app, provider, a = two_for_sso
    client = app.test_client()
    provider.user["email"] = a.admin_email
    response = sign_in_through(client, provider, start="/login/sso?next=/leads/")
    assert response.headers["Location"] == "/leads/"
    assert client.get("/leads/").status_code == 200
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == a.admin_email))
        assert user.email_verified_at is not None and user.last_login_at is not None


@pytest.fixture
def two_for_sso(rls_database):  # noqa: F811
    from tests.oidc_provider import OpenIDProvider
    from tests.webapp.auth.test_sso import CALLBACK
    from webapp import create_app

    with OpenIDProvider(redirect_uris=[CALLBACK]) as provider:
        app = create_app(
            app_config(
                rls_database,
                oidc_issuer=provider.issuer,
                oidc_client_id=provider.client.client_id,
                oidc_client_secret=provider.client.client_secret,
                public_url="http://localhost",
            )
        )
        a = make_tenant(app, "Alpha")
        make_tenant(app, "Bravo")
        yield app, provider, a
        _empty(app)
