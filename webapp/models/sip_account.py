"""A SIP account on a tenant's PBX or trunk: what a campaign dials through. A tenant may
register several (two trunks, two caller identities); the dial format and REFER format
belong to the account they are written for."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.formats import DEFAULT_DIAL_FORMAT, DEFAULT_REFER_FORMAT
from webapp.extensions import db
from webapp.models.base import BigId, TenantOwned, one_of, utcnow

#: Seconds the engine may wait for a transfer's result: the form's bounds and the default.
TRANSFER_WAIT_RANGE = (5, 120)
TRANSFER_WAIT_DEFAULT = 30


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class SipAccount(TenantOwned, db.Model):
    __tablename__ = "sip_accounts"
    __table_args__ = (
        one_of("transport", Transport),
        UniqueConstraint("tenant_id", "name"),
        # Target of the campaigns' composite foreign key: a campaign dials only through an
        # account of its own tenant.
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("transfer_wait_seconds BETWEEN 5 AND 120", name="transfer_wait_seconds"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: What the admin calls it, e.g. "Main trunk".
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default=Transport.UDP.value)
    #: For TLS: the CA bundle (PEM) the PBX's certificate must chain to; empty: the system's
    #: CAs (engine/sip/stream.py). Certificates only, checked by the form.
    tls_ca_pem: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: For TLS: our URIs (address of record, Contact, the URIs dialed) use sips:.
    use_sips: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    username: Mapped[str] = mapped_column(String(255), default="")
    auth_username: Mapped[str] = mapped_column(String(255), default="")
    #: A Fernet token (webapp/services/secrets.py), encrypted with the deployment's key,
    #: which never is in the database.
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    outbound_proxy: Mapped[str] = mapped_column(String(255), default="")
    realm: Mapped[str] = mapped_column(String(255), default="")

    # Formats (engine/formats.py) and extra headers of the REFER, one "Name: value" a line.
    dial_format: Mapped[str] = mapped_column(String(255), default=DEFAULT_DIAL_FORMAT)
    refer_format: Mapped[str] = mapped_column(String(255), default=DEFAULT_REFER_FORMAT)
    refer_headers: Mapped[str] = mapped_column(Text, default="")
    #: Seconds the engine waits after its REFER for the PBX's final NOTIFY (the transfer's
    #: result) before it writes the transfer as timed out; a later NOTIFY still corrects it
    #: (docs/engine.md, "The transfer's result").
    transfer_wait_seconds: Mapped[int] = mapped_column(Integer, default=TRANSFER_WAIT_DEFAULT)

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def complete(self) -> bool:
        """Enough to dial with: a PBX and a username."""
        return bool(self.host and self.username)

    def __repr__(self) -> str:  # never shows the password
        return f"<SipAccount {self.id} {self.name!r} of tenant {self.tenant_id}>"
