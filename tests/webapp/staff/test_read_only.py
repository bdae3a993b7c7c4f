"""Staff read every tenant and change nothing; staff and tenants stay out of each other's
pages. On PostgreSQL the staff pages read as an ordinary role under row-level security,
through the `all` scope staff get (webapp/tenancy.py), in READ ONLY transactions."""

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, login_as
from tests.webapp.staff import data
from tests.webapp.staff.data import OCTOBER_TOTAL

STAFF_PAGES = (
    "/staff/",
    "/staff/billing?month=2026-10",
    "/staff/billing.csv?month=2026-10",
    "/staff/ops",
)
TENANT_PAGES = ("/settings/sip", "/leads/", "/operators/", "/people/", "/live/")


def _staff_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("staff.")]


def test_every_staff_route_is_get_only(app):
    rules = _staff_rules(app)
    assert len(rules) >= 5
    for rule in rules:
        assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule


def _row_counts(app) -> dict:
    from webapp.extensions import db

    with app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables
        }


def test_reading_every_staff_page_changes_nothing(app, client, auth, staff_email):
    dataset = data.load(app)
    before = _row_counts(app)
    assert auth.login(staff_email).status_code == 302
    after_login = _row_counts(app)  # signing in may note the time; the pages must not
    for url in [*STAFF_PAGES, f"/staff/billing/{dataset.romashka}"]:
        assert client.get(url).status_code == 200, url
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert client.open(url, method=method).status_code == 405, (url, method)
    assert _row_counts(app) == after_login
    assert before.keys() == after_login.keys()


def test_tenants_cannot_reach_staff_pages_and_staff_cannot_reach_tenant_pages(
    app, client, auth, staff_email
):
    dataset = data.load(app)
    assert auth.login(dataset.romashka_admin).status_code == 302
    for url in STAFF_PAGES:
        assert client.get(url).status_code == 403, url
    auth.logout()
    assert auth.login(staff_email).status_code == 302
    for url in TENANT_PAGES:
        assert client.get(url).status_code in (403, 404), url


# --- PostgreSQL as an ordinary role: row-level security applies ----------------------------


@pytest.fixture(scope="module")
def rls_url():
    from tests.webapp.test_tenancy import rls_database

    generator = rls_database.__wrapped__()
    url = next(generator)
    yield url
    next(generator, None)


@pytest.fixture
def rls_app(rls_url):
    from tests.conftest import app_config
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(app_config(rls_url))
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        db.session.remove()
        for table in ("attempts", "leads", "operators", "teams", "users", "tenants"):
            db.session.execute(db.text(f"DELETE FROM {table}"))
        db.session.commit()
        db.engine.dispose()


def test_staff_read_every_tenant_under_row_level_security(rls_app):
    from webapp.services.accounts import create_staff

    dataset = data.load(rls_app)
    with rls_app.app_context():
        create_staff("ops@autocall.example", PASSWORD)
    client = rls_app.test_client()
    client.post("/login", data={"email": "ops@autocall.example", "password": PASSWORD})
    page = client.get("/staff/billing?month=2026-10").get_data(as_text=True)
    total = page[page.index('<tr class="total">') :]
    cells = [c.split("</th>")[0] for c in total.split("<th>")[2:8]]
    assert cells == ["7", "5", "3", "7", "", "306"] and OCTOBER_TOTAL == (7, 5, 3, 306, 7)
    # Each tenant's campaigns, read across tenants too.
    assert "Default: 1 · ТВ-реклама: 5" in page
    assert client.get(f"/staff/billing/{dataset.bravo}").status_code == 200


def test_a_staff_request_cannot_write_even_by_mistake(rls_app):
    from sqlalchemy.exc import InternalError

    from webapp.extensions import db
    from webapp.models import Lead
    from webapp.services.accounts import create_staff

    dataset = data.load(rls_app)
    with rls_app.app_context():
        create_staff("ops@autocall.example", PASSWORD)
    with rls_app.test_request_context("/staff/ops"):
        login_as("ops@autocall.example")
        rls_app.preprocess_request()  # the staff blueprint's before_request runs
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 3  # reads all
        db.session.add(Lead(tenant_id=dataset.bravo, phone="+15550199"))
        with pytest.raises(InternalError, match="read-only transaction"):
            db.session.flush()
        db.session.rollback()
