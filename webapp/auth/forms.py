from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

MIN_PASSWORD = 10


def password_field(label, description=None) -> PasswordField:
    """A password someone chooses or is given: at least MIN_PASSWORD characters."""
    return PasswordField(
        label,
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD,
                max=200,
                message=_l("Use at least %(n)d characters.", n=MIN_PASSWORD),
            ),
        ],
        description=description,
    )


def new_password_fields():
    password = password_field(_l("New password"))
    confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )
    return password, confirm


class SignupForm(FlaskForm):
    company = StringField(_l("Company name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(
        _l("Your email"), validators=[DataRequired(), Email(check_deliverability=False)]
    )
    password, confirm = new_password_fields()


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    remember = BooleanField(_l("Keep me signed in"))


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(check_deliverability=False)])


class ResetPasswordForm(FlaskForm):
    password, confirm = new_password_fields()


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password, confirm = new_password_fields()
