from cryptography.fernet import Fernet

from tests.conftest import app_config
from webapp import create_app


def test_pages_carry_security_headers(client):
    headers = client.get("/login").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in headers  # development runs on plain http


def test_production_asks_for_https_and_trusts_only_configured_proxies(tmp_path):
    # SQLite: production refuses the tests' PostgreSQL role, a superuser
    # (tests/webapp/test_database_role.py).
    settings = app_config(
        f"sqlite:///{tmp_path / 'production.db'}",
        env="production",
        secret_key="a-real-secret-" + "x" * 32,
        encryption_key=Fernet.generate_key().decode(),
        public_url="https://autocall.example.com",
        trusted_proxies=1,
    )
    app = create_app(settings)

    @app.get("/whoami")
    def whoami():
        from flask import request

        return {"ip": request.remote_addr, "scheme": request.scheme}

    response = app.test_client().get(
        "/whoami", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    )
    assert response.get_json() == {"ip": "198.51.100.7", "scheme": "https"}
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_forwarded_headers_are_ignored_without_trusted_proxies(app):
    @app.get("/whoami")
    def whoami():
        from flask import request

        return {"ip": request.remote_addr}

    response = app.test_client().get("/whoami", headers={"X-Forwarded-For": "198.51.100.7"})
    assert response.get_json() == {"ip": "127.0.0.1"}


def test_text_with_a_nul_character_is_a_400_that_says_so(app, client, auth, tenant_a):
    """PostgreSQL can neither store nor search for a NUL character: a search box or a form
    field holding one was a 500 there."""
    from webapp.extensions import db
    from webapp.models import Team
    from webapp.services.api_access import create_token

    auth.login(tenant_a.admin_email)
    with app.app_context():
        from webapp.models import Campaign

        campaign_id = db.session.scalar(
            db.select(Campaign.id).where(Campaign.tenant_id == tenant_a.id)
        )
    for response in (
        client.get("/leads/", query_string={"q": "a\x00b"}),
        client.get("/do-not-call/", query_string={"q": "\x00"}),
        client.post("/operators/teams/new", data={"name": "Night\x00shift"}),
        client.post(f"/campaigns/{campaign_id}/calling", data={"results": "Sale\x00"}),
    ):
        assert response.status_code == 400
        assert "holds a NUL character" in response.get_data(as_text=True)
    russian = client.get("/leads/", query_string={"q": "\x00"}, headers={"Accept-Language": "ru"})
    assert "символ NUL" in russian.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(Team.id).where(Team.name.like("Night%"))) is None
    assert client.get("/leads/", query_string={"q": "Alpha"}).status_code == 200
    with app.app_context():
        bearer = create_token(tenant_a.id, "CRM")[1]
    api = client.get(
        "/api/v1/leads",
        query_string={"phone": "\x00"},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert api.status_code == 422  # the API says it in its own words, naming the field
    assert api.get_json()["error"]["field"] == "phone"
