"""Campaigns: the tenant's lists of leads, each dialed while it runs (docs/portal.md,
"Campaigns"). Every tenant has a default campaign (webapp/models/campaign.py); a lead sent
without a campaign goes there. A campaign is named in the API and CSV files by its id or by
its key, the tenant's own short name for it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.models import Campaign, CampaignState, Lead, LeadStatus, Tenant, User

#: A key: lower-case letters, digits and dashes, as in `tv-offer`.
KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class CampaignError(ValueError):
    """A campaign that cannot be used or made as asked; the message says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def campaigns_of(tenant: Tenant, *, archived: bool = True) -> list[Campaign]:
    """The tenant's campaigns, the default first, then by name."""
    query = select(Campaign).where(Campaign.tenant_id == tenant.id)
    if not archived:
        query = query.where(Campaign.state != CampaignState.ARCHIVED.value)
    return list(db.session.scalars(query.order_by(Campaign.is_default.desc(), Campaign.name)).all())


def default_campaign(tenant: Tenant) -> Campaign:
    return db.session.scalars(
        select(Campaign).where(Campaign.tenant_id == tenant.id, Campaign.is_default)
    ).one()


def find_campaign(tenant: Tenant, ref: object) -> Campaign:
    """The tenant's campaign named by its id (a number, or digits as text) or its key, in
    whatever state; CampaignError when the tenant has none so named. Another tenant's
    campaign is answered exactly like one that does not exist."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise CampaignError("The campaign must be given by its id (a number) or its key (text).")
    query = select(Campaign).where(Campaign.tenant_id == tenant.id)
    text = ref.strip() if isinstance(ref, str) else ""
    if isinstance(ref, int) or (text.isascii() and text.isdigit()):
        number = int(text) if isinstance(ref, str) else ref
        # (an id past 64 bits names nothing, and must not reach the database)
        campaign = (
            db.session.scalars(query.where(Campaign.id == number)).first()
            if 0 < number < 2**63
            else None
        )
    else:
        campaign = db.session.scalars(query.where(Campaign.key == text.lower())).first()
    if campaign is None:
        raise CampaignError(f"There is no campaign {ref!r} in this company.")
    return campaign


def campaign_for_leads(tenant: Tenant, ref: object) -> Campaign:
    """The campaign new leads go to, named by id or key; None or "": the default campaign.
    CampaignError for one that does not exist in the tenant or is archived."""
    if ref is None or ref == "":
        return default_campaign(tenant)
    campaign = find_campaign(tenant, ref)
    if campaign.state == CampaignState.ARCHIVED.value:
        raise CampaignError(f"The campaign {campaign.name!r} is archived: it takes no new leads.")
    return campaign


def check_key(key: str) -> str:
    """A key as it is stored (lower case), or CampaignError. Digits alone would read as an
    id wherever a campaign is named by id or key, so a key needs a letter or a dash."""
    key = (key or "").strip().lower()
    if not KEY.match(key):
        raise CampaignError(
            "A key has 1 to 64 lower-case letters, digits and dashes, and starts with a "
            "letter or a digit (for example tv-offer)."
        )
    if key.isdigit():
        raise CampaignError("A key cannot be digits alone: a number names a campaign by its id.")
    return key


def _check_name_and_key(
    tenant_id: int, name: str, key: str, other_than: int | None = None
) -> tuple[str, str]:
    name = (name or "").strip()
    if not 0 < len(name) <= 100:
        raise CampaignError("A campaign's name has 1 to 100 characters.")
    key = check_key(key)
    for column, value, what in ((Campaign.name, name, "name"), (Campaign.key, key, "key")):
        query = select(func.count()).where(Campaign.tenant_id == tenant_id, column == value)
        if other_than is not None:
            query = query.where(Campaign.id != other_than)
        if db.session.scalar(query):
            raise CampaignError(f"Another campaign has the {what} {value!r}.")
    return name, key


def create_campaign(tenant: Tenant, name: str, key: str, by: User | None) -> Campaign:
    """A new running campaign; CampaignError when the name or key is taken or wrong."""
    name, key = _check_name_and_key(tenant.id, name, key)
    campaign = Campaign(
        tenant_id=tenant.id,
        name=name,
        key=key,
        state=CampaignState.RUNNING.value,
        state_changed_by_id=by.id if by else None,
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign


def rename_campaign(campaign: Campaign, name: str, key: str) -> None:
    """A new name and key (the default campaign's too); CampaignError when one is taken by
    another campaign of the tenant or wrong. Its leads and attempts stay its own: they name
    it by id."""
    campaign.name, campaign.key = _check_name_and_key(
        campaign.tenant_id, name, key, other_than=campaign.id
    )
    db.session.commit()


def set_state(campaign: Campaign, state: CampaignState, by: User | None) -> None:
    """Run, pause or archive a campaign, and tell the engine at once: a paused campaign's
    calls in flight finish, and it claims no lead of it from its next tick. The default
    campaign is never archived (leads without a campaign go there)."""
    if state == CampaignState.ARCHIVED and campaign.is_default:
        raise CampaignError("The default campaign cannot be archived.")
    if campaign.state == state.value:
        return
    campaign.state = state.value
    campaign.state_changed_at = datetime.now(UTC)
    campaign.state_changed_by_id = by.id if by else None
    db.session.commit()
    wake_engine(campaign.tenant_id, "campaigns")


def due_leads(tenant: Tenant) -> dict[int, int]:
    """{campaign id: leads not finished (new, dialing, or waiting for a retry)}."""
    open_ = (LeadStatus.NEW.value, LeadStatus.DIALING.value, LeadStatus.RETRY.value)
    rows = db.session.execute(
        select(Lead.campaign_id, func.count())
        .where(Lead.tenant_id == tenant.id, Lead.status.in_(open_))
        .group_by(Lead.campaign_id)
    ).all()
    return {campaign_id: count for campaign_id, count in rows}
