"""Platform staff: billing and ops across every tenant, read-only.

Staff belong to no tenant; their requests read with the `all` scope of row-level security
(webapp/tenancy.py, migration 0006), and on PostgreSQL every transaction of a staff page is
made READ ONLY as well, so even a mistake in a view cannot change a tenant's data. Every
route here is GET.
"""

from flask import Blueprint, g

from webapp.extensions import db

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")


@bp.before_request
def read_only() -> None:
    """The request's transaction may read, never write (PostgreSQL refuses the write)."""
    make_read_only()


def make_read_only() -> None:
    """READ ONLY, and no JIT: the reports over every tenant are estimated expensive (a
    LATERAL index range per tenant), so PostgreSQL would compile them first, which alone
    took 340 ms of 1.7 s in bench/staff.py while the work itself is index lookups."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy import text

        db.session.execute(text("SET TRANSACTION READ ONLY"))
        db.session.execute(text("SET LOCAL jit = off"))
        g.staff_read_only = True


from webapp.staff import views  # noqa: E402,F401  (routes register on bp)
