"""The application factory."""

from webapp import create_app


def test_factory_builds_without_touching_the_database():
    # A database that does not exist: building the app must not connect to it.
    app = create_app(
        {"env": "testing", "database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    assert app.testing
    for name in ("sqlalchemy", "migrate", "csrf", "babel"):
        assert name in app.extensions
    assert app.login_manager is not None


def test_health(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_start_page_sends_visitors_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")


def test_start_page_sends_each_role_where_it_works(client, auth, tenant_a, staff_email):
    for email, target in [
        (tenant_a.admin_email, "/settings/sip"),
        (tenant_a.supervisor_email, "/settings/sip"),
        (tenant_a.operator_email, "/console/"),
        (staff_email, "/staff/"),
    ]:
        auth.login(email)
        assert client.get("/").headers["Location"].endswith(target), email
        auth.logout()


def test_pages_link_the_stylesheet_and_no_cdn(client):
    page = client.get("/login").get_data(as_text=True)
    assert "/static/app.css" in page
    assert "https://" not in page and "http://" not in page
    assert client.get("/static/app.css").status_code == 200


def test_every_template_and_static_file_is_packaged():
    """pyproject.toml's package-data must name them, or a wheel ships a portal without pages.
    (The translations are compiled into the wheel by setup.py: tests/test_install.py.)"""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["webapp"]
    webapp = root / "webapp"
    packaged = {path for pattern in patterns for path in webapp.glob(pattern)}
    wanted = {*webapp.rglob("*.html"), *(webapp / "static").iterdir()}
    assert wanted - packaged == set()
