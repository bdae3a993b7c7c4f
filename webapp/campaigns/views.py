"""The Campaigns page: each campaign with its state and today's figures, Start / Pause /
Archive, Duplicate, New campaign; a campaign's pages in three tabs: Campaign (name and key),
Calling (its dialing rules: SIP account, retry times, calling hours and days, dates, pacing,
operators' wrap-up, results) and Who works it (its operators and teams, each with a weight).
Admins change, supervisors read."""

from __future__ import annotations

from decimal import Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from wtforms.fields.choices import SelectChoice

from webapp.campaigns import bp
from webapp.campaigns.forms import CallingForm, CampaignForm, MemberForm, WeightForm
from webapp.extensions import db
from webapp.models import Campaign, CampaignMember, CampaignState, Operator, Team, User
from webapp.models.campaign import RULES
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.campaigns import (
    CampaignError,
    Member,
    add_member,
    campaigns_of,
    create_campaign,
    due_leads,
    duplicate_campaign,
    members_of,
    remove_member,
    rename_campaign,
    set_state,
    update_member,
    update_rules,
    why_not_dialing,
    working_operators,
)
from webapp.services.live import Counters, today_by_campaign
from webapp.services.results import action_of, actions_for
from webapp.services.sip_accounts import accounts_of
from webapp.tenancy import current_tenant, get_or_404, scoped

STATE_LABELS = {
    CampaignState.RUNNING.value: _l("Running"),
    CampaignState.PAUSED.value: _l("Paused"),
    CampaignState.ARCHIVED.value: _l("Archived"),
}
NO_ATTEMPTS = Counters(0, 0, 0, 0)


@bp.app_context_processor
def labels() -> dict:
    """A campaign's state in the pages' words (the leads pages show them too)."""
    return {"CAMPAIGN_STATE_LABELS": STATE_LABELS}


@bp.get("/")
@tenant_reader
def index():
    tenant = current_tenant()
    campaigns = campaigns_of(tenant)
    changed_by = {c.state_changed_by_id for c in campaigns} - {None}
    emails = (
        dict(
            db.session.execute(
                scoped(User).with_only_columns(User.id, User.email).where(User.id.in_(changed_by))
            ).all()
        )
        if changed_by
        else {}
    )
    members = dict(
        db.session.execute(
            scoped(CampaignMember)
            .with_only_columns(CampaignMember.campaign_id, func.count())
            .group_by(CampaignMember.campaign_id)
        ).all()
    )
    due = due_leads(tenant)
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        accounts={account.id: account.name for account in accounts_of(tenant)},
        why=why_not_dialing(tenant, campaigns, due),
        members=members,
        today=today_by_campaign(tenant),
        no_attempts=NO_ATTEMPTS,
        due=due,
        emails=emails,
        editable=can_change(),
    )


def _taken(form: CampaignForm, other_than: int | None = None) -> bool:
    """Whether another campaign of the tenant has the form's name or key (said on the field)."""
    taken = False
    for field, column, message in (
        (form.name, Campaign.name, _l("Another campaign has this name.")),
        (form.key, Campaign.key, _l("Another campaign has this key.")),
    ):
        query = scoped(Campaign).where(column == field.data.strip())
        if other_than is not None:
            query = query.where(Campaign.id != other_than)
        if db.session.scalar(query) is not None:
            field.errors.append(str(message))
            taken = True
    return taken


@bp.route("/new", methods=["GET", "POST"])
@tenant_writer
def new():
    form = CampaignForm()
    if form.validate_on_submit() and not _taken(form):
        try:
            campaign = create_campaign(
                current_tenant(), form.name.data, form.key.data, current_user
            )
        except CampaignError as error:
            form.key.errors.append(error.message)
        except IntegrityError:  # a concurrent request took the name or key
            db.session.rollback()
            form.key.errors.append(_("Another campaign has this name or key."))
        else:
            flash(
                _(
                    "Campaign %(name)s is added and running, with the default campaign's "
                    "dialing rules: change them on its Calling tab.",
                    name=campaign.name,
                ),
                "success",
            )
            return redirect(url_for("campaigns.calling", campaign_id=campaign.id))
    return render_template("campaigns/form.html", form=form, campaign=None, editable=True)


@bp.route("/<int:campaign_id>", methods=["GET", "POST"])
@tenant_reader
def edit(campaign_id: int):
    campaign = get_or_404(Campaign, campaign_id)
    form = CampaignForm(obj=campaign)
    if form.validate_on_submit() and not _taken(form, other_than=campaign.id):
        try:
            rename_campaign(campaign, form.name.data, form.key.data)
        except CampaignError as error:
            form.key.errors.append(error.message)
        except IntegrityError:
            db.session.rollback()
            form.key.errors.append(_("Another campaign has this name or key."))
        else:
            flash(_("Campaign %(name)s is saved.", name=campaign.name), "success")
            return redirect(url_for("campaigns.index"))
    return render_template(
        "campaigns/form.html", form=form, campaign=campaign, editable=can_change()
    )


def _rules_form(campaign: Campaign) -> CallingForm:
    """The Calling tab's form: the campaign's rules on GET (what was typed on POST), the
    tenant's SIP accounts to choose from ("none" only while the tenant has none, or the
    campaign has none yet)."""
    form = CallingForm(obj=campaign if request.method == "GET" else None)
    choices = [SelectChoice(account.id, account.name) for account in accounts_of(current_tenant())]
    if not choices or campaign.sip_account_id is None:
        choices.insert(0, SelectChoice(None, _l("— none —")))
    form.sip_account_id.choices = choices
    if request.method == "GET":
        form.calling_weekdays.data = list(campaign.calling_weekdays)
        for field in (
            form.call_multiplier,
            form.abandon_rate_cap_percent,
            form.abandon_tolerance_seconds,
        ):
            field.data = Decimal(str(field.data))  # 1.2, not 1.19999
        for name in campaign.result_choices:
            action = action_of(campaign, name)
            form.actions.append_entry(
                {
                    "name": name,
                    "action": action.action.value if action else "",
                    "minutes": action.minutes if action else None,
                }
            )
    return form


def _form_rules(form: CallingForm) -> dict:
    values: dict[str, object] = {}
    for name in RULES:
        if name == "result_actions":  # the rows of the results still listed
            chosen = {row.form.name.data: row.form.result_action for row in form.actions}
            values[name] = actions_for(form.results.data.splitlines(), chosen)
            continue
        value = form.weekdays if name == "calling_weekdays" else getattr(form, name).data
        if isinstance(value, Decimal):
            value = float(value)
        values[name] = value
    return values


@bp.route("/<int:campaign_id>/calling", methods=["GET", "POST"])
@tenant_reader
def calling(campaign_id: int):
    """The campaign's dialing rules; saving wakes the engine, which dials by them at once."""
    campaign = get_or_404(Campaign, campaign_id)
    form = _rules_form(campaign)
    if form.validate_on_submit():
        try:
            update_rules(campaign, _form_rules(form))
        except CampaignError as error:
            db.session.rollback()
            form.sip_account_id.errors.append(error.message)
        else:
            flash(_("The calling settings of %(name)s are saved.", name=campaign.name), "success")
            return redirect(url_for("campaigns.calling", campaign_id=campaign.id))
    return render_template(
        "campaigns/calling.html", form=form, campaign=campaign, editable=can_change()
    )


@bp.post("/<int:campaign_id>/duplicate")
@tenant_writer
def duplicate(campaign_id: int):
    """A paused copy with every dialing rule and every member; its page opens."""
    campaign = get_or_404(Campaign, campaign_id)
    try:
        copy = duplicate_campaign(campaign, current_user)
    except IntegrityError:  # a concurrent request took the name or key
        db.session.rollback()
        flash(_("Another campaign has this name or key."), "error")
        return redirect(url_for("campaigns.index"))
    flash(
        _(
            "Campaign %(name)s is made from %(original)s with its settings and who works it; "
            "it is paused: Start it when it is ready.",
            name=copy.name,
            original=campaign.name,
        ),
        "success",
    )
    return redirect(url_for("campaigns.edit", campaign_id=copy.id))


def _set_state(campaign_id: int, state: CampaignState, done: str):
    campaign = get_or_404(Campaign, campaign_id)
    if state == CampaignState.ARCHIVED and campaign.is_default:
        flash(
            _("The default campaign cannot be archived: leads sent without a campaign go there."),
            "error",
        )
        return redirect(url_for("campaigns.index"))
    try:
        set_state(campaign, state, current_user)
    except CampaignError as error:
        flash(error.message, "error")
    else:
        flash(done % {"name": campaign.name}, "success")
    return redirect(url_for("campaigns.index"))


@bp.post("/<int:campaign_id>/run")
@tenant_writer
def run(campaign_id: int):
    """Start a paused or archived campaign: its due leads are dialed again (while dialing is
    on), and an archived one takes new leads again."""
    return _set_state(campaign_id, CampaignState.RUNNING, _("Campaign %(name)s is running."))


@bp.post("/<int:campaign_id>/pause")
@tenant_writer
def pause(campaign_id: int):
    return _set_state(
        campaign_id,
        CampaignState.PAUSED,
        _("Campaign %(name)s is paused: no new calls; calls in flight finish."),
    )


@bp.post("/<int:campaign_id>/archive")
@tenant_writer
def archive(campaign_id: int):
    return _set_state(
        campaign_id,
        CampaignState.ARCHIVED,
        _("Campaign %(name)s is archived: no new calls and no new leads."),
    )


# --- who works a campaign ----------------------------------------------------------------------


def _who_choices(form: MemberForm, members: list[Member]) -> None:
    """The tenant's teams and active operators not in the campaign yet, as `team-<id>` and
    `operator-<id>` (the service checks again that they are the tenant's)."""
    in_it = {("team", m.row.team_id) for m in members if m.team is not None} | {
        ("operator", m.row.operator_id) for m in members if m.operator is not None
    }
    teams = db.session.scalars(scoped(Team).order_by(Team.name)).all()
    operators = db.session.scalars(
        scoped(Operator).where(Operator.active).order_by(Operator.name)
    ).all()
    choices: dict[str, list[tuple[str, str]]] = {}
    team_choices = [(f"team-{t.id}", t.name) for t in teams if ("team", t.id) not in in_it]
    operator_choices = [
        (f"operator-{o.id}", f"{o.name} ({o.extension})")
        for o in operators
        if ("operator", o.id) not in in_it
    ]
    if team_choices:
        choices[str(_l("Teams"))] = team_choices
    if operator_choices:
        choices[str(_l("Operators"))] = operator_choices
    form.who.choices = choices


@bp.route("/<int:campaign_id>/members", methods=["GET", "POST"])
@tenant_reader
def members(campaign_id: int):
    """The campaign's operators and teams with their weights; admins add, change, remove."""
    campaign = get_or_404(Campaign, campaign_id)
    current = members_of(campaign)
    form = MemberForm()
    _who_choices(form, current)
    if form.validate_on_submit():
        kind, _dash, number = form.who.data.partition("-")
        chosen = {"operator_id" if kind == "operator" else "team_id": int(number)}
        try:
            add_member(campaign, weight=form.weight.data, **chosen)
        except CampaignError as error:
            db.session.rollback()
            form.who.errors.append(error.message)
        except IntegrityError:  # a concurrent request put them in
            db.session.rollback()
            form.who.errors.append(_("They are in this campaign already."))
        else:
            name = dict(c for group in form.who.choices.values() for c in group)[form.who.data]
            flash(
                _(
                    "%(name)s works campaign %(campaign)s now, weight %(weight)s.",
                    name=name,
                    campaign=campaign.name,
                    weight=form.weight.data,
                ),
                "success",
            )
            return redirect(url_for("campaigns.members", campaign_id=campaign.id))
    return render_template(
        "campaigns/members.html",
        campaign=campaign,
        members=current,
        working=working_operators(campaign),
        form=form,
        editable=can_change(),
    )


def _member_or_404(campaign_id: int, member_id: int) -> tuple[Campaign, Member]:
    campaign = get_or_404(Campaign, campaign_id)
    for member in members_of(campaign):
        if member.row.id == member_id:
            return campaign, member
    abort(404)


@bp.post("/<int:campaign_id>/members/<int:member_id>")
@tenant_writer
def member_weight(campaign_id: int, member_id: int):
    campaign, member = _member_or_404(campaign_id, member_id)
    form = WeightForm()
    if form.validate_on_submit():
        try:
            update_member(member.row, form.weight.data)
        except CampaignError as error:
            db.session.rollback()
            flash(error.message, "error")
        else:
            flash(
                _(
                    "The weight of %(name)s in campaign %(campaign)s is %(weight)s now.",
                    name=member.name,
                    campaign=campaign.name,
                    weight=member.row.weight,
                ),
                "success",
            )
    else:
        for error in form.weight.errors or form.errors.get("csrf_token", []):
            flash(f"{member.name}: {error}", "error")
    return redirect(url_for("campaigns.members", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/members/<int:member_id>/remove")
@tenant_writer
def member_remove(campaign_id: int, member_id: int):
    campaign, member = _member_or_404(campaign_id, member_id)
    remove_member(member.row)
    if members_of(campaign):
        message = _(
            "%(name)s no longer works campaign %(campaign)s.",
            name=member.name,
            campaign=campaign.name,
        )
    else:
        message = _(
            "%(name)s no longer works campaign %(campaign)s. Nobody is in it now: every "
            "operator works it.",
            name=member.name,
            campaign=campaign.name,
        )
    flash(message, "success")
    return redirect(url_for("campaigns.members", campaign_id=campaign.id))
