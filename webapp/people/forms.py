from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from webapp.auth.forms import MIN_PASSWORD
from webapp.models import Role


class PersonForm(FlaskForm):
    email = EmailField(
        _l("Email (the login)"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    role = SelectField(
        _l("Role"),
        choices=[
            SelectChoice(
                Role.SUPERVISOR.value, _l("Supervisor: reads everything, changes nothing")
            ),
            SelectChoice(Role.ADMIN.value, _l("Admin: changes everything")),
        ],
    )
    password = PasswordField(
        _l("First password"),
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD,
                max=200,
                message=_l("Use at least %(n)d characters.", n=MIN_PASSWORD),
            ),
        ],
        description=_l("Give it to the person; the first sign-in asks for a new one."),
    )
