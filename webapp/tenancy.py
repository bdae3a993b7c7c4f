"""Which tenant a request acts for, and the one way to read tenant-owned rows.

Every read of a tenant-owned table in the portal goes through `scoped()` or
`get_or_404()`: both filter on the signed-in user's tenant, so a forgotten filter cannot
happen in a view. A row of another tenant is answered exactly like a row that does not
exist (404), so ids of other tenants cannot even be probed.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Flask, abort, g
from flask_login import current_user
from sqlalchemy import Select, select

from webapp.extensions import db
from webapp.models import Tenant, TenantOwned

M = TypeVar("M", bound=TenantOwned)


def current_tenant() -> Tenant | None:
    """The signed-in user's tenant; None for staff and anonymous visitors."""
    if "tenant" not in g:
        tenant_id = current_tenant_id()
        g.tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
    return g.tenant


def current_tenant_id() -> int | None:
    if not current_user.is_authenticated:
        return None
    return current_user.tenant_id


def _require_tenant_id() -> int:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        abort(404)
    return tenant_id


def scoped(model: type[M]) -> Select[tuple[M]]:
    """SELECT of `model` limited to the current tenant; add filters and ordering to it."""
    if not issubclass(model, TenantOwned):
        raise TypeError(f"{model.__name__} is not tenant-owned")
    return select(model).where(model.tenant_id == _require_tenant_id())


def get_or_404(model: type[M], object_id: int) -> M:
    """The row of the current tenant with this id, or 404 (also for other tenants' rows)."""
    row = db.session.scalar(scoped(model).where(model.id == object_id))
    if row is None:
        abort(404)
    return row


def init_app(app: Flask) -> None:
    @app.context_processor
    def inject_tenant() -> dict:
        return {"current_tenant": current_tenant()}
