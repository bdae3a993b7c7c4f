"""The data model. Importing this package registers every table on `db.metadata`."""

from webapp.models import campaign
from webapp.models.api import ApiClient, ApiToken
from webapp.models.base import TenantOwned
from webapp.models.call import Attempt, Outcome, TransferResult
from webapp.models.campaign import (
    OFFERED_PACING_MODES,
    Campaign,
    CampaignMember,
    CampaignState,
    LeadOrder,
)
from webapp.models.lead import DoNotCall, Lead, LeadStatus
from webapp.models.operator import Operator, Team
from webapp.models.report import (
    BillingDay,
    OperatorBreak,
    OperatorSession,
    ReportHour,
    ReportOperatorHour,
    ReportRollup,
)
from webapp.models.sip_account import SipAccount, Transport
from webapp.models.tenant import Tenant
from webapp.models.user import Role, User
from webapp.models.webhook import WebhookDelivery, WebhookEndpoint

campaign.listen(Tenant, Lead, Attempt)

__all__ = [
    "OFFERED_PACING_MODES",
    "ApiClient",
    "ApiToken",
    "Attempt",
    "BillingDay",
    "Campaign",
    "CampaignMember",
    "CampaignState",
    "DoNotCall",
    "Lead",
    "LeadOrder",
    "LeadStatus",
    "Operator",
    "OperatorBreak",
    "OperatorSession",
    "Outcome",
    "ReportHour",
    "ReportOperatorHour",
    "ReportRollup",
    "Role",
    "SipAccount",
    "Team",
    "Tenant",
    "TenantOwned",
    "TransferResult",
    "Transport",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]


def _sqlite_foreign_keys_on(dbapi_connection, connection_record) -> None:
    """SQLite checks foreign keys only when asked, per connection."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def register_sqlite_pragmas(app) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_foreign_keys_on):
        event.listen(Engine, "connect", _sqlite_foreign_keys_on)
