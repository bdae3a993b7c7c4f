"""A tenant: one client company, and every setting its admin owns."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, Float, Integer, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column

from engine.formats import DEFAULT_DIAL_FORMAT, DEFAULT_REFER_FORMAT
from engine.pacing_modes import PacingMode
from webapp.extensions import db
from webapp.models.base import BigId, one_of, utcnow

DEFAULT_RESULTS = "Sale\nNot interested\nCall back\nWrong number"


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"  # recorded for later; the engine speaks UDP today
    TLS = "tls"


#: The pacing modes a tenant may choose: the settings page offers these, the column allows
#: these. Not adaptive: the pacer keeps it as the pacing bench's yardstick, and it goes over
#: the abandon rate cap on most of the example workloads (docs/pacing.md, "The bench").
OFFERED_PACING_MODES = (PacingMode.MULTIPLIER, PacingMode.PROGRESSIVE, PacingMode.PREDICTIVE)


class Tenant(db.Model):
    __tablename__ = "tenants"
    __table_args__ = (
        one_of("sip_transport", Transport),
        one_of("pacing_mode", OFFERED_PACING_MODES),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # SIP account on the tenant's PBX. The password is a Fernet token (webapp.crypto),
    # encrypted with the deployment's key, which never is in the database.
    sip_host: Mapped[str] = mapped_column(String(255), default="")
    sip_port: Mapped[int] = mapped_column(Integer, default=5060)
    sip_transport: Mapped[str] = mapped_column(String(8), default=Transport.UDP.value)
    sip_username: Mapped[str] = mapped_column(String(255), default="")
    sip_auth_username: Mapped[str] = mapped_column(String(255), default="")
    sip_password_encrypted: Mapped[str | None] = mapped_column(Text)
    sip_outbound_proxy: Mapped[str] = mapped_column(String(255), default="")
    sip_realm: Mapped[str] = mapped_column(String(255), default="")

    # Formats (engine.formats) and extra headers of the REFER, one "Name: value" a line.
    dial_format: Mapped[str] = mapped_column(String(255), default=DEFAULT_DIAL_FORMAT)
    refer_format: Mapped[str] = mapped_column(String(255), default=DEFAULT_REFER_FORMAT)
    refer_headers: Mapped[str] = mapped_column(Text, default="")

    # Retry time per outcome, in minutes.
    retry_no_answer_minutes: Mapped[int] = mapped_column(Integer, default=90)
    retry_unavailable_minutes: Mapped[int] = mapped_column(Integer, default=90)
    retry_busy_minutes: Mapped[int] = mapped_column(Integer, default=5)
    retry_technical_error_minutes: Mapped[int] = mapped_column(Integer, default=10)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)

    # Calling hours in the customer's time zone (the lead's, else the tenant's).
    calling_hours_start: Mapped[time] = mapped_column(Time, default=time(9, 0))
    calling_hours_end: Mapped[time] = mapped_column(Time, default=time(21, 0))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")

    pacing_mode: Mapped[str] = mapped_column(String(16), default=PacingMode.MULTIPLIER.value)
    call_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    abandon_rate_cap_percent: Mapped[float] = mapped_column(Float, default=3.0)
    #: The regulatory window the abandon rate is measured over: 1 (24 hours) or 30 days.
    abandon_rate_window_days: Mapped[int] = mapped_column(Integer, default=30)
    # Ceilings that protect the PBX and the trunk, whatever the pacing mode asks for.
    max_calls_at_once: Mapped[int] = mapped_column(Integer, default=30)
    max_calls_per_second: Mapped[int] = mapped_column(Integer, default=10)

    # Operators. After a transfer the operator is busy with the lead until they finish it
    # in the console, or until this many seconds have passed (0: only the console frees them).
    wrap_up_timeout_seconds: Mapped[int] = mapped_column(Integer, default=600)
    #: Failed transfers in a row after which an operator is taken off line (0: never).
    failed_transfers_limit: Mapped[int] = mapped_column(Integer, default=3)

    #: The results an operator chooses from when finishing a lead, one a line.
    results: Mapped[str] = mapped_column(Text, default=DEFAULT_RESULTS)
    hide_numbers: Mapped[bool] = mapped_column(default=False)
    dialing_enabled: Mapped[bool] = mapped_column(default=False)
    #: The fencing token of the tenant's engine: one more each time an engine starts for the
    #: tenant; claims and attempt writes of an older engine are refused (docs/engine.md).
    engine_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: ISO 3166 region used to read numbers written without a country code.
    default_phone_region: Mapped[str] = mapped_column(String(2), default="US")

    @property
    def has_sip_password(self) -> bool:
        return bool(self.sip_password_encrypted)

    @property
    def result_choices(self) -> list[str]:
        return [line.strip() for line in self.results.splitlines() if line.strip()]

    def retry_minutes(self, outcome: str) -> int:
        """The tenant's retry time for a failed attempt's outcome."""
        return getattr(self, f"retry_{outcome}_minutes")

    def __repr__(self) -> str:  # never shows the SIP password
        return f"<Tenant {self.id} {self.name!r}>"
