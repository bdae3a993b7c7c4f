from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

import phonenumbers
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
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

from engine.formats import FormatError, parse_host_port, parse_refer_headers, parse_uri_format
from engine.pacing_modes import PacingMode
from webapp.addresses import not_public
from webapp.models import OFFERED_PACING_MODES, Transport
from webapp.operators.forms import _extension
from webapp.settings.formats import format_error_message

#: A host name, IPv4 address or bracketed IPv6 address; no scheme, no spaces, no user part.
_HOST_PART = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9\-.]*[A-Za-z0-9])?)"
_HOST = re.compile(_HOST_PART + r"\Z")
_HOST_PORT = re.compile(_HOST_PART + r"(:\d{1,5})?\Z")
_SIP_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+\Z")


#: What the settings page says of each pacing mode it offers (`OFFERED_PACING_MODES`).
PACING_MODE_LABELS = {
    PacingMode.MULTIPLIER: _l("Multiplier: free operators × call multiplier"),
    PacingMode.PROGRESSIVE: _l("Progressive: one call per free operator"),
    PacingMode.PREDICTIVE: _l("Predictive: keeps the abandon rate under the cap"),
}


@cache
def time_zone_choices() -> list[SelectChoice]:
    zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
    return [SelectChoice(zone, zone) for zone in zones]


@cache
def region_choices() -> list[SelectChoice]:
    return [
        SelectChoice(region, f"{region} (+{phonenumbers.country_code_for_region(region)})")
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    ]


def _host(pattern: re.Pattern, message):
    def check(form, field):
        value = (field.data or "").strip()
        field.data = value
        if value and not pattern.match(value):
            raise ValidationError(message)

    return check


def _sip_user(form, field):
    value = (field.data or "").strip()
    field.data = value
    if value and not _SIP_USER.match(value):
        raise ValidationError(_l("Use letters, digits and - _ . only; no spaces, no '@'."))


def _realm(form, field):
    # The realm is quoted in the digest header (RFC 3261 section 22.4): no quotes or controls.
    value = field.data or ""
    if any(c in '"\\' or not c.isprintable() for c in value):
        raise ValidationError(_l("The realm cannot contain quotes, backslashes or line breaks."))


class SipAccountForm(FlaskForm):
    sip_host = StringField(
        _l("PBX host"),
        validators=[
            DataRequired(),
            Length(max=255),
            _host(_HOST, _l("Write a host name or IP address, without sip: and without a port.")),
        ],
        description=_l("The address of your PBX, e.g. pbx.example.com or 203.0.113.10."),
    )
    sip_port = IntegerField(
        _l("Port"), default=5060, validators=[InputRequired(), NumberRange(1, 65535)]
    )
    sip_transport = SelectField(
        _l("Transport"),
        choices=[
            SelectChoice(Transport.UDP.value, "UDP"),
            SelectChoice(Transport.TCP.value, _l("TCP (later)")),
            SelectChoice(Transport.TLS.value, _l("TLS (later)")),
        ],
        description=_l("The dialer speaks UDP today; TCP and TLS are recorded for later."),
    )
    sip_username = StringField(
        _l("Username"), validators=[DataRequired(), Length(max=255), _sip_user]
    )
    sip_auth_username = StringField(
        _l("Authentication username"),
        validators=[Optional(), Length(max=255), _sip_user],
        description=_l("Only if your PBX asks for a different name when it checks the password."),
    )
    sip_password = PasswordField(
        _l("Password"),
        validators=[Optional(), Length(max=255)],
        description=_l("Stored encrypted and never shown again. Leave empty to keep it."),
    )
    clear_password = BooleanField(_l("Remove the saved password"))
    sip_outbound_proxy = StringField(
        _l("Outbound proxy"),
        validators=[
            Optional(),
            Length(max=255),
            _host(_HOST_PORT, _l("Write host or host:port, without sip:.")),
        ],
    )
    sip_realm = StringField(
        _l("Realm"),
        validators=[Optional(), Length(max=255), _realm],
        description=_l("Optional; the dialer answers challenges from your PBX only."),
    )

    def validate(self, extra_validators=None) -> bool:
        """The fields, then (in production, unless AUTOCALL_SIP_ALLOW_PRIVATE) where the
        dialer will send: the outbound proxy when there is one (the PBX's name then only
        appears in URIs), else the PBX. It may not resolve to a private, loopback or
        link-local address, so that no tenant points the dialer into this deployment's own
        network (webapp/addresses.py)."""
        if not super().validate(extra_validators):
            return False
        if current_app.extensions["autocall.config"].sip_private_allowed:
            return True
        field = self.sip_outbound_proxy if self.sip_outbound_proxy.data else self.sip_host
        host, port = parse_host_port(field.data, self.sip_port.data)
        address = not_public(host, port)
        if address is None:
            return True
        field.errors.append(private_address_message(host, address))
        return False


def private_address_message(host: str, address: str) -> str:
    """What the SIP page and its checks say of a PBX in a private network."""
    return _(
        "%(host)s is %(address)s, a private, loopback or link-local address: this service "
        "does not call into its own network. Enter the public address of your PBX.",
        host=host,
        address=address,
    )


class CommaDecimalField(DecimalField):
    """A decimal that also accepts a comma: Russian (and most European) users write 1,2."""

    def process_formdata(self, valuelist):
        if valuelist:
            valuelist = [value.strip().replace(",", ".") for value in valuelist]
        super().process_formdata(valuelist)


def _format_check(kind: str):
    def check(form, field):
        try:
            parse_uri_format(field.data or "", kind)
        except FormatError as error:
            raise ValidationError(format_error_message(error)) from None

    return check


def _headers_check(form, field):
    try:
        parse_refer_headers(field.data or "")
    except FormatError as error:
        raise ValidationError(format_error_message(error)) from None


class FormatsForm(FlaskForm):
    dial_format = StringField(
        _l("Dial format"),
        validators=[Length(max=255), _format_check("dial")],
        description=_l(
            "Macros: {number} the customer's number without '+', {host} and {port} of your "
            "PBX, {server} the dialer's address. sip: is added for you."
        ),
    )
    refer_format = StringField(
        _l("REFER format"),
        validators=[Length(max=255), _format_check("refer")],
        description=_l(
            "Where an answered call goes (Refer-To). Macros: {extension} the operator's "
            "extension, {host}, {port}, {server}."
        ),
    )
    refer_headers = TextAreaField(
        _l("Extra REFER headers"),
        validators=[Length(max=2000), _headers_check],
        description=_l("Optional, one 'Name: value' a line, e.g. Referred-By: <sip:{server}>"),
    )


class CallingForm(FlaskForm):
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
    time_zone = SelectField(_l("Time zone"))
    default_phone_region = SelectField(
        _l("Default phone region"),
        description=_l("Used for numbers written without a country code."),
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
    max_calls_at_once = IntegerField(
        _l("Most calls at once"),
        validators=[InputRequired(), NumberRange(1, 1000)],
        description=_l("A ceiling that protects your PBX and trunk, whatever the pacing asks."),
    )
    max_calls_per_second = IntegerField(
        _l("Most new calls per second"),
        validators=[InputRequired(), NumberRange(1, 500)],
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
    hide_numbers = BooleanField(_l("Hide customers' numbers from operators"))
    dialing_enabled = BooleanField(_l("Automatic dialing is on"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = time_zone_choices()
        self.default_phone_region.choices = region_choices()

    def validate_results(self, field):
        lines = [line.strip() for line in (field.data or "").splitlines() if line.strip()]
        if not 1 <= len(lines) <= 30:
            raise ValidationError(_l("Write from 1 to 30 results, one a line."))
        if any(len(line) > 100 for line in lines):
            raise ValidationError(_l("A result may have at most 100 characters."))
        field.data = "\n".join(lines)

    def validate_calling_hours_end(self, field):
        start = self.calling_hours_start.data
        # The same time twice is all day (engine/dialer.py `calling_window`), as the demo has.
        if start and field.data and field.data < start:
            raise ValidationError(_l("The end of calling hours must be after the start."))


class TestCallForm(FlaskForm):
    """ "Test call": a number to dial and the extension to transfer the answered call to."""

    number = StringField(
        _l("Number to call"),
        validators=[DataRequired(), Length(max=40)],
        description=_l("Your own mobile, for example: answer it and hear the transfer."),
    )
    extension = StringField(
        _l("Transfer to extension"), validators=[DataRequired(), Length(max=32), _extension]
    )
