"""The reports' tables behind PostgreSQL's row-level security (migration 0009), read as an
ordinary role like production's portal: the roll-up job, outside requests, writes every
tenant's rows; a tenant's request sees only its own, even with no tenant filter; a visitor
none."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from tests.conftest import login_as, make_tenant
from tests.webapp.reports import dataset
from tests.webapp.test_tenancy import rls_database  # noqa: F401  (the fixture)
from webapp.extensions import db
from webapp.models import (
    BillingDay,
    OperatorBreak,
    OperatorSession,
    ReportHour,
    ReportOperatorHour,
    ReportRollup,
)
from webapp.services import figures, rollup

TABLES = (OperatorSession, OperatorBreak, ReportHour, ReportOperatorHour, ReportRollup, BillingDay)


@pytest.fixture
def rls_app(rls_database):  # noqa: F811
    from tests.conftest import app_config
    from webapp import create_app

    app = create_app(app_config(rls_database))
    yield app
    with app.app_context():
        db.session.remove()
        for table in (
            "billing_days",
            "report_rollups",
            "report_operator_hours",
            "report_hours",
            "operator_sessions",
            "operator_breaks",
            "attempts",
            "leads",
            "operators",
            "teams",
            "users",
            "tenants",
        ):
            db.session.execute(db.text(f"DELETE FROM {table}"))
        db.session.commit()
        db.engine.dispose()


def tenants_seen(app, model, email=None) -> set[int]:
    with app.test_request_context():
        if email is not None:
            login_as(email)
        db.session.commit()
        return set(db.session.scalars(db.select(model.tenant_id)).all())


def test_each_tenant_sees_only_its_own_report_rows(rls_app):
    a, b = make_tenant(rls_app, "Alpha"), make_tenant(rls_app, "Bravo")
    dataset.build(rls_app, a.id)
    dataset.build(rls_app, b.id, suffix=" B")
    with rls_app.app_context():  # the job: trusted code outside requests
        for tenant in (a, b):
            db.session.add(
                OperatorBreak(
                    tenant_id=tenant.id,
                    operator_id=tenant.operator_id,
                    reason="lunch",
                    started_at=dataset.at(24, 12),
                )
            )
        db.session.commit()
        assert rollup.roll_up_all(now=dataset.at(27, 0)) > 0
        for model in TABLES:
            assert set(db.session.scalars(db.select(model.tenant_id))) == {a.id, b.id}
    for model in TABLES:
        assert tenants_seen(rls_app, model, a.admin_email) == {a.id}, model
        assert tenants_seen(rls_app, model, b.supervisor_email) == {b.id}, model
        assert tenants_seen(rls_app, model) == set(), model  # a visitor
    weekend = figures.Period(
        dataset.at(24, 0).date(), dataset.at(25, 0).date(), ZoneInfo("Europe/Berlin")
    )
    with rls_app.test_request_context():
        login_as(a.admin_email)
        assert figures.summary(a.id, weekend.start, weekend.end).attempts == 9
        assert figures.summary(b.id, weekend.start, weekend.end).attempts == 0  # B's: hidden
