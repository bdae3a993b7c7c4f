from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from webapp.auth.forms import password_field
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
    password = password_field(
        _l("First password"),
        _l("Give it to the person; the first sign-in asks for a new one."),
    )
