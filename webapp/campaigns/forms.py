from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from engine.pacing_modes import PacingMode
from webapp.labels import RESULT_ACTION_LABELS
from webapp.models import OFFERED_PACING_MODES, LeadOrder
from webapp.operators.forms import _EXTENSION
from webapp.services.campaigns import KEY
from webapp.services.results import RETRY_MINUTES, Action, ResultAction

#: What the settings page says of each pacing mode it offers (`OFFERED_PACING_MODES`).
PACING_MODE_LABELS = {
    PacingMode.MULTIPLIER: _l("Multiplier: free operators × call multiplier"),
    PacingMode.PROGRESSIVE: _l("Progressive: one call per free operator"),
    PacingMode.PREDICTIVE: _l("Predictive: keeps the abandon rate under the cap"),
    PacingMode.PREVIEW: _l("Preview: the operator sees the lead and presses Call"),
}


class CommaDecimalField(DecimalField):
    """A decimal that also accepts a comma: Russian (and most European) users write 1,2."""

    def process_formdata(self, valuelist):
        if valuelist:
            valuelist = [value.strip().replace(",", ".") for value in valuelist]
        super().process_formdata(valuelist)


#: ISO weekday numbers and what the Calling tab calls them.
WEEKDAYS = (
    (1, _l("Mon")),
    (2, _l("Tue")),
    (3, _l("Wed")),
    (4, _l("Thu")),
    (5, _l("Fri")),
    (6, _l("Sat")),
    (7, _l("Sun")),
)


class MultiCheckboxField(SelectMultipleField):
    """A choice of several, as a row of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _account_id(value) -> int | None:
    """A SIP account's id from the select ("" for none)."""
    if value in (None, "", "None"):
        return None
    return int(value)


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


class ResultActionForm(Form):
    """What one result does (a row under the results; `name` is the result's)."""

    name = HiddenField()
    action = SelectField(
        _l("What it does"),
        choices=[SelectChoice(key, label) for key, label in RESULT_ACTION_LABELS.items()],
    )
    minutes = IntegerField(
        _l("After, minutes"),
        validators=[
            Optional(),
            NumberRange(*RETRY_MINUTES, message=_l("From 1 to 10080 minutes (a week).")),
        ],
    )

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # Not an inline validator: Optional() stops the chain of an empty field before it.
        if self.action.data == Action.RETRY.value and self.minutes.data is None:
            self.minutes.errors = [
                *self.minutes.errors,
                _l("A retry needs its minutes: from 1 to 10080."),
            ]
            return False
        return valid

    @property
    def result_action(self) -> ResultAction | None:
        if not self.action.data:
            return None
        action = Action(self.action.data)
        return ResultAction(action, self.minutes.data if action == Action.RETRY else None)


class CallingForm(FlaskForm):
    """A campaign's dialing rules (the "Calling" tab); the view fills the SIP accounts."""

    sip_account_id = SelectField(
        _l("SIP account"),
        coerce=_account_id,
        choices=[],
        validate_choice=True,
        description=_l("The PBX account the campaign dials through (Company settings)."),
    )
    retry_no_answer_minutes = IntegerField(
        _l("No answer"), validators=[InputRequired(), NumberRange(1, 10080)]
    )
    retry_unavailable_minutes = IntegerField(
        _l("Unavailable"), validators=[InputRequired(), NumberRange(1, 10080)]
    )
    retry_busy_minutes = IntegerField(
        _l("Busy"), validators=[InputRequired(), NumberRange(1, 10080)]
    )
    retry_technical_error_minutes = IntegerField(
        _l("Technical error"), validators=[InputRequired(), NumberRange(1, 10080)]
    )
    max_attempts = IntegerField(
        _l("Maximum attempts"), validators=[InputRequired(), NumberRange(1, 100)]
    )
    ring_timeout_seconds = IntegerField(
        _l("Ring timeout, seconds"), validators=[InputRequired(), NumberRange(5, 300)]
    )
    calling_hours_start = TimeField(_l("Calling hours from"), validators=[InputRequired()])
    calling_hours_end = TimeField(
        _l("Calling hours until"),
        validators=[InputRequired()],
        description=_l("The same time in both, e.g. 00:00 and 00:00: all day."),
    )
    calling_weekdays = MultiCheckboxField(
        _l("Calling days"),
        choices=[SelectChoice(str(number), label) for number, label in WEEKDAYS],
        description=_l("The days of the week it dials, in the customer's time zone."),
    )
    start_date = DateField(
        _l("Start date"),
        validators=[Optional()],
        description=_l("Optional: the first day it dials, in the company's time zone."),
    )
    end_date = DateField(
        _l("End date"),
        validators=[Optional()],
        description=_l("Optional: the last day it dials, in the company's time zone."),
    )
    pacing_mode = SelectField(
        _l("Pacing mode"),
        choices=[
            SelectChoice(mode.value, PACING_MODE_LABELS[mode]) for mode in OFFERED_PACING_MODES
        ],
    )
    call_multiplier = CommaDecimalField(
        _l("Call multiplier"),
        places=2,
        validators=[InputRequired(), NumberRange(1, 5)],
        description=_l("1.0 to 5.0; e.g. 1.2 runs 6 calls for 5 free operators."),
    )
    abandon_rate_cap_percent = CommaDecimalField(
        _l("Abandon rate cap, %"),
        places=1,
        validators=[InputRequired(), NumberRange(0.1, 20)],
    )
    abandon_rate_window_days = SelectField(
        _l("Abandon rate measured over"),
        coerce=int,
        choices=[
            SelectChoice(1, _l("the last 24 hours")),
            SelectChoice(30, _l("the last 30 days")),
        ],
        description=_l(
            "The regulatory window: predictive pacing keeps the abandon rate over it under the cap."
        ),
    )
    abandon_tolerance_seconds = CommaDecimalField(
        _l("Hold an answered customer for an operator, seconds"),
        places=1,
        validators=[InputRequired(), NumberRange(0, 10)],
        description=_l(
            "A customer who picks up when every operator is busy waits this long for the "
            "first to be free; then the call counts as abandoned. Regulators allow 2 seconds."
        ),
    )
    fallback_target = StringField(
        _l("Fallback for abandoned calls"),
        validators=[Length(max=32)],
        description=_l(
            "Optional: an extension or number at your PBX (a recorded message saying who "
            "called and how to call back, a voicemail, an overflow queue). An abandoned "
            "customer is transferred there instead of being hung up on."
        ),
    )
    max_calls_at_once = IntegerField(
        _l("Most calls at once"),
        validators=[InputRequired(), NumberRange(1, 1000)],
        description=_l("A ceiling that protects your PBX and trunk, whatever the pacing asks."),
    )
    max_calls_per_second = IntegerField(
        _l("Most new calls per second"),
        validators=[InputRequired(), NumberRange(1, 500)],
    )
    preview_countdown_seconds = IntegerField(
        _l("Preview countdown, seconds"),
        validators=[InputRequired(), NumberRange(0, 600)],
        description=_l(
            "Preview: the lead is dialed by itself this long after its card opens, unless the "
            "operator skips it. 0: only when the operator presses Call."
        ),
    )
    wrap_up_timeout_seconds = IntegerField(
        _l("Wrap-up time, seconds"),
        validators=[InputRequired(), NumberRange(0, 86400)],
        description=_l(
            "After a transfer the operator is busy with the lead until they finish it in the "
            "console, or until this time passes. 0: only the console frees the operator."
        ),
    )
    failed_transfers_limit = IntegerField(
        _l("Failed transfers before an operator goes off line"),
        validators=[InputRequired(), NumberRange(0, 100)],
        description=_l(
            "Failed transfers in a row after which the operator is taken off line. 0: never."
        ),
    )
    results = TextAreaField(
        _l("Results an operator can record"),
        validators=[InputRequired()],
        description=_l("One a line, e.g. Sale, Not interested, Call back."),
    )
    #: One row per result as saved: what it does when an operator records it.
    actions = FieldList(FormField(ResultActionForm), max_entries=30)
    hide_numbers = BooleanField(_l("Hide customers' numbers from operators"))
    lead_order = SelectField(
        _l("Which leads first"),
        choices=[
            SelectChoice(LeadOrder.NEW_FIRST.value, _l("New leads, then due retries")),
            SelectChoice(LeadOrder.RETRIES_FIRST.value, _l("Due retries, then new leads")),
            SelectChoice(LeadOrder.PRIORITY.value, _l("By the lead's priority")),
        ],
        description=_l("Due callbacks are always dialed first, whatever this says."),
    )
    callback_grace_minutes = IntegerField(
        _l("A personal callback waits for its operator, minutes"),
        validators=[InputRequired(), NumberRange(0, 1440)],
        description=_l(
            "How long past its time a callback the operator keeps for themselves waits for "
            "them to be free; then anyone takes it."
        ),
    )

    def validate_results(self, field):
        lines = [line.strip() for line in (field.data or "").splitlines() if line.strip()]
        if not 1 <= len(lines) <= 30:
            raise ValidationError(_l("Write from 1 to 30 results, one a line."))
        if any(len(line) > 100 for line in lines):
            raise ValidationError(_l("A result may have at most 100 characters."))
        field.data = "\n".join(lines)

    def validate_fallback_target(self, field):
        field.data = (field.data or "").strip() or None
        if field.data is not None and not _EXTENSION.match(field.data):
            raise ValidationError(_l("Use digits (and letters) only, up to 32, no spaces."))

    def validate_calling_hours_end(self, field):
        start = self.calling_hours_start.data
        # The same time twice is all day (engine/dialer.py `calling_window`), as the demo has.
        if start and field.data and field.data < start:
            raise ValidationError(_l("The end of calling hours must be after the start."))

    def validate_calling_weekdays(self, field):
        if not field.data:
            raise ValidationError(_l("Choose at least one day."))

    def validate_end_date(self, field):
        start = self.start_date.data
        if start and field.data and field.data < start:
            raise ValidationError(_l("The end date cannot be before the start date."))

    @property
    def weekdays(self) -> str:
        """The chosen days as the column keeps them, e.g. "12345"."""
        return "".join(sorted(set(self.calling_weekdays.data or [])))
