"""The demo tenant of `./dev run`: a company whose one SIP account, "Demo PBX", is on the demo
PBX, three operators, two campaigns and a few hundred leads, so a newcomer sees calls placed
and transferred within a minute. The default campaign is everyone's; "TV offer" is worked by
Boris directly and by Clara's team, so Boris and Clara take customers of both. Both campaigns
dial through the Demo PBX with the demo's quick rules (`RULES`: all day, short retries, 30 s
of wrap-up).

Idempotent: run again, it updates the account's PBX address, the campaigns' rules, and tops
its leads up.
"""

from __future__ import annotations

import random
from datetime import time

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    Campaign,
    CampaignMember,
    Lead,
    LeadStatus,
    Operator,
    SipAccount,
    Team,
    Tenant,
    User,
)
from webapp.services.accounts import create_operator, create_tenant_with_admin
from webapp.services.secrets import SecretBox

COMPANY = "Demo Call Centre"
ADMIN = ("demo-admin@autocall.local", "demo-admin-password")
OPERATORS = [("Anna Smirnova", "101"), ("Boris Ivanov", "102"), ("Clara Jones", "103")]
OPERATOR_PASSWORD = "demo-operator-password"
PBX_USER, PBX_PASSWORD = "demo", "demo-pbx-secret"
#: The demo tenant's SIP account.
PBX_ACCOUNT = "Demo PBX"
#: Both campaigns' dialing rules: all day (the same time twice), quick retries and wrap-up.
RULES = dict(
    calling_hours_start=time(0, 0),
    calling_hours_end=time(0, 0),
    pacing_mode="multiplier",
    call_multiplier=1.5,
    ring_timeout_seconds=15,
    wrap_up_timeout_seconds=30,
    retry_no_answer_minutes=2,
    retry_busy_minutes=1,
    retry_unavailable_minutes=2,
    retry_technical_error_minutes=1,
    max_attempts=5,
)
LEADS = 300
#: The second campaign: (name, key), the team that works it and who is in the team, and the
#: operator who works it directly; its leads are those offered the TV product.
TV_CAMPAIGN, TV_TEAM, TV_TEAM_EXTENSION, TV_OPERATOR_EXTENSION = (
    ("TV offer", "tv-offer"),
    "TV team",
    "103",
    "102",
)
TV_PRODUCT = "TV Basic"

_FIRST = ["Ivan", "Olga", "Pyotr", "Maria", "John", "Emma", "Dmitry", "Elena", "James", "Sofia"]
_LAST = ["Petrov", "Volkova", "Smith", "Kuznetsov", "Brown", "Orlova", "Miller", "Sokolov"]
_PRODUCTS = ["Internet 100", "TV Basic", "Mobile Plus", "Home Security", "Cloud Backup"]


def operator_email(extension: str) -> str:
    return f"operator{extension}@autocall.local"


def seed(secrets: SecretBox, pbx_host: str, pbx_port: int) -> dict:
    """Create or refresh the demo tenant (inside an app context); returns what to print."""
    tenant = db.session.scalar(select(Tenant).where(Tenant.name == COMPANY))
    if tenant is None:
        tenant = create_tenant_with_admin(COMPANY, ADMIN[0], ADMIN[1]).tenant
        for name, extension in OPERATORS:
            operator = create_operator(
                tenant,
                name=name,
                email=operator_email(extension),
                extension=extension,
                password=OPERATOR_PASSWORD,
                team_id=None,
            )
            operator.user.must_change_password = False
    account = db.session.scalar(
        select(SipAccount).where(SipAccount.tenant_id == tenant.id, SipAccount.name == PBX_ACCOUNT)
    )
    if account is None:
        account = SipAccount(tenant_id=tenant.id, name=PBX_ACCOUNT)
        db.session.add(account)
    account.host, account.port, account.username = pbx_host, pbx_port, PBX_USER
    account.password_encrypted = secrets.encrypt(PBX_PASSWORD)
    tenant.dialing_enabled = True
    db.session.flush()
    tv = _tv_campaign(tenant)
    for campaign in db.session.scalars(select(Campaign).where(Campaign.tenant_id == tenant.id)):
        campaign.sip_account_id = account.id
        for key, value in RULES.items():
            setattr(campaign, key, value)
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Lead)
        .where(
            Lead.tenant_id == tenant.id,
            Lead.status.in_((LeadStatus.NEW.value, LeadStatus.RETRY.value)),
        )
    )
    rng = random.Random()
    for _ in range(max(0, LEADS - waiting)):
        product = rng.choice(_PRODUCTS)
        db.session.add(
            Lead(
                tenant_id=tenant.id,
                campaign_id=tv.id if product == TV_PRODUCT else None,
                phone=f"+1555{rng.randrange(10**7):07d}",
                name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                card={"product": product, "order": f"D-{rng.randrange(10**5):05d}"},
                status=LeadStatus.NEW.value,
                attempts=0,
                priority=0,
            )
        )
    db.session.commit()
    operators = db.session.execute(
        select(Operator.name, User.email)
        .join(User, User.id == Operator.user_id)
        .where(Operator.tenant_id == tenant.id)
        .order_by(Operator.extension)
    ).all()
    return {
        "admin": ADMIN,
        "operators": [(name, email, OPERATOR_PASSWORD) for name, email in operators],
    }


def _tv_campaign(tenant: Tenant) -> Campaign:
    """The demo's second campaign with who works it, made once."""
    name, key = TV_CAMPAIGN
    campaign = db.session.scalar(
        select(Campaign).where(Campaign.tenant_id == tenant.id, Campaign.key == key)
    )
    if campaign is not None:
        return campaign
    campaign = Campaign(tenant_id=tenant.id, name=name, key=key)
    team = Team(tenant_id=tenant.id, name=TV_TEAM)
    db.session.add_all([campaign, team])
    db.session.flush()
    by_extension = {
        o.extension: o
        for o in db.session.scalars(select(Operator).where(Operator.tenant_id == tenant.id))
    }
    by_extension[TV_TEAM_EXTENSION].team_id = team.id
    db.session.add_all(
        [
            CampaignMember(tenant_id=tenant.id, campaign_id=campaign.id, team_id=team.id),
            CampaignMember(
                tenant_id=tenant.id,
                campaign_id=campaign.id,
                operator_id=by_extension[TV_OPERATOR_EXTENSION].id,
            ),
        ]
    )
    return campaign
