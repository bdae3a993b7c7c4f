from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError

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
