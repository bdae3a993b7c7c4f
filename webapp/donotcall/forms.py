from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

#: Lines one bulk paste may hold.
MAX_LINES = 2000


class EntryForm(FlaskForm):
    number = StringField(
        _l("Number or prefix"),
        validators=[DataRequired(), Length(max=40)],
        description=_l("A number, or its first digits and * for all numbers that start so: +7916*"),
    )
    note = StringField(_l("Note"), validators=[Length(max=200)])


class BulkForm(FlaskForm):
    entries = TextAreaField(
        _l("Numbers and prefixes, one a line"),
        validators=[DataRequired(), Length(max=100_000)],
        description=_l("A note may follow on the line after a tab, ';' or ','."),
    )
    note = StringField(_l("Note for lines without one"), validators=[Length(max=200)])
