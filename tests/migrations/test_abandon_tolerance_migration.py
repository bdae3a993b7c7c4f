"""The hold and the fallback as columns of each campaign: the campaigns there already hold
an answered customer 2 s and have no fallback after the upgrade, a hold outside 0 to 10 s is
refused, and a downgrade takes the columns away with the campaigns kept (SQLite and
PostgreSQL)."""

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from tests.conftest import app_config
from tests.migrations.test_campaigns_migration import _insert
from tests.migrations.test_migrations import empty_database_url  # noqa: F401 (a fixture)
from webapp import create_app
from webapp.extensions import db

BEFORE = "0025"
ALL_ROWS = "SELECT set_config('autocall.tenant_id', 'all', true)"


def test_campaigns_hold_2_seconds_without_a_fallback_after_the_upgrade(
    empty_database_url,  # noqa: F811
):
    app = create_app(app_config(empty_database_url))
    with app.app_context():
        upgrade(revision=BEFORE)
        postgres = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            metadata = sa.MetaData()
            metadata.reflect(connection)
            tenant = _insert(connection, metadata, "tenants", name="Alpha")
            _insert(connection, metadata, "campaigns", tenant_id=tenant, name="TV", key="tv")
        db.engine.dispose()

        upgrade()
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            assert connection.execute(
                sa.text("SELECT name, abandon_tolerance_seconds, fallback_target FROM campaigns")
            ).all() == [("TV", 2.0, None)]
        for hold in (-1, 10.5):
            with pytest.raises(IntegrityError), db.engine.begin() as connection:
                if postgres:
                    connection.execute(sa.text(ALL_ROWS))
                connection.execute(
                    sa.text("UPDATE campaigns SET abandon_tolerance_seconds = :h"), {"h": hold}
                )
        db.engine.dispose()

        downgrade(revision=BEFORE)
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("campaigns")}
        assert "abandon_tolerance_seconds" not in columns and "fallback_target" not in columns
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            assert connection.execute(sa.text("SELECT count(*) FROM campaigns")).scalar() == 1
        db.engine.dispose()
