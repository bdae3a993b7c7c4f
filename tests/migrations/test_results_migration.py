"""Results that act (migration 0024): existing campaigns get the default actions for the
default results they still have, and none for their own; attempts get the result's call-back
time, action and time; a downgrade takes the columns away with the rows kept (SQLite and
PostgreSQL)."""

import json

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from tests.conftest import app_config
from tests.migrations.test_campaigns_migration import _insert
from tests.migrations.test_migrations import empty_database_url  # noqa: F401 (a fixture)
from webapp import create_app
from webapp.extensions import db

BEFORE = "0023"
ALL_ROWS = "SELECT set_config('autocall.tenant_id', 'all', true)"


def test_existing_campaigns_get_the_default_actions(empty_database_url):  # noqa: F811
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
            for key, results in (
                ("default", "Sale\nNot interested\nCall back\nWrong number"),
                ("tv", "Subscribed\n Wrong number \nThinking"),
                ("radio", "Yes\nNo"),
            ):
                _insert(
                    connection,
                    metadata,
                    "campaigns",
                    tenant_id=tenant,
                    name=key.upper(),
                    key=key,
                    results=results,
                    is_default=key == "default",
                )
        db.engine.dispose()

        upgrade()
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            found = {
                key: actions if isinstance(actions, dict) else json.loads(actions)
                for key, actions in connection.execute(
                    sa.text("SELECT key, result_actions FROM campaigns")
                )
            }
            columns = {c["name"] for c in sa.inspect(connection).get_columns("attempts")}
        assert found == {
            "default": {
                "Sale": {"action": "close"},
                "Not interested": {"action": "close"},
                "Call back": {"action": "retry", "minutes": 60},
                "Wrong number": {"action": "do_not_call"},
            },
            "tv": {"Wrong number": {"action": "do_not_call"}},
            "radio": {},
        }
        assert {"call_back_at", "result_action", "result_at"} <= columns
        db.engine.dispose()

        downgrade(revision=BEFORE)
        inspector = sa.inspect(db.engine)
        assert "result_actions" not in {c["name"] for c in inspector.get_columns("campaigns")}
        assert "result_at" not in {c["name"] for c in inspector.get_columns("attempts")}
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            assert connection.execute(sa.text("SELECT count(*) FROM campaigns")).scalar() == 3
        db.engine.dispose()
