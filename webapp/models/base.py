"""What every model shares: id types, enumerations stored as checked strings, timestamps,
and `TenantOwned`, the mixin that marks a table as belonging to one tenant."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

#: 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def one_of(column: str, values: Iterable[StrEnum], name: str | None = None) -> CheckConstraint:
    """A CHECK constraint that keeps a string column inside an enumeration (or some of its
    members).

    Plain strings with a CHECK, not native enums: adding a value later is a one-line
    migration on both SQLite and PostgreSQL.
    """
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or column)


class TenantOwned:
    """Rows of a table with this mixin belong to one tenant; reads go through
    `webapp.tenancy`, which filters on `tenant_id`."""

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
