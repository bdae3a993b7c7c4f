"""Production refuses to start when its PostgreSQL role bypasses row-level security (a
superuser, or a role with BYPASSRLS): every tenant's rows would be open to every query, and
nothing else would show it. Checked against the real PostgreSQL, whose `postgres` role (the
tests' own) is a superuser."""

from __future__ import annotations

import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from tests.conftest import PG_SERVER, app_config
from webapp import create_app
from webapp.config import ConfigError

PRODUCTION = {
    "env": "production",
    "public_url": "https://autocall.example.com",
    "secret_key": "a-real-secret-" + "x" * 32,
    "encryption_key": Fernet.generate_key().decode(),
}


@pytest.fixture
def role(postgres_url):
    """role(**attributes): the URL of a new login role on the tests' database."""
    made = []
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def make(*attributes: str) -> str:
        name = f"autocall_role_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE ROLE "{name}" LOGIN {" ".join(attributes)}'))
        made.append(name)
        return postgres_url.replace(PG_SERVER, PG_SERVER.replace("postgres@", f"{name}@"))

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(text(f'DROP ROLE "{name}"'))
    admin.dispose()


def test_production_refuses_a_superuser(postgres_url):
    with pytest.raises(ConfigError) as refused:
        create_app(app_config(postgres_url, **PRODUCTION))
    message = str(refused.value)
    assert "as 'postgres', a superuser" in message
    assert "bypasses the row-level security that keeps tenants apart" in message
    assert "CREATE ROLE autocall LOGIN PASSWORD '...' NOSUPERUSER NOBYPASSRLS" in message


def test_production_refuses_a_role_that_bypasses_row_level_security(role):
    with pytest.raises(ConfigError, match="a role with BYPASSRLS: it bypasses"):
        create_app(app_config(role("BYPASSRLS"), **PRODUCTION))


def test_production_starts_as_an_ordinary_role(role):
    app = create_app(app_config(role("NOSUPERUSER", "NOBYPASSRLS"), **PRODUCTION))
    assert app.extensions["autocall.config"].env == "production"


def test_only_production_and_serving_apps_are_checked(postgres_url, tmp_path):
    assert create_app(app_config(postgres_url)) is not None  # testing, as every other test
    # `autocall db-upgrade` may migrate as the owner or a superuser: it serves nobody.
    assert create_app(app_config(postgres_url, **PRODUCTION), serving=False) is not None
    assert create_app(app_config(f"sqlite:///{tmp_path / 'p.db'}", **PRODUCTION)) is not None


def test_production_workers_refuse_a_superuser_too(postgres_url, monkeypatch, capsys):
    from tests.conftest import REDIS_URL
    from webapp.jobs import worker

    for name, value in {**PRODUCTION, "database_url": postgres_url, "redis_url": REDIS_URL}.items():
        monkeypatch.setenv(f"AUTOCALL_{name.upper()}", value)
    assert worker.main(["default"]) == 2  # before it works a single job
    error = capsys.readouterr().err
    assert error.startswith("webapp.jobs: AUTOCALL_DATABASE_URL connects to PostgreSQL as")
    assert "a superuser" in error
