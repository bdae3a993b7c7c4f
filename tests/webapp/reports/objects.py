"""The report pages' objects for the role and cross-tenant matrices: a tenant's attempt."""

from __future__ import annotations

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Attempt


def add_report_objects(app, tenant) -> None:
    with app.app_context():
        tenant.attempt_id = db.session.scalar(
            select(Attempt.id).where(Attempt.tenant_id == tenant.id).limit(1)
        )
