"""`flask db upgrade` builds the schema from nothing, and it is the schema of the models."""

import ast
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from tests.conftest import app_config
from webapp import MIGRATIONS_DIR, create_app
from webapp.extensions import db


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path, postgres_database):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    return postgres_database("autocall_migrations")


def test_upgrade_from_nothing_matches_the_models(empty_database_url):
    app = create_app(app_config(empty_database_url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == []
        tables = set(inspect(db.engine).get_table_names())
        assert tables == {"alembic_version", *db.metadata.tables}

        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        db.engine.dispose()


def test_migrations_never_import_the_application():
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert all(m.split(".")[0] in ("alembic", "sqlalchemy") for m in modules), script


def test_migration_files_have_descriptive_names():
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        slug = Path(script).stem.split("_", 1)[1]
        assert len(slug.split("_")) >= 3, script.name


def test_credentials_and_users_from_before_scopes_keep_working(empty_database_url):
    """Rows that exist when the scopes and the session generation arrive get both scopes
    (so existing tokens and clients work as before) and generation 0."""
    from alembic.script import ScriptDirectory

    from webapp.models import ApiClient, ApiToken, User
    from webapp.services.accounts import create_tenant_with_admin
    from webapp.services.api_access import create_client, create_token

    script = next(
        script
        for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()
        if script.path.endswith("_session_generation_and_api_scopes.py")
    )
    app = create_app(app_config(empty_database_url))
    with app.app_context():
        upgrade()
        admin = create_tenant_with_admin("Old Co", "admin@old.example", "correct horse battery")
        admin.session_generation = 7
        token = create_token(admin.tenant_id, "CRM", ["read"])[0]
        client = create_client(admin.tenant_id, "Site", ["leads"])[0]
        ids = admin.id, token.id, client.id
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
        downgrade(revision=script.down_revision)  # the columns go, the rows stay
        upgrade(revision=script.revision)
        assert db.session.get(ApiToken, ids[1]).scopes == "read leads"
        assert db.session.get(ApiClient, ids[2]).scopes == "read leads"
        assert db.session.get(User, ids[0]).session_generation == 0
        db.session.remove()
        db.engine.dispose()
