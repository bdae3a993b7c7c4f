"""The TLS columns of each SIP account: accounts there already get no CA bundle (the system's
CAs) and sip: URIs after the upgrade, and a downgrade takes the columns away with the
accounts kept (SQLite and PostgreSQL)."""

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from tests.conftest import app_config
from tests.migrations.test_campaigns_migration import _insert
from tests.migrations.test_migrations import empty_database_url  # noqa: F401 (a fixture)
from webapp import create_app
from webapp.extensions import db

BEFORE = "0020"
ALL_ROWS = "SELECT set_config('autocall.tenant_id', 'all', true)"


def test_accounts_keep_the_system_cas_and_sip_uris(empty_database_url):  # noqa: F811
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
            _insert(connection, metadata, "sip_accounts", tenant_id=tenant, name="Main trunk")
        db.engine.dispose()

        upgrade()
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            rows = connection.execute(
                sa.text("SELECT name, transport, tls_ca_pem, use_sips FROM sip_accounts")
            ).all()
            assert [(n, t, c, bool(s)) for n, t, c, s in rows] == [("Main trunk", "udp", "", False)]
        db.engine.dispose()

        downgrade(revision=BEFORE)
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("sip_accounts")}
        assert not {"tls_ca_pem", "use_sips"} & columns and "transport" in columns
        with db.engine.begin() as connection:
            if postgres:
                connection.execute(sa.text(ALL_ROWS))
            assert connection.execute(sa.text("SELECT count(*) FROM sip_accounts")).scalar() == 1
        db.engine.dispose()
