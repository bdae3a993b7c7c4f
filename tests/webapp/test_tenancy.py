import pytest
from werkzeug.exceptions import NotFound

from webapp.extensions import db
from webapp.models import Operator, Team, Tenant, User
from webapp.tenancy import current_tenant, get_or_404, scoped


def _as(app, email):
    """A request context signed in as the user with this email."""
    from flask_login import login_user

    ctx = app.test_request_context()
    ctx.push()
    user = db.session.scalar(db.select(User).where(User.email == email))
    login_user(user)
    return ctx


def test_scoped_reads_only_the_current_tenants_rows(app, tenant_a, tenant_b):
    ctx = _as(app, tenant_a.admin_email)
    try:
        assert current_tenant().id == tenant_a.id
        teams = db.session.scalars(scoped(Team)).all()
        assert [t.id for t in teams] == [tenant_a.team_id]
        assert get_or_404(Operator, tenant_a.operator_id).id == tenant_a.operator_id
        with pytest.raises(NotFound):
            get_or_404(Operator, tenant_b.operator_id)
        with pytest.raises(NotFound):
            get_or_404(Team, 10**9)
    finally:
        ctx.pop()


def test_users_without_a_tenant_see_nothing(app, tenant_a, staff_email):
    ctx = _as(app, staff_email)
    try:
        assert current_tenant() is None
        with pytest.raises(NotFound):
            scoped(Team)
        with pytest.raises(NotFound):
            get_or_404(Team, tenant_a.team_id)
    finally:
        ctx.pop()


def test_scoped_refuses_tables_that_are_not_tenant_owned(app, tenant_a, tenant_b, staff_email):
    ctx = _as(app, tenant_a.admin_email)
    try:
        with pytest.raises(TypeError):
            scoped(Tenant)
        emails = set(db.session.scalars(scoped(User).with_only_columns(User.email)))
        assert emails == {tenant_a.admin_email, tenant_a.supervisor_email, tenant_a.operator_email}
    finally:
        ctx.pop()


# Row-level security (migration 0002): PostgreSQL hides other tenants' leads and attempts
# even from a query that forgets the tenant filter. Superusers bypass it, so this test
# connects as a role of its own, on a database built by the migrations.


@pytest.fixture(scope="module")
def rls_database():
    import uuid

    from flask_migrate import upgrade
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_SERVER, _create_database, _drop_database, app_config
    from webapp import create_app

    name, owner_url = _create_database("autocall_rls")
    role = f"autocall_app_{uuid.uuid4().hex[:10]}"
    migrator = create_app(app_config(owner_url))
    with migrator.app_context():
        upgrade()
        db.engine.dispose()
    engine = create_engine(owner_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        connection.execute(
            text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
        )
        connection.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    engine.dispose()
    yield f"{PG_SERVER.replace('postgres@', role + '@')}/{name}"
    _drop_database(name)
    engine = create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP ROLE "{role}"'))
    engine.dispose()


@pytest.fixture
def rls_app(rls_database):
    from tests.conftest import app_config
    from webapp import create_app

    app = create_app(app_config(rls_database))
    app.config["WTF_CSRF_ENABLED"] = False

    @app.get("/test/lead-tenants")
    def lead_tenants():
        """A careless view: reads leads with no tenant filter at all."""
        from webapp.models import Lead

        return {"tenants": sorted(db.session.scalars(db.select(Lead.tenant_id)))}

    yield app
    with app.app_context():
        db.session.remove()
        for table in ("attempts", "leads", "operators", "teams", "users", "tenants"):
            db.session.execute(db.text(f"DELETE FROM {table}"))
        db.session.commit()
        db.engine.dispose()


def _leads_seen(app, email=None, model=None) -> set[int]:
    """Tenants whose leads (or rows of `model`) a query without any tenant filter returns;
    `email=None` is trusted code outside a request."""
    from tests.conftest import login_as
    from webapp.models import Lead

    model = model or Lead
    if email is None:
        with app.app_context():
            return set(db.session.scalars(db.select(model.tenant_id)).all())
    with app.test_request_context():
        login_as(email)
        return set(db.session.scalars(db.select(model.tenant_id)).all())


def test_postgresql_hides_other_tenants_leads(rls_app):
    from tests.conftest import make_tenant
    from webapp.models import Lead
    from webapp.services.accounts import create_staff

    a, b = make_tenant(rls_app, "Alpha"), make_tenant(rls_app, "Bravo")
    with rls_app.app_context():  # trusted code outside requests sees and writes every tenant
        staff = create_staff("ops@autocall.example", "a staff password")
        db.session.add_all([Lead(tenant_id=t.id, phone="+15550100") for t in (a, b)])
        db.session.commit()
        staff_email = staff.email

    assert _leads_seen(rls_app) == {a.id, b.id}
    assert _leads_seen(rls_app, a.admin_email) == {a.id}  # no tenant filter in the query
    assert _leads_seen(rls_app, b.operator_email) == {b.id}
    assert _leads_seen(rls_app, staff_email) == {a.id, b.id}
    from webapp.models import WebhookEndpoint

    assert _leads_seen(rls_app, a.admin_email, WebhookEndpoint) == {a.id}  # so do webhooks
    assert _leads_seen(rls_app, None, WebhookEndpoint) == {a.id, b.id}

    from sqlalchemy.exc import ProgrammingError

    from tests.conftest import login_as

    with rls_app.test_request_context():
        assert db.session.scalars(db.select(Lead)).all() == []  # a visitor sees nothing
        login_as(a.admin_email)
        db.session.add(Lead(tenant_id=b.id, phone="+15550199"))
        with pytest.raises(ProgrammingError, match="row-level security"):
            db.session.commit()
        db.session.rollback()


def test_requests_are_scoped_from_their_first_query(rls_app):
    from tests.conftest import PASSWORD, make_tenant

    make_tenant(rls_app, "Alpha")  # each tenant comes with a lead
    b = make_tenant(rls_app, "Bravo")
    client = rls_app.test_client()
    assert client.get("/test/lead-tenants").get_json() == {"tenants": []}
    client.post("/login", data={"email": b.admin_email, "password": PASSWORD})
    assert client.get("/test/lead-tenants").get_json() == {"tenants": [b.id]}
    client.post("/logout")
    assert client.get("/test/lead-tenants").get_json() == {"tenants": []}


def test_an_api_request_acts_for_its_tokens_tenant_under_row_level_security(rls_app):
    from tests.conftest import make_tenant
    from webapp.services.api_access import create_token

    a, b = make_tenant(rls_app, "Alpha"), make_tenant(rls_app, "Bravo")
    with rls_app.app_context():
        bearer = create_token(a.id, "CRM")[1]
    client = rls_app.test_client()
    headers = {"Authorization": f"Bearer {bearer}"}
    leads = client.get("/api/v1/leads", headers=headers).get_json()["leads"]
    assert [lead["id"] for lead in leads] == [a.lead_id]
    assert client.get(f"/api/v1/leads/{b.lead_id}", headers=headers).status_code == 404
    created = client.post("/api/v1/leads", json={"phone": "+12125551234"}, headers=headers)
    assert created.status_code == 201  # the policy's WITH CHECK accepts the tenant's own row
    entry = client.post("/api/v1/do-not-call", json={"number": "+7916*"}, headers=headers)
    assert entry.status_code == 201
