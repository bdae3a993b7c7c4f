"""Which tenant a request acts for, and the one way to read tenant-owned rows.

Every read of a tenant-owned table in the portal goes through `scoped()` or
`get_or_404()`: both filter on the signed-in user's tenant, so a forgotten filter cannot
happen in a view. A row of another tenant is answered exactly like a row that does not
exist (404), so ids of other tenants cannot even be probed.

Behind that, PostgreSQL's row-level security (migrations 0002 to 0011) shows a transaction
only the rows of the tenant its `autocall.tenant_id` names (`database_scope()`). The few
reads that must find a row before its tenant is known say so: `across_tenants()`; signup
names its new tenant before it exists: `act_for_new_tenant()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import Flask, abort, g, has_request_context
from flask_login import current_user, user_logged_in, user_logged_out
from sqlalchemy import Engine, Select, event, select, text
from sqlalchemy.orm import Session

from webapp.config import ConfigError
from webapp.extensions import db
from webapp.models import Tenant, TenantOwned, User

M = TypeVar("M", bound=TenantOwned)


def current_tenant() -> Tenant | None:
    """The signed-in user's tenant; None for staff and anonymous visitors."""
    if "tenant" not in g:
        tenant_id = current_tenant_id()
        g.tenant = db.session.get(Tenant, tenant_id) if tenant_id is not None else None
    return g.tenant


def current_tenant_id() -> int | None:
    """The tenant a request acts for: its API credential's (webapp/api), else the
    signed-in user's; None for staff and visitors."""
    if "api_tenant_id" in g:
        return g.api_tenant_id
    if not current_user.is_authenticated:
        return None
    return current_user.tenant_id


def act_for_tenant(tenant_id: int) -> None:
    """An API request proved a credential of this tenant: from here on it acts for the
    tenant (scoped reads, row-level security), whoever the session's user may be. What the
    request changed so far (when the credential was last used) is written as the tenant."""
    g.api_tenant_id = tenant_id
    g.pop("tenant", None)
    g.autocall_scope = str(tenant_id)
    _apply_scope()
    db.session.commit()


def act_for_new_tenant(tenant: Tenant) -> None:
    """Signup, before `tenant` is added: a visitor's request creates a tenant, whose rows
    row-level security shows and takes only in a transaction that names it. So its id is
    drawn from the sequence first, and the request acts for that tenant alone from here on
    (it may then create the tenant, its admin, and read them back). Outside requests, and on
    SQLite, there is nothing to do."""
    if not has_request_context() or db.session.get_bind().dialect.name != "postgresql":
        return
    tenant.id = db.session.scalar(text("SELECT nextval(pg_get_serial_sequence('tenants', 'id'))"))
    g.autocall_scope = str(tenant.id)
    _apply_scope()


@contextmanager
def across_tenants() -> Iterator[None]:
    """The statements of the block see every tenant's rows (`all`), then the transaction goes
    back to the request's scope (which the block may have set by signing a user in).

    Only for the reads that must find a row before its tenant is known, each named where it
    is used: a user by the session's id (the user loader), by email (sign-in, password reset,
    single sign-on, whether an address is taken), by a signed link's id; an API token or
    OAuth client by the id its credential carries. Reads only: nothing is flushed in the
    block, and an error in it rolls the transaction back, so `all` never outlives it."""
    with db.session.no_autoflush:
        if db.session.get_bind().dialect.name != "postgresql":
            yield
            return
        db.session.connection().execute(_SET_SCOPE, {"scope": ALL_TENANTS})
        try:
            yield
        except BaseException:
            db.session.rollback()
            raise
        _apply_scope()


def _require_tenant_id() -> int:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        abort(404)
    return tenant_id


def scoped(model: type[M]) -> Select[tuple[M]]:
    """SELECT of `model` limited to the current tenant; add filters and ordering to it.

    `User` is accepted too: its rows with a tenant belong to that tenant (staff rows have
    none and so never match)."""
    if not (issubclass(model, TenantOwned) or model is User):
        raise TypeError(f"{model.__name__} is not tenant-owned")
    return select(model).where(model.tenant_id == _require_tenant_id())


def get_or_404(model: type[M], object_id: int) -> M:
    """The row of the current tenant with this id, or 404 (also for other tenants' rows)."""
    row = db.session.scalar(scoped(model).where(model.id == object_id))
    if row is None:
        abort(404)
    return row


#: Value of `autocall.tenant_id` for trusted server code outside requests (see migration 0002).
ALL_TENANTS = "all"


def scope_for(user) -> str:
    """The `autocall.tenant_id` of a signed-in user: the tenant's id, `all` for staff."""
    return ALL_TENANTS if user.tenant_id is None else str(user.tenant_id)


def remember_scope(user) -> None:
    """Called whenever the request's user becomes known (loaded from the session, signed in
    or out, proved by a reset or verification link): the database hook below must not touch
    the ORM, so the scope waits on `g` for the next transaction, and the transaction under
    way takes it at once (what the request writes next about the user is the user's)."""
    g.autocall_scope = scope_for(user) if user is not None else ""
    _apply_scope()


def database_scope() -> str:
    """What PostgreSQL's row-level security lets this transaction see: in a request, the
    signed-in user's tenant (`all` for platform staff, read-only by their role; nothing for
    visitors); outside requests (command line, jobs), `all`."""
    if not has_request_context():
        return ALL_TENANTS
    return g.get("autocall_scope", "")


#: `true`: for the transaction only, so a scope never outlives it nor leaks through the pool.
_SET_SCOPE = text("SELECT set_config('autocall.tenant_id', :scope, true)")


def _set_scope(session: Session, transaction, connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(_SET_SCOPE, {"scope": database_scope()})


def _apply_scope() -> None:
    """The transaction under way (if any) takes `database_scope()` now; a later one takes it
    when it begins (`_set_scope`)."""
    session = db.session()
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_SET_SCOPE, {"scope": database_scope()})


def check_database_role(engine: Engine) -> None:
    """Production's start-up check (the portal's `create_app`, each worker process): refuse a
    PostgreSQL role that row-level security does not bind, a superuser or one with
    BYPASSRLS. Every tenant's rows would be open to every query of such a process, and no
    test or page would show it. ConfigError says what to do; SQLite has nothing to check."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        role = connection.execute(
            text(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
    if role.rolsuper or role.rolbypassrls:
        what = "a superuser" if role.rolsuper else "a role with BYPASSRLS"
        raise ConfigError(
            f"AUTOCALL_DATABASE_URL connects to PostgreSQL as {role.rolname!r}, {what}: it "
            "bypasses the row-level security that keeps tenants apart, so every tenant's rows "
            "would be open to every query. Connect as an ordinary role that owns the tables "
            "(or was granted them): CREATE ROLE autocall LOGIN PASSWORD '...' NOSUPERUSER "
            "NOBYPASSRLS; ALTER DATABASE <name> OWNER TO autocall; (docs/operations.md, "
            '"The database role").'
        )


def init_app(app: Flask) -> None:
    from webapp.extensions import db

    @app.context_processor
    def inject_tenant() -> dict:
        return {"current_tenant": current_tenant()}

    if not event.contains(Session, "after_begin", _set_scope):
        event.listen(Session, "after_begin", _set_scope)

    def signed_in(sender, user, **extra) -> None:
        remember_scope(user)

    def signed_out(sender, user, **extra) -> None:
        remember_scope(None)

    # weak=False: the receivers are local functions, kept alive by the signal itself.
    user_logged_in.connect(signed_in, app, weak=False)
    user_logged_out.connect(signed_out, app, weak=False)

    @app.before_request
    def scope_the_database_to_the_user() -> None:
        """Load the signed-in user first, then end that transaction: every later
        transaction of the request begins with the user's tenant as its scope."""
        if current_user.is_authenticated and db.engine.dialect.name == "postgresql":
            db.session.commit()
