from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager
from wtforms.fields.choices import SelectChoice

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.models import CampaignMember, Operator, Team, User
from webapp.operators import bp
from webapp.operators.forms import NewOperatorForm, OperatorForm, TeamForm
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.accounts import EmailTaken, create_operator
from webapp.services.campaigns import campaigns_of, campaigns_worked
from webapp.tenancy import current_tenant, get_or_404, scoped


def _team_choices(form: OperatorForm) -> None:
    teams = db.session.scalars(scoped(Team).order_by(Team.name)).all()
    form.team_id.choices = [
        SelectChoice("0", _("No team")),
        *(SelectChoice(str(t.id), t.name) for t in teams),
    ]


def _extension_owner(extension: str, exclude_id: int | None = None) -> Operator | None:
    query = scoped(Operator).where(Operator.extension == extension)
    if exclude_id is not None:
        query = query.where(Operator.id != exclude_id)
    return db.session.scalar(query)


def _extension_taken_message(owner: Operator | None, extension: str) -> str:
    if owner is None:
        return _("Extension %(ext)s already belongs to another operator.", ext=extension)
    return _(
        "Extension %(ext)s already belongs to %(name)s. Each operator needs their own.",
        ext=extension,
        name=owner.name,
    )


@bp.get("/")
@tenant_reader
def index():
    # Each row shows the operator's login: one join, not a query per operator.
    operators = db.session.scalars(
        scoped(Operator)
        .join(User, (User.id == Operator.user_id) & (User.tenant_id == Operator.tenant_id))
        .options(contains_eager(Operator.user))
        .order_by(Operator.active.desc(), Operator.name)
    ).all()
    teams = db.session.scalars(scoped(Team).order_by(Team.name)).all()
    counts = dict(
        db.session.execute(
            scoped(Operator)
            .with_only_columns(Operator.team_id, func.count())
            .where(Operator.team_id.is_not(None))
            .group_by(Operator.team_id)
        ).all()
    )
    # Which campaigns each works (docs/portal.md, "Campaigns"); those without members are
    # everyone's, said once above the tables.
    tenant = current_tenant()
    by_operator, by_team = campaigns_worked(tenant)
    with_members = set(
        db.session.scalars(scoped(CampaignMember).with_only_columns(CampaignMember.campaign_id))
    )
    everyones = [c for c in campaigns_of(tenant, archived=False) if c.id not in with_members]
    return render_template(
        "operators/index.html",
        operators=operators,
        teams=teams,
        counts=counts,
        by_operator=by_operator,
        by_team=by_team,
        everyones=everyones,
        editable=can_change(),
    )


@bp.route("/new", methods=["GET", "POST"])
@tenant_writer
def new():
    form = NewOperatorForm()
    _team_choices(form)
    if form.validate_on_submit():
        owner = _extension_owner(form.extension.data)
        if owner is not None:
            form.extension.errors.append(_extension_taken_message(owner, form.extension.data))
        else:
            try:
                create_operator(
                    current_tenant(),
                    name=form.name.data.strip(),
                    email=form.email.data,
                    extension=form.extension.data,
                    password=form.password.data,
                    team_id=form.team_id.data or None,
                )
                db.session.commit()
                wake_engine(current_tenant().id, "operators")
            except EmailTaken:
                db.session.rollback()
                form.email.errors.append(_("An account with this email already exists."))
            except IntegrityError:  # a concurrent request took the extension
                db.session.rollback()
                form.extension.errors.append(_extension_taken_message(None, form.extension.data))
            else:
                flash(_("Operator %(name)s is added.", name=form.name.data.strip()), "success")
                return redirect(url_for("operators.index"))
    return render_template("operators/operator_form.html", form=form, operator=None, editable=True)


@bp.route("/<int:operator_id>", methods=["GET", "POST"])
@tenant_reader
def edit(operator_id: int):
    operator = get_or_404(Operator, operator_id)
    form = OperatorForm(obj=operator)
    _team_choices(form)
    if not form.is_submitted():
        form.team_id.data = operator.team_id or 0
    if form.validate_on_submit():
        owner = _extension_owner(form.extension.data, exclude_id=operator.id)
        if owner is not None:
            form.extension.errors.append(_extension_taken_message(owner, form.extension.data))
        else:
            operator.name = form.name.data.strip()
            operator.extension = form.extension.data
            operator.team_id = form.team_id.data or None
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                form.extension.errors.append(_extension_taken_message(None, form.extension.data))
            else:
                wake_engine(operator.tenant_id, "operators")
                flash(_("Operator %(name)s is saved.", name=operator.name), "success")
                return redirect(url_for("operators.index"))
    return render_template(
        "operators/operator_form.html", form=form, operator=operator, editable=can_change()
    )


def _set_active(operator_id: int, active: bool):
    operator = get_or_404(Operator, operator_id)
    operator.active = active
    operator.user.active = active  # a deactivated operator cannot sign in
    db.session.commit()
    wake_engine(operator.tenant_id, "operators")
    if active:
        flash(_("Operator %(name)s is active again.", name=operator.name), "success")
    else:
        flash(_("Operator %(name)s is deactivated.", name=operator.name), "success")
    return redirect(url_for("operators.index"))


@bp.post("/<int:operator_id>/deactivate")
@tenant_writer
def deactivate(operator_id: int):
    return _set_active(operator_id, False)


@bp.post("/<int:operator_id>/activate")
@tenant_writer
def activate(operator_id: int):
    return _set_active(operator_id, True)


def _team_name_taken(name: str, exclude_id: int | None = None) -> bool:
    query = scoped(Team).where(Team.name == name)
    if exclude_id is not None:
        query = query.where(Team.id != exclude_id)
    return db.session.scalar(query) is not None


@bp.route("/teams/new", methods=["GET", "POST"])
@tenant_writer
def new_team():
    form = TeamForm()
    if form.validate_on_submit():
        name = form.name.data.strip()
        if _team_name_taken(name):
            form.name.errors.append(_("There is already a team called %(name)s.", name=name))
        else:
            db.session.add(Team(tenant_id=current_tenant().id, name=name))
            db.session.commit()
            flash(_("Team %(name)s is added.", name=name), "success")
            return redirect(url_for("operators.index"))
    return render_template("operators/team_form.html", form=form, team=None, editable=True)


@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@tenant_reader
def edit_team(team_id: int):
    team = get_or_404(Team, team_id)
    form = TeamForm(obj=team)
    if form.validate_on_submit():
        name = form.name.data.strip()
        if _team_name_taken(name, exclude_id=team.id):
            form.name.errors.append(_("There is already a team called %(name)s.", name=name))
        else:
            team.name = name
            db.session.commit()
            flash(_("Team %(name)s is saved.", name=name), "success")
            return redirect(url_for("operators.index"))
    members = db.session.scalars(
        scoped(Operator).where(Operator.team_id == team.id).order_by(Operator.name)
    ).all()
    return render_template(
        "operators/team_form.html", form=form, team=team, members=members, editable=can_change()
    )


@bp.post("/teams/<int:team_id>/delete")
@tenant_writer
def delete_team(team_id: int):
    team = get_or_404(Team, team_id)
    for operator in db.session.scalars(scoped(Operator).where(Operator.team_id == team.id)):
        operator.team_id = None
    db.session.delete(team)  # its campaign memberships go with it (ON DELETE CASCADE)
    db.session.commit()
    wake_engine(team.tenant_id, "operators")  # its operators no longer work its campaigns
    flash(_("Team %(name)s is deleted; its operators have no team now.", name=team.name), "success")
    return redirect(url_for("operators.index"))
