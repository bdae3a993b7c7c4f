"""The dial / REFER format language: what it accepts, what it refuses, and in what words."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.formats import (
    DEFAULT_DIAL_FORMAT,
    DEFAULT_REFER_FORMAT,
    FormatError,
    parse_host_port,
    parse_refer_headers,
    parse_uri_format,
    render_dial_uri,
    render_refer_headers,
    render_refer_uri,
)

PBX = {"host": "pbx.example.com", "port": 5060, "server": "dialer.example.net"}


def test_default_dial_format_adds_sip_scheme_and_plus():
    assert render_dial_uri(DEFAULT_DIAL_FORMAT, number="79991234567", **PBX) == (
        "sip:+79991234567@pbx.example.com:5060"
    )


def test_leading_plus_of_the_number_is_not_doubled():
    uri = render_dial_uri(DEFAULT_DIAL_FORMAT, number="+442071234567", **PBX)
    assert uri == "sip:+442071234567@pbx.example.com:5060"


def test_default_refer_format():
    assert render_refer_uri(DEFAULT_REFER_FORMAT, extension="101", **PBX) == (
        "sip:101@pbx.example.com:5060"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sip:{number}@{host}", "sip:15550100@pbx.example.com"),
        ("SIP:{number}@{host}", "sip:15550100@pbx.example.com"),
        ("sips:{number}@{host}", "sips:15550100@pbx.example.com"),
        ("8{number}@{host};user=phone", "sip:815550100@pbx.example.com;user=phone"),
        ("{number}@{server}", "sip:15550100@dialer.example.net"),
        ("00{number}@10.0.0.1:5080", "sip:0015550100@10.0.0.1:5080"),
        ("%2331%23{number}@{host}", "sip:%2331%2315550100@pbx.example.com"),
    ],
)
def test_accepted_dial_formats(source, expected):
    assert render_dial_uri(source, number="15550100", **PBX) == expected


@pytest.mark.parametrize(
    ("source", "code", "words"),
    [
        ("", "empty", "empty"),
        ("   ", "empty", "empty"),
        ("sip:", "empty", "empty"),
        ("+{number} @{host}", "spaces", "space"),
        ("+{ number }@{host}", "spaces", "space"),
        ("+{number@{host}", "nested_brace", "not closed before the next"),
        ("+{number}@{host", "unclosed_brace", "never closed"),
        ("+number}@{host}", "stray_closing_brace", "no matching"),
        ("+{}@{host}", "empty_macro", "Empty braces"),
        ("+{phone}@{host}", "unknown_macro", "Unknown macro {phone}"),
        ("+{extension}@{host}", "unknown_macro", "{host}, {number}, {port}, {server}"),
        ("+{number.__class__}@{host}", "unknown_macro", "Unknown macro"),
        ("+{number!r}@{host}", "unknown_macro", "Unknown macro"),
        ("+{0}@{host}", "unknown_macro", "Unknown macro {0}"),
        ("{host}@{host}", "missing_macro", "must contain {number}"),
        ("+{number}", "no_at_sign", "exactly one '@'"),
        ("+{number}@a@{host}", "no_at_sign", "exactly one '@'"),
        ("@{host}{number}", "empty_user", "nothing before"),
        ("{number}@", "empty_host", "nothing after"),
        ("{number}@:5060", "empty_host", "nothing after"),
        ("<{number}@{host}>", "bad_character", "'<'"),
        ('"{number}"@{host}', "bad_character", "not allowed"),
        ("+{number}@хост", "bad_character", "not allowed"),
        ("#31#{number}@{host}", "bad_character", "'#'"),
        ("%2{number}@{host}", "bad_escape", "two hexadecimal digits"),
        ("{number}%@{host}", "bad_escape", "two hexadecimal digits"),
    ],
)
def test_refused_dial_formats_name_the_problem(source, code, words):
    with pytest.raises(FormatError) as caught:
        parse_uri_format(source, "dial")
    assert caught.value.code == code
    assert words in caught.value.message
    assert str(caught.value) == caught.value.message


def test_positions_are_counted_from_one():
    with pytest.raises(FormatError, match="position 5"):
        parse_uri_format("+123{number@{host}", "dial")


def test_refer_format_requires_extension_and_refuses_number():
    with pytest.raises(FormatError) as caught:
        parse_uri_format("{number}@{host}", "refer")
    assert caught.value.code == "unknown_macro"
    with pytest.raises(FormatError) as caught:
        parse_uri_format("100@{host}", "refer")
    assert caught.value.code == "missing_macro"
    assert "{extension}" in caught.value.message


def test_values_that_cannot_go_into_an_address_are_refused():
    with pytest.raises(FormatError) as caught:
        render_dial_uri(DEFAULT_DIAL_FORMAT, number="1 2", **PBX)
    assert caught.value.code == "bad_value"
    with pytest.raises(FormatError):
        render_dial_uri(DEFAULT_DIAL_FORMAT, number="1@evil", **PBX)
    with pytest.raises(FormatError):
        render_dial_uri(DEFAULT_DIAL_FORMAT, number="", **PBX)


def test_python_format_syntax_is_plain_text_never_evaluated():
    # Doubled braces are not an escape in this language: '{' always opens a macro.
    with pytest.raises(FormatError):
        parse_uri_format("{{number}}@{host}", "dial")


def test_refer_headers_parse_and_render():
    text = "Referred-By: <sip:{server}>\n\nX-Operator: ext {extension}\n"
    rendered = render_refer_headers(text, extension="101", **PBX)
    assert rendered == [
        ("Referred-By", "<sip:dialer.example.net>"),
        ("X-Operator", "ext 101"),
    ]
    assert parse_refer_headers("") == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Referred-By", "bad_header_line"),
        ("Referred-By:", "bad_header_line"),
        ("Bad Name: x", "bad_header_name"),
        ("Refer-To: <sip:1@x>", "reserved_header"),
        ("via: x", "reserved_header"),
        ("X-A: {number}", "unknown_macro"),
        ("X-A: {extension", "unclosed_brace"),
    ],
)
def test_refused_refer_headers(text, code):
    with pytest.raises(FormatError) as caught:
        parse_refer_headers(text)
    assert caught.value.code == code


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_format_error(source):
    try:
        scheme, _template = parse_uri_format(source, "dial")
    except FormatError as error:
        assert error.message
    else:
        assert scheme in ("sip:", "sips:")
        uri = render_dial_uri(source, number="1555", **PBX)
        assert uri.startswith(scheme)
        assert " " not in uri


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("pbx.example.com", ("pbx.example.com", 5060)),
        ("10.0.0.1:5080", ("10.0.0.1", 5080)),
        ("[2001:db8::1]:5062", ("2001:db8::1", 5062)),
        ("[::1]", ("::1", 5060)),
    ],
)
def test_host_and_port_as_people_write_them(text, address):
    assert parse_host_port(text) == address


@pytest.mark.parametrize(
    ("text", "words"), [("pbx:port", "is not HOST"), ("pbx:70000", "from 1 to 65535")]
)
def test_a_bad_host_and_port_says_why(text, words):
    with pytest.raises(ValueError, match=words):
        parse_host_port(text)
