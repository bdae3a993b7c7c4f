from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, ValidationError

from webapp.auth.forms import password_field

_EXTENSION = re.compile(r"[A-Za-z0-9_.+\-*#]{1,32}\Z")


def _extension(form, field):
    field.data = (field.data or "").strip()
    if not _EXTENSION.match(field.data):
        raise ValidationError(_l("Use digits (and letters) only, up to 32, no spaces."))


class OperatorForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    extension = StringField(
        _l("Extension"),
        validators=[DataRequired(), _extension],
        description=_l("The operator's extension on your PBX: answered calls go there."),
    )
    team_id = SelectField(_l("Team"), coerce=int, choices=[])


class NewOperatorForm(OperatorForm):
    email = EmailField(
        _l("Email (the operator's login)"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    password = password_field(
        _l("First password"),
        _l("Give it to the operator; the first sign-in asks for a new one."),
    )


class TeamForm(FlaskForm):
    name = StringField(_l("Team name"), validators=[DataRequired(), Length(max=100)])
