"""Operators (agents with an extension) and the teams they are grouped in."""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned
from webapp.models.user import User


class Team(TenantOwned, db.Model):
    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # Target of composite foreign keys: a row can only point at a team of its own tenant.
        UniqueConstraint("tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))

    operators: Mapped[list[Operator]] = relationship(
        back_populates="team", foreign_keys="Operator.team_id", viewonly=True
    )


class Operator(TenantOwned, db.Model):
    __tablename__ = "operators"
    __table_args__ = (
        UniqueConstraint("tenant_id", "extension"),
        UniqueConstraint("tenant_id", "id"),
        # One operator per user; the user must be of the same tenant (composite key below).
        UniqueConstraint("tenant_id", "user_id"),
        Index(None, "tenant_id", "team_id"),
        ForeignKeyConstraint(
            ["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"], ondelete="RESTRICT"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId)
    team_id: Mapped[int | None] = mapped_column(BigId)
    name: Mapped[str] = mapped_column(String(200))
    #: The operator's extension on the tenant's PBX, the target of the REFER.
    extension: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)

    user: Mapped[User] = relationship(
        foreign_keys=[user_id], primaryjoin="Operator.user_id == User.id"
    )
    team: Mapped[Team | None] = relationship(
        back_populates="operators",
        foreign_keys=[team_id],
        primaryjoin="Operator.team_id == Team.id",
    )
