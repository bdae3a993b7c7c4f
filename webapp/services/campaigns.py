"""Campaigns: the tenant's lists of leads, each dialed while it runs (docs/portal.md,
"Campaigns"). Every tenant has a default campaign (webapp/models/campaign.py); a lead sent
without a campaign goes there. A campaign is named in the API and CSV files by its id or by
its key, the tenant's own short name for it. Its members (operators and teams, each with a
weight) are who works it; a campaign without members is worked by every operator. Its
dialing rules (`Campaign.RULES`: SIP account, retry times, calling hours and days, dates,
pacing, results) are its own; a new campaign starts with the default campaign's, a
duplicate with those of the campaign it copies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import redis
from flask_babel import gettext as _
from sqlalchemy import func, select

from webapp.bus import presence, wake_engine
from webapp.extensions import db
from webapp.models import (
    Campaign,
    CampaignMember,
    CampaignState,
    Lead,
    LeadStatus,
    Operator,
    SipAccount,
    Team,
    Tenant,
    User,
)
from webapp.models.campaign import RULES
from webapp.services.engine_state import describe_campaign, engine_state
from webapp.services.sip_accounts import dialing_on

#: A key: lower-case letters, digits and dashes, as in `tv-offer`.
KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: A member's weight: how the engine shares an operator among the campaigns they work.
WEIGHTS = range(1, 101)


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


def rules_of(campaign: Campaign) -> dict:
    """The campaign's dialing rules, as a new campaign copies them."""
    return {name: getattr(campaign, name) for name in RULES}


def create_campaign(tenant: Tenant, name: str, key: str, by: User | None) -> Campaign:
    """A new running campaign with the default campaign's dialing rules (it dials as the
    company did); CampaignError when the name or key is taken or wrong."""
    name, key = _check_name_and_key(tenant.id, name, key)
    campaign = Campaign(
        tenant_id=tenant.id,
        name=name,
        key=key,
        state=CampaignState.RUNNING.value,
        state_changed_by_id=by.id if by else None,
        **rules_of(default_campaign(tenant)),
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign


def _free(tenant_id: int, column, first: str, then, most: int) -> str:
    """`first`, else `then(2)`, `then(3)`... : the first value no campaign of the tenant has
    in `column`, cut to `most` characters."""
    number = 1
    value = first[:most]
    while db.session.scalar(
        select(func.count()).where(Campaign.tenant_id == tenant_id, column == value)
    ):
        number += 1
        value = then(number)[:most]
    return value


def duplicate_campaign(campaign: Campaign, by: User | None) -> Campaign:
    """A paused copy of a campaign, "<name> (copy)" with a free name and key, with every
    dialing rule and every member (operators and teams with their weights); its leads stay
    where they are. Paused: the admin looks at it before it dials."""
    tenant_id = campaign.tenant_id
    name = _free(
        tenant_id,
        Campaign.name,
        f"{campaign.name} (copy)",
        lambda n: f"{campaign.name[:88]} (copy {n})",
        100,
    )
    key = _free(
        tenant_id,
        Campaign.key,
        f"{campaign.key[:59]}-copy",
        lambda n: f"{campaign.key[:52]}-copy-{n}",
        64,
    )
    copy = Campaign(
        tenant_id=tenant_id,
        name=name,
        key=key,
        state=CampaignState.PAUSED.value,
        state_changed_by_id=by.id if by else None,
        **rules_of(campaign),
    )
    db.session.add(copy)
    db.session.flush()
    members = db.session.scalars(
        select(CampaignMember).where(
            CampaignMember.tenant_id == tenant_id, CampaignMember.campaign_id == campaign.id
        )
    ).all()
    db.session.add_all(
        CampaignMember(
            tenant_id=tenant_id,
            campaign_id=copy.id,
            operator_id=member.operator_id,
            team_id=member.team_id,
            weight=member.weight,
        )
        for member in members
    )
    db.session.commit()
    wake_engine(tenant_id, "campaigns")
    return copy


def update_rules(campaign: Campaign, values: dict) -> None:
    """New dialing rules for a campaign (values: some of RULES, checked by the form; the
    SIP account is checked here to be the tenant's, as the database does too). Wakes the
    engine, which reloads the rules."""
    unknown = set(values) - set(RULES)
    if unknown:
        raise CampaignError(f"Not a dialing rule: {', '.join(sorted(unknown))}.")
    account_id = values.get("sip_account_id", campaign.sip_account_id)
    if account_id is not None and not db.session.scalar(
        select(func.count()).where(
            SipAccount.tenant_id == campaign.tenant_id, SipAccount.id == account_id
        )
    ):
        raise CampaignError(f"There is no SIP account {account_id!r} in this company.")
    for name, value in values.items():
        setattr(campaign, name, value)
    db.session.commit()
    wake_engine(campaign.tenant_id, "settings")


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


# --- who works a campaign ---------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A row of a campaign's members, with the operator or team it names."""

    row: CampaignMember
    operator: Operator | None
    team: Team | None

    @property
    def name(self) -> str:
        return self.operator.name if self.operator else self.team.name  # type: ignore[union-attr]


def members_of(campaign: Campaign) -> list[Member]:
    """The campaign's members: its teams, then its operators, each by name."""
    rows = db.session.execute(
        select(CampaignMember, Operator, Team)
        .outerjoin(
            Operator,
            (Operator.tenant_id == CampaignMember.tenant_id)
            & (Operator.id == CampaignMember.operator_id),
        )
        .outerjoin(
            Team, (Team.tenant_id == CampaignMember.tenant_id) & (Team.id == CampaignMember.team_id)
        )
        .where(
            CampaignMember.tenant_id == campaign.tenant_id,
            CampaignMember.campaign_id == campaign.id,
        )
    ).all()
    members = [Member(row, operator, team) for row, operator, team in rows]
    return sorted(members, key=lambda m: (m.operator is not None, m.name.casefold(), m.row.id))


def working_operators(campaign: Campaign) -> list[tuple[Operator, int]] | None:
    """Who takes the campaign's calls now, as the engine reads it (webapp/services/dialing.py):
    each active operator with their own weight, else their team's; None when the campaign
    has no members (every operator works it, weight 1)."""
    members = members_of(campaign)
    if not members:
        return None
    own = {m.row.operator_id: m.row.weight for m in members if m.operator is not None}
    by_team = {m.row.team_id: m.row.weight for m in members if m.team is not None}
    operators = db.session.scalars(
        select(Operator)
        .where(Operator.tenant_id == campaign.tenant_id, Operator.active)
        .order_by(Operator.name)
    ).all()
    working = []
    for operator in operators:
        weight = own.get(operator.id, by_team.get(operator.team_id))
        if weight is not None:
            working.append((operator, weight))
    return working


def check_weight(weight: object) -> int:
    """A weight as it is stored, or CampaignError."""
    if isinstance(weight, bool) or not isinstance(weight, int) or weight not in WEIGHTS:
        raise CampaignError("A weight is a whole number from 1 to 100.")
    return weight


def add_member(
    campaign: Campaign,
    *,
    operator_id: int | None = None,
    team_id: int | None = None,
    weight: int = 1,
) -> CampaignMember:
    """Put an operator or a team of the campaign's own tenant into it, with a weight, and
    tell the engine. CampaignError for another tenant's operator or team (worded as for one
    that does not exist), for both or neither, a wrong weight, or one already in it."""
    weight = check_weight(weight)
    if (operator_id is None) == (team_id is None):
        raise CampaignError("Name an operator or a team, one of them.")
    tenant_id = campaign.tenant_id
    if operator_id is not None:
        operator = db.session.scalar(
            select(Operator).where(Operator.tenant_id == tenant_id, Operator.id == operator_id)
        )
        if operator is None:
            raise CampaignError(f"There is no operator {operator_id!r} in this company.")
        taken = CampaignMember.operator_id == operator_id
        name = operator.name
    else:
        team = db.session.scalar(
            select(Team).where(Team.tenant_id == tenant_id, Team.id == team_id)
        )
        if team is None:
            raise CampaignError(f"There is no team {team_id!r} in this company.")
        taken = CampaignMember.team_id == team_id
        name = team.name
    if db.session.scalar(
        select(func.count()).where(
            CampaignMember.tenant_id == tenant_id, CampaignMember.campaign_id == campaign.id, taken
        )
    ):
        raise CampaignError(f"{name} is in this campaign already: change the weight instead.")
    member = CampaignMember(
        tenant_id=tenant_id,
        campaign_id=campaign.id,
        operator_id=operator_id,
        team_id=team_id,
        weight=weight,
    )
    db.session.add(member)
    db.session.commit()
    wake_engine(tenant_id, "campaigns")
    return member


def update_member(member: CampaignMember, weight: int) -> None:
    """A member's new weight; CampaignError for a wrong one."""
    member.weight = check_weight(weight)
    db.session.commit()
    wake_engine(member.tenant_id, "campaigns")


def remove_member(member: CampaignMember) -> None:
    """Take an operator or a team out of a campaign (the last one out leaves the campaign
    to every operator)."""
    tenant_id = member.tenant_id
    db.session.delete(member)
    db.session.commit()
    wake_engine(tenant_id, "campaigns")


@dataclass(frozen=True)
class Worked:
    """A campaign an operator or a team works, with the weight; `through_team`: the
    operator works it as one of their team."""

    campaign: Campaign
    weight: int
    through_team: bool = False


def campaigns_worked(tenant: Tenant) -> tuple[dict[int, list[Worked]], dict[int, list[Worked]]]:
    """({operator id: campaigns}, {team id: campaigns}) over the tenant's campaigns that are
    not archived, the default first, then by name. An operator works a campaign they are in,
    or their team is in (their own weight outweighs the team's); campaigns without members,
    worked by everyone, are not listed here."""
    campaigns = {c.id: c for c in campaigns_of(tenant, archived=False)}
    order = {campaign_id: n for n, campaign_id in enumerate(campaigns)}
    rows = db.session.scalars(
        select(CampaignMember).where(
            CampaignMember.tenant_id == tenant.id, CampaignMember.campaign_id.in_(campaigns)
        )
    ).all()
    teams: dict[int, list[Worked]] = {}
    own: dict[int, dict[int, Worked]] = {}
    for row in rows:
        worked = Worked(campaigns[row.campaign_id], row.weight)
        if row.team_id is not None:
            teams.setdefault(row.team_id, []).append(worked)
        else:
            own.setdefault(row.operator_id, {})[row.campaign_id] = worked  # type: ignore[index]
    team_of = dict(
        db.session.execute(
            select(Operator.id, Operator.team_id).where(Operator.tenant_id == tenant.id)
        ).all()
    )
    operators: dict[int, list[Worked]] = {}
    for operator_id, team_id in team_of.items():
        worked_by = dict(own.get(operator_id, {}))
        for through in teams.get(team_id, []) if team_id is not None else []:
            worked_by.setdefault(
                through.campaign.id, Worked(through.campaign, through.weight, through_team=True)
            )
        if worked_by:
            operators[operator_id] = list(worked_by.values())
    for listing in (*operators.values(), *teams.values()):
        listing.sort(key=lambda w: order[w.campaign.id])
    return operators, teams


def own_reason(campaign: Campaign, today: date) -> str | None:
    """Why a running campaign does not dial by its own rules on `today` (the company's
    date), or None: no SIP account, before its start date, past its end date, not one of
    its days."""
    if campaign.sip_account_id is None:
        return _("No SIP account: choose one on its Calling tab.")
    if campaign.start_date is not None and today < campaign.start_date:
        return _("It starts on %(date)s.", date=campaign.start_date.isoformat())
    if campaign.end_date is not None and today > campaign.end_date:
        return _("It ended on %(date)s.", date=campaign.end_date.isoformat())
    if str(today.isoweekday()) not in campaign.calling_weekdays:
        return _("Today is not one of its calling days.")
    return None


def why_not_dialing(
    tenant: Tenant, campaigns: list[Campaign], due: dict[int, int]
) -> dict[int, str]:
    """{campaign id: whether it dials now, and why not, in the reader's words}: its state,
    its own rules (SIP account, dates, days, in the company's zone), its leads to dial,
    whether an operator who works it is on line (a campaign's own reasons first), then what
    the company's engine says of it, else of the company (services/engine_state.py)."""
    engine = engine_state(tenant.id)
    dialing = dialing_on(tenant)
    today = datetime.now(ZoneInfo(tenant.time_zone)).date()
    try:
        on_line = {int(op) for op in presence(tenant.id).states()}
    except (RuntimeError, redis.RedisError):  # no Redis: the engine's own words tell
        on_line = set()
    out = {}
    for campaign in campaigns:
        if campaign.state == CampaignState.PAUSED.value:
            out[campaign.id] = _("Paused: no new calls.")
        elif campaign.state == CampaignState.ARCHIVED.value:
            out[campaign.id] = _("Archived: no new calls.")
        elif (reason := own_reason(campaign, today)) is not None:
            out[campaign.id] = reason
        elif not due.get(campaign.id):
            out[campaign.id] = _("No leads to dial.")
        elif (working := working_operators(campaign)) is not None and not on_line & {
            operator.id for operator, _weight in working
        }:
            out[campaign.id] = _("None of its operators is on line.")
        else:
            out[campaign.id] = describe_campaign(engine, campaign.id, dialing)
    return out
