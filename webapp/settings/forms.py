from __future__ import annotations

import ipaddress
import re
import ssl
from functools import cache
from zoneinfo import available_timezones

import phonenumbers
from cryptography import x509
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileSize
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
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
from webapp.addresses import not_public
from webapp.labels import BREAK_LABELS
from webapp.models import Transport
from webapp.models.sip_account import TRANSFER_WAIT_RANGE
from webapp.operators.forms import _extension
from webapp.services.breaks import MAX_LENGTH as MAX_REASON_LENGTH
from webapp.services.breaks import MAX_OWN as MAX_OWN_REASONS
from webapp.settings.formats import format_error_message

#: A host name, IPv4 address or bracketed IPv6 address; no scheme, no spaces, no user part.
_HOST_PART = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9\-.]*[A-Za-z0-9])?)"
_HOST = re.compile(_HOST_PART + r"\Z")
_HOST_PORT = re.compile(_HOST_PART + r"(:\d{1,5})?\Z")
_SIP_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+\Z")


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
    """A host (or host:port) the dialer can use. An IPv6 address is written in brackets, as
    in SIP URIs (`[2001:db8::1]`, `[2001:db8::1]:5070`); in the PBX's host field, where no
    port can follow, it may be written bare and is saved in brackets."""

    def check(form, field):
        value = (field.data or "").strip()
        if pattern is _HOST and _is_ipv6(value):
            value = f"[{value}]"
        field.data = value
        if value and not pattern.match(value):
            raise ValidationError(message)
        if value.startswith("[") and not _is_ipv6(value[1 : value.find("]")]):
            raise ValidationError(_l("Write an IPv6 address in brackets, e.g. [2001:db8::1]."))

    return check


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _sip_user(form, field):
    value = (field.data or "").strip()
    field.data = value
    if value and not _SIP_USER.match(value):
        raise ValidationError(_l("Use letters, digits and - _ . only; no spaces, no '@'."))


#: The largest CA bundle a SIP account takes (a few certificates are a few kilobytes).
CA_BUNDLE_LIMIT = 100_000


def _ca_bundle(form, field):
    """The CA bundle for TLS: pasted, or uploaded (the upload wins); certificates in PEM only,
    each readable, and one that Python's TLS can load as trusted CAs (as the engine will)."""
    upload = form.tls_ca_file.data
    if upload and getattr(upload, "filename", ""):
        field.data = upload.read(CA_BUNDLE_LIMIT + 1).decode("ascii", errors="replace")
    text = (field.data or "").strip()
    field.data = text + "\n" if text else ""
    if not text:
        return
    if len(text) > CA_BUNDLE_LIMIT:
        raise ValidationError(_l("The CA bundle is too large: give the CA's certificate only."))
    if "PRIVATE KEY" in text:
        raise ValidationError(
            _l(
                "This contains a private key. Give only the CA's certificate, and keep the key "
                "secret."
            )
        )
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValidationError(
            _l(
                "This is not a certificate in PEM format: it starts with "
                "-----BEGIN CERTIFICATE-----."
            )
        )
    try:
        x509.load_pem_x509_certificates(text.encode())
        ssl.create_default_context(cadata=text)
    except (ValueError, ssl.SSLError):
        raise ValidationError(
            _l(
                "A certificate here cannot be read: paste each one whole, BEGIN and END lines "
                "included."
            )
        ) from None


def _sips_needs_tls(form, field):
    if field.data and form.transport.data != Transport.TLS.value:
        raise ValidationError(_l("sips: URIs need TLS: choose TLS as the transport."))


def _realm(form, field):
    # The realm is quoted in the digest header (RFC 3261 section 22.4): no quotes or controls.
    value = field.data or ""
    if any(c in '"\\' or not c.isprintable() for c in value):
        raise ValidationError(_l("The realm cannot contain quotes, backslashes or line breaks."))


class SipAccountForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("What you call it, e.g. Main trunk; the campaigns' pages show it."),
    )
    host = StringField(
        _l("PBX host"),
        validators=[
            DataRequired(),
            Length(max=255),
            _host(_HOST, _l("Write a host name or IP address, without sip: and without a port.")),
        ],
        description=_l(
            "The address of your PBX, e.g. pbx.example.com, 203.0.113.10 or [2001:db8::10]."
        ),
    )
    port = IntegerField(
        _l("Port"),
        default=5060,
        validators=[InputRequired(), NumberRange(1, 65535)],
        description=_l(
            "5060 for UDP and TCP, 5061 for TLS: a TLS account left at 5060 is saved with 5061."
        ),
    )
    transport = SelectField(
        _l("Transport"),
        choices=[
            SelectChoice(Transport.UDP.value, "UDP"),
            SelectChoice(Transport.TCP.value, "TCP"),
            SelectChoice(Transport.TLS.value, "TLS"),
        ],
        description=_l(
            "How SIP travels to your PBX. TCP and TLS keep one connection open to it for all "
            "calls; TLS also encrypts it and checks the PBX's certificate."
        ),
    )
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=255), _sip_user])
    auth_username = StringField(
        _l("Authentication username"),
        validators=[Optional(), Length(max=255), _sip_user],
        description=_l("Only if your PBX asks for a different name when it checks the password."),
    )
    password = PasswordField(
        _l("Password"),
        validators=[Optional(), Length(max=255)],
        description=_l("Stored encrypted and never shown again. Leave empty to keep it."),
    )
    clear_password = BooleanField(_l("Remove the saved password"))
    outbound_proxy = StringField(
        _l("Outbound proxy"),
        validators=[
            Optional(),
            Length(max=255),
            _host(
                _HOST_PORT,
                _l("Write host or host:port, without sip: (IPv6 in brackets: [2001:db8::1]:5060)."),
            ),
        ],
    )
    realm = StringField(
        _l("Realm"),
        validators=[Optional(), Length(max=255), _realm],
        description=_l("Optional; the dialer answers challenges from your PBX only."),
    )
    tls_ca_file = FileField(
        _l("Upload the CA certificate"), validators=[FileSize(max_size=CA_BUNDLE_LIMIT)]
    )
    tls_ca_pem = TextAreaField(
        _l("CA certificate for TLS (PEM)"),
        validators=[_ca_bundle],
        description=_l(
            "Only for TLS, when your PBX's certificate is not from a public certificate "
            "authority (self-signed, or your company's own CA): the certificate of the CA that "
            "signed it, from -----BEGIN CERTIFICATE-----. Empty: the public certificate "
            "authorities are trusted. The certificate must name the PBX host above."
        ),
    )
    use_sips = BooleanField(
        _l("Use sips: URIs"),
        validators=[_sips_needs_tls],
        description=_l(
            "Only with TLS, and only when your PBX asks for it: our addresses and the numbers "
            "dialed are written sips:, which requires TLS on every hop."
        ),
    )
    transfer_wait_seconds = IntegerField(
        _l("Wait for the transfer's result, seconds"),
        validators=[Optional(), NumberRange(*TRANSFER_WAIT_RANGE)],
        description=_l(
            "How long the dialer waits, after handing a customer to an operator, for your "
            "PBX to say whether the operator answered. Longer than the operators' phones "
            "may ring. A result that comes later still corrects the call's record, "
            "for two minutes."
        ),
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
        field = self.outbound_proxy if self.outbound_proxy.data else self.host
        host, port = parse_host_port(field.data, self.port.data)
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


class CompanyForm(FlaskForm):
    """What is the company's, whatever the campaign: its zone, its region, its switch."""

    time_zone = SelectField(
        _l("Time zone"),
        description=_l(
            "The company's days (reports, campaigns' start and end dates) and the calling "
            "hours of leads without a zone of their own."
        ),
    )
    default_phone_region = SelectField(
        _l("Default phone region"),
        description=_l("Used for numbers written without a country code."),
    )
    dialing_enabled = BooleanField(
        _l("Automatic dialing is on"),
        description=_l("Off: none of the company's campaigns dials."),
    )
    break_reasons = TextAreaField(
        _l("Your own break reasons"),
        description=_l(
            "One a line, shown as written. Operators going off line choose a reason: Lunch, "
            "Training, Meeting, these, or End of shift."
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = time_zone_choices()
        self.default_phone_region.choices = region_choices()

    def validate_break_reasons(self, field) -> None:
        """One a line, each once, none longer than the database keeps, none a default's
        name (a default is already offered, in the viewer's language)."""
        defaults = {
            str(word).casefold()
            for key, label in BREAK_LABELS.items()
            for word in (key, key.replace("_", " "), label)
        }
        kept: list[str] = []
        for line in (field.data or "").splitlines():
            reason = " ".join(line.split())
            if not reason or reason.casefold() in {k.casefold() for k in kept}:
                continue
            if len(reason) > MAX_REASON_LENGTH:
                raise ValidationError(
                    _("A reason is at most %(count)s characters.", count=MAX_REASON_LENGTH)
                )
            if reason.casefold() in defaults:
                raise ValidationError(
                    _("%(reason)s is offered already: leave it out.", reason=reason)
                )
            kept.append(reason)
        if len(kept) > MAX_OWN_REASONS:
            raise ValidationError(_("At most %(count)s reasons.", count=MAX_OWN_REASONS))
        field.data = "\n".join(kept)


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
