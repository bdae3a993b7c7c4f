"""The wait for a transfer's result as a column of each SIP account: the accounts there
already wait 30 s after the upgrade, a wait outside 5 to 120 s is refused, and a downgrade
takes the column away with the accounts kept (SQLite and PostgreSQL)."""

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from tests.conftest import app_config
from tests.migrations.test_campaigns_migration import _insert
from tests.migrations.test_migrations import empty_database_url  # noqa: F401 (a fixture)
from webapp import create_app
from webapp.extensions import db

BEFORE = "0019"


def test_accounts_wait_30_seconds_after_the_upgrade(empty_database_url):  # noqa: F811
    app = create_app(app_config(empty_database_url))
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT set_config('autocall.tenant_id', 'all', true)"))
            metadata = sa.MetaData()
            metadata.reflect(connection)
            tenant = _insert(connection, metadata, "tenants", name="Alpha")
            _insert(connection, metadata, "sip_accounts", tenant_id=tenant, name="Main trunk")
        db.engine.dispose()

        upgrade()
        all_rows = "SELECT set_config('autocall.tenant_id', 'all', true)"
        postgres = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(all_rows))
            assert connection.execute(
                sa.text("SELECT name, transfer_wait_seconds FROM sip_accounts")
            ).all() == [("Main trunk", 30)]
        for wait in (4, 121):
            with pytest.raises(IntegrityError), db.engine.begin() as connection:
                if postgres:
                    connection.execute(sa.text(all_rows))
                connection.execute(
                    sa.text("UPDATE sip_accounts SET transfer_wait_seconds = :w"), {"w": wait}
                )
        db.engine.dispose()

        downgrade(revision=BEFORE)
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("sip_accounts")}
        assert "transfer_wait_seconds" not in columns and "host" in columns
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(all_rows))
            count = connection.execute(sa.text("SELECT count(*) FROM sip_accounts")).scalar()
            assert count == 1
        db.engine.dispose()
