"""Messages of `engine.formats.FormatError` in the user's language, and the preview."""

from __future__ import annotations

import phonenumbers
from flask_babel import gettext as _

from engine.formats import (
    FormatError,
    render_dial_uri,
    render_refer_headers,
    render_refer_uri,
)
from webapp.models import SipAccount

SAMPLE_EXTENSION = "101"
SAMPLE_HOST = "pbx.example.com"


def format_error_message(error: FormatError) -> str:
    """The same words as the engine's English message, translated; params filled in."""
    p = error.params
    messages = {
        "empty": lambda: _("The format is empty."),
        "spaces": lambda: _("The format contains a space; SIP addresses have no spaces."),
        "unclosed_brace": lambda: _(
            "A '{' at position %(position)s is never closed with '}'.", position=p["position"]
        ),
        "stray_closing_brace": lambda: _(
            "A '}' at position %(position)s has no matching '{'.", position=p["position"]
        ),
        "nested_brace": lambda: _(
            "A '{' at position %(position)s is not closed before the next '{'.",
            position=p["position"],
        ),
        "empty_macro": lambda: _(
            "Empty braces '{}' at position %(position)s: write a macro name inside.",
            position=p["position"],
        ),
        "unknown_macro": lambda: _(
            "Unknown macro {%(name)s}; use one of: %(allowed)s.",
            name=p["name"],
            allowed=p["allowed"],
        ),
        "missing_macro": lambda: _("The format must contain {%(name)s}.", name=p["name"]),
        "bad_character": lambda: _(
            "The character %(char)s is not allowed in a SIP address.", char=repr(p["char"])
        ),
        "bad_escape": lambda: _(
            "A %(percent)s must be followed by two hexadecimal digits, e.g. %(example)s for '#'.",
            percent="'%'",
            example="%23",
        ),
        "no_at_sign": lambda: _(
            "The address needs exactly one '@' between the user part and the host."
        ),
        "empty_user": lambda: _("The address has nothing before '@'."),
        "empty_host": lambda: _("The address has nothing after '@'."),
        "bad_value": lambda: _(
            "The value of {%(name)s} (%(value)s) cannot go into a SIP address.",
            name=p["name"],
            value=repr(p["value"]),
        ),
        "bad_header_line": lambda: _(
            "Line %(line)s: write a header as 'Name: value'.", line=p["line"]
        ),
        "bad_header_name": lambda: _(
            "Line %(line)s: %(name)s is not a valid header name.",
            line=p["line"],
            name=repr(p["name"]),
        ),
        "reserved_header": lambda: _(
            "Line %(line)s: the dialer sets the %(name)s header itself.",
            line=p["line"],
            name=p["name"],
        ),
    }
    return messages[error.code]() if error.code in messages else error.message


def sample_number(region: str) -> str:
    """An example number of the tenant's region, as E.164 digits."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "15550100123"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]


def _pbx(sip_account: SipAccount) -> dict:
    return {
        "host": sip_account.host or SAMPLE_HOST,
        "port": sip_account.port,
        "server": "dialer",
    }


def preview(kind: str, source: str, sip_account: SipAccount, region: str) -> tuple[bool, str]:
    """(ok, text): the SIP URI built through the account for a sample number of the
    tenant's region or a sample extension, or the error."""
    pbx = _pbx(sip_account)
    try:
        if kind == "dial":
            return True, render_dial_uri(source, number=sample_number(region), **pbx)
        if kind == "refer":
            return True, render_refer_uri(source, extension=SAMPLE_EXTENSION, **pbx)
        headers = render_refer_headers(source, extension=SAMPLE_EXTENSION, **pbx)
        return True, "\n".join(f"{name}: {value}" for name, value in headers)
    except FormatError as error:
        return False, format_error_message(error)
