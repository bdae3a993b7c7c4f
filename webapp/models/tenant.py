"""A tenant: one client company, and what is truly the company's: its name, time zone and
region, whether it dials at all, and its engine's fencing token. Its SIP accounts
(webapp/models/sip_account.py) and its campaigns with their dialing rules
(webapp/models/campaign.py) are tables of their own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import BigId, utcnow


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    #: The company's zone: its reports' days, its campaigns' start and end dates, and the
    #: calling hours of leads that have no zone of their own.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: ISO 3166 region used to read numbers written without a country code.
    default_phone_region: Mapped[str] = mapped_column(String(2), default="US")
    #: The company's switch: off, none of its campaigns dials.
    dialing_enabled: Mapped[bool] = mapped_column(default=False)
    #: The fencing token of the tenant's engine: one more each time an engine starts for the
    #: tenant; claims and attempt writes of an older engine are refused (docs/engine.md).
    engine_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: The company's own break reasons, one a line, beside the default ones
    #: (webapp/services/breaks.py).
    break_reasons: Mapped[str] = mapped_column(Text, default="", server_default="")

    def __repr__(self) -> str:
        return f"<Tenant {self.id} {self.name!r}>"
