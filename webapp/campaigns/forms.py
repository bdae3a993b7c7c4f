from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from webapp.services.campaigns import KEY


def _key(form, field):
    field.data = (field.data or "").strip().lower()
    if not KEY.match(field.data):
        raise ValidationError(
            _l("Use lower-case letters, digits and dashes, starting with a letter or a digit.")
        )
    if field.data.isdigit():
        raise ValidationError(_l("Not digits alone: a number names a campaign by its id."))


class CampaignForm(FlaskForm):
    name = StringField(_l("Campaign name"), validators=[DataRequired(), Length(max=100)])
    key = StringField(
        _l("Key"),
        validators=[DataRequired(), Length(max=64), _key],
        description=_l(
            "A short name your CRM and CSV files use for the campaign, e.g. tv-offer: a lead "
            'sent to the API with "campaign": "tv-offer" goes to this campaign. Lower-case '
            "letters, digits and dashes. Change it only together with the CRM: a lead sent "
            "with a key no campaign has is refused."
        ),
    )


def weight_field() -> IntegerField:
    return IntegerField(
        _l("Weight"),
        default=1,
        validators=[
            InputRequired(),
            NumberRange(min=1, max=100, message=_l("A weight is a whole number from 1 to 100.")),
        ],
        description=_l(
            "1 to 100. An operator in several campaigns is shared among them by these "
            "weights: with 3 here and 1 in another campaign, about three calls of this one "
            "for one of the other."
        ),
    )


class MemberForm(FlaskForm):
    """Put an operator or a team into a campaign. `who` is `operator-<id>` or `team-<id>`,
    from the tenant's own operators and teams (the view fills the choices)."""

    who = SelectField(_l("Operator or team"), choices=[], validate_choice=True)
    weight = weight_field()


class WeightForm(FlaskForm):
    weight = weight_field()
