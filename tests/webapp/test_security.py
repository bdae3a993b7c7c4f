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


def test_production_asks_for_https_and_trusts_only_configured_proxies(database_url):
    settings = app_config(
        database_url,
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
