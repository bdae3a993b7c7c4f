"""The Campaigns page: each campaign with its state and today's figures, Start / Pause /
Archive, New campaign, and a campaign's name and key. Admins change, supervisors read.

The dialing rules (SIP account, pacing, retry times, calling hours) are still the company's
settings, the same for every campaign; the next step of issue 17 moves them here."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from webapp.campaigns import bp
from webapp.campaigns.forms import CampaignForm
from webapp.extensions import db
from webapp.models import Campaign, CampaignState, User
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.campaigns import (
    CampaignError,
    campaigns_of,
    create_campaign,
    due_leads,
    rename_campaign,
    set_state,
)
from webapp.services.live import Counters, today_by_campaign
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
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        today=today_by_campaign(tenant),
        no_attempts=NO_ATTEMPTS,
        due=due_leads(tenant),
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
            flash(_("Campaign %(name)s is added and running.", name=campaign.name), "success")
            return redirect(url_for("campaigns.index"))
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
