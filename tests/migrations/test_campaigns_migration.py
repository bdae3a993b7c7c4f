"""Migrations 0014 to 0019 on a database filled at 0010: each tenant gets its default
campaign, every lead and attempt is in it, the renamed columns keep their values, and a
downgrade gives back the columns as they were with the rows kept (SQLite and PostgreSQL).
The roll-ups by campaign (report_hours in 0017, report_operator_hours after it): the hours
so far are the default campaign's, and a downgrade merges the campaigns' rows back. The
rules move to the campaigns and the SIP settings to a first SIP account (0019); a tenant
without a PBX gets none."""

from datetime import UTC, datetime, time

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from tests.conftest import app_config
from tests.migrations.test_migrations import empty_database_url  # noqa: F401 (a fixture)
from webapp import create_app
from webapp.extensions import db

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _value(column: sa.Column):
    """A value for a required column the test does not care about."""
    kind = column.type.python_type if not isinstance(column.type, sa.JSON) else dict
    return {
        str: "x",
        int: 0,
        float: 0.0,
        bool: False,
        datetime: NOW,
        time: time(9, 0),
        dict: {},
    }[kind]


def _insert(connection, metadata, table: str, **values) -> int:
    """Insert a row giving every required column a value; returns its id (if it has one)."""
    t = metadata.tables[table]
    row = {
        c.name: _value(c)
        for c in t.columns
        if not c.nullable and c.server_default is None and not c.primary_key
    }
    row.update(values)
    result = connection.execute(t.insert().values(row))
    return result.inserted_primary_key[0] if "id" in t.columns else 0


def _fill_at_0010(connection) -> dict:
    metadata = sa.MetaData()
    metadata.reflect(connection)
    ids: dict = {"leads": [], "attempts": []}
    for n, name in enumerate(("Alpha", "Bravo"), start=1):
        tenant = _insert(
            connection,
            metadata,
            "tenants",
            name=name,
            max_concurrent_calls=10 * n,
            pacing_mode="multiplier",
            sip_transport="udp",
            time_zone="UTC",
            sip_host="pbx.alpha.example" if n == 1 else "",
            sip_port=5080,
            sip_username="trunk",
            dial_format="sip:9{number}@{host}",
            retry_busy_minutes=4 * n,
            ring_timeout_seconds=20 + n,
            calling_hours_start=time(8, n),
            hide_numbers=n == 2,
        )
        ids[name] = tenant
        for k, status in enumerate(("new", "dialing", "retry", "reached", "exhausted")):
            lead = _insert(
                connection,
                metadata,
                "leads",
                tenant_id=tenant,
                phone=f"+1555000{n}{k:03d}",
                status=status,
                card={},
                attempts=1,
            )
            ids["leads"].append(lead)
            # Every state of an attempt: in progress (no outcome), answered, and not.
            outcome = {"dialing": None, "reached": "answered"}.get(status, "no_answer")
            ids["attempts"].append(
                _insert(
                    connection,
                    metadata,
                    "attempts",
                    tenant_id=tenant,
                    lead_id=lead,
                    dialed_uri="sip:x@pbx",
                    outcome=outcome,
                    invite_at=NOW,
                    answer_at=NOW if outcome == "answered" else None,
                )
            )
        _insert(
            connection,
            metadata,
            "report_hours",
            tenant_id=tenant,
            hour=NOW,
            outcome="answered",
            detail="",
            attempts=7,
            answered=5 * n,
        )
        _insert(
            connection,
            metadata,
            "report_operator_hours",
            tenant_id=tenant,
            hour=NOW,
            operator_id=1,
            detail="",
            transfer_sip_code=200,
            offered=4,
            transferred=3 * n,
            talk_seconds=60.5,
            wrap_ups=2,
        )
        _insert(
            connection,
            metadata,
            "billing_days",
            tenant_id=tenant,
            day=NOW,
            attempts=7,
            answered=5 * n,
        )
        endpoint = _insert(
            connection,
            metadata,
            "webhook_endpoints",
            tenant_id=tenant,
            url="https://crm.example/hook",
            secret_encrypted="x",
            active=True,
        )
        _insert(
            connection,
            metadata,
            "webhook_deliveries",
            tenant_id=tenant,
            endpoint_id=endpoint,
            event="attempt.finished",
            attempt_id=ids["attempts"][-1],
        )
    return ids


def test_the_first_campaign_takes_every_lead_and_attempt(empty_database_url):  # noqa: F811
    app = create_app(app_config(empty_database_url))
    with app.app_context():
        upgrade(revision="0010")
        with db.engine.begin() as connection:
            ids = _fill_at_0010(connection)
        db.engine.dispose()

        upgrade()
        with db.engine.connect() as connection:
            campaigns = connection.execute(
                sa.text("SELECT tenant_id, id, name, key, state, is_default FROM campaigns")
            ).all()
            assert sorted(
                (c.tenant_id, c.name, c.key, c.state, bool(c.is_default)) for c in campaigns
            ) == [
                (ids["Alpha"], "Default", "default", "running", True),
                (ids["Bravo"], "Default", "default", "running", True),
            ]
            default = {c.tenant_id: c.id for c in campaigns}
            for table in ("leads", "attempts"):
                rows = connection.execute(
                    sa.text(f"SELECT id, tenant_id, campaign_id FROM {table}")
                ).all()
                assert sorted(r.id for r in rows) == sorted(ids[table])  # none lost
                assert all(r.campaign_id == default[r.tenant_id] for r in rows), table
            assert sorted(
                connection.execute(
                    sa.text(
                        "SELECT t.name, c.max_calls_at_once, h.picked_up, b.picked_up "
                        "FROM tenants t "
                        "JOIN campaigns c ON c.tenant_id = t.id "
                        "JOIN report_hours h ON h.tenant_id = t.id "
                        "JOIN billing_days b ON b.tenant_id = t.id"
                    )
                ).all()
            ) == [("Alpha", 10, 5, 5), ("Bravo", 20, 10, 10)]
            accounts = connection.execute(
                sa.text(
                    "SELECT id, tenant_id, name, host, port, username, dial_format "
                    "FROM sip_accounts"
                )
            ).all()
            assert [tuple(a)[1:] for a in accounts] == [
                (
                    ids["Alpha"],
                    "pbx.alpha.example",
                    "pbx.alpha.example",
                    5080,
                    "trunk",
                    "sip:9{number}@{host}",
                )
            ]
            rules = connection.execute(
                sa.text(
                    "SELECT tenant_id, sip_account_id, retry_busy_minutes, ring_timeout_seconds, "
                    "calling_hours_start, calling_weekdays, hide_numbers FROM campaigns"
                )
            ).all()
            assert sorted(
                (r[0], r[1], r[2], r[3], str(r[4])[:5], r[5], bool(r[6])) for r in rules
            ) == [
                (ids["Alpha"], accounts[0].id, 4, 21, "08:01", "1234567", False),
                (ids["Bravo"], None, 8, 22, "08:02", "1234567", True),
            ]
            tenant_columns = {c["name"] for c in sa.inspect(connection).get_columns("tenants")}
            assert not tenant_columns & {"sip_host", "dial_format", "retry_busy_minutes"}
            operator_hours = connection.execute(
                sa.text("SELECT tenant_id, campaign_id, transferred FROM report_operator_hours")
            ).all()
            assert sorted(operator_hours) == [
                (ids["Alpha"], default[ids["Alpha"]], 3),
                (ids["Bravo"], default[ids["Bravo"]], 6),
            ]
        db.engine.dispose()

        downgrade(revision="0013")
        with db.engine.connect() as connection:
            assert "campaigns" not in sa.inspect(connection).get_table_names()
            assert "sip_accounts" not in sa.inspect(connection).get_table_names()
            assert sorted(
                connection.execute(
                    sa.text(
                        "SELECT sip_host, sip_port, dial_format, retry_busy_minutes, "
                        "ring_timeout_seconds, hide_numbers FROM tenants"
                    )
                ).all()
            ) == [
                ("", 5060, "sip:{number}@{host}", 8, 22, True),
                ("pbx.alpha.example", 5080, "sip:9{number}@{host}", 4, 21, False),
            ]
            assert connection.scalar(sa.text("SELECT count(*) FROM leads")) == 10
            assert connection.scalar(sa.text("SELECT count(*) FROM attempts")) == 10
            assert sorted(
                connection.execute(
                    sa.text(
                        "SELECT t.max_concurrent_calls, h.answered FROM tenants t "
                        "JOIN report_hours h ON h.tenant_id = t.id"
                    )
                ).all()
            ) == [(10, 5), (20, 10)]
            assert sorted(
                connection.execute(
                    sa.text("SELECT tenant_id, transferred, wrap_ups FROM report_operator_hours")
                ).all()
            ) == [(ids["Alpha"], 3, 2), (ids["Bravo"], 6, 2)]
        db.engine.dispose()


def test_a_downgrade_merges_the_campaigns_operator_hours(empty_database_url):  # noqa: F811
    """Two campaigns' rows of one operator hour become one row, summed, and the upgrade
    puts that row in the default campaign; another tenant's rows stay its own."""
    app = create_app(app_config(empty_database_url))
    with app.app_context():
        upgrade()
        metadata = sa.MetaData()
        with db.engine.begin() as connection:
            metadata.reflect(connection)
            tenants = {}
            for name in ("Alpha", "Bravo"):
                tenant = _insert(
                    connection,
                    metadata,
                    "tenants",
                    name=name,
                    time_zone="UTC",
                )
                default = _insert(
                    connection,
                    metadata,
                    "campaigns",
                    tenant_id=tenant,
                    name="Default",
                    key="default",
                    state="running",
                    is_default=True,
                )
                second = _insert(
                    connection,
                    metadata,
                    "campaigns",
                    tenant_id=tenant,
                    name="TV",
                    key="tv",
                    state="running",
                    is_default=False,
                )
                tenants[name] = (tenant, default, second)
                for campaign, offered in ((default, 3), (second, 4)):
                    for code in (200, 480):
                        _insert(
                            connection,
                            metadata,
                            "report_operator_hours",
                            tenant_id=tenant,
                            hour=NOW,
                            campaign_id=campaign,
                            operator_id=7,
                            detail="",
                            transfer_sip_code=code,
                            offered=offered,
                            transferred=offered - 1,
                            failed_transfers=1,
                            talks=1,
                            very_short=0,
                            talk_seconds=10.25 * offered,
                            wrap_ups=1,
                            wrap_up_seconds=2.5,
                        )
        db.engine.dispose()

        downgrade(revision="0017")
        query = (
            "SELECT tenant_id, transfer_sip_code, offered, transferred, failed_transfers, "
            "talks, talk_seconds, wrap_ups, wrap_up_seconds FROM report_operator_hours"
        )
        merged = sorted(
            (tenant, code, 7, 5, 2, 2, 71.75, 2, 5.0)
            for tenant, _default, _second in tenants.values()
            for code in (200, 480)
        )
        with db.engine.connect() as connection:
            columns = {
                c["name"] for c in sa.inspect(connection).get_columns("report_operator_hours")
            }
            assert "campaign_id" not in columns
            assert sorted(tuple(row) for row in connection.execute(sa.text(query))) == merged
        db.engine.dispose()

        upgrade()
        with db.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT tenant_id, campaign_id, offered FROM report_operator_hours")
            ).all()
        assert sorted(rows) == sorted(
            (tenant, default, 7)
            for tenant, default, _second in tenants.values()
            for _code in (200, 480)
        )
        db.engine.dispose()
