"""The value grammar both parsers share: addresses, Via, CSeq, challenges, lists, sipfrag."""

import pytest

from engine.sip.message import (
    ParseError,
    canonical_name,
    header_key,
    parse_challenge,
    parse_cseq,
    parse_name_addr,
    parse_status_line,
    parse_via,
    split_list,
    unfold,
    unquote,
)


def test_header_keys_and_canonical_names():
    assert header_key("V") == header_key("via") == "via"
    assert header_key("i") == "call-id"
    assert header_key("X-Foo") == "x-foo"
    assert canonical_name("call-id") == "Call-ID"
    assert canonical_name("cseq") == "CSeq"
    assert canonical_name("www-authenticate") == "WWW-Authenticate"
    assert canonical_name("x-foo-bar") == "X-Foo-Bar"


@pytest.mark.parametrize(
    ("value", "display", "uri", "params"),
    [
        ("<sip:a@b>", None, "sip:a@b", {}),
        ("sip:a@b;tag=1", None, "sip:a@b", {"tag": "1"}),
        ('"A \\"B\\"" <sip:a@b;lr>;tag=x;q=0.5', 'A "B"', "sip:a@b;lr", {"tag": "x", "q": "0.5"}),
        ("John  Smith <sips:j@h:5061>", "John Smith", "sips:j@h:5061", {}),
        ("<sip:a@b> ; tag = 7 ; flag", None, "sip:a@b", {"tag": "7", "flag": None}),
        ("<tel:+79161234567>", None, "tel:+79161234567", {}),
        ('<sip:a@b>;x="q;,"', None, "sip:a@b", {"x": '"q;,"'}),
        (
            "<sip:a@[2001:db8::1]:5060>;received=[::1]",
            None,
            "sip:a@[2001:db8::1]:5060",
            {"received": "[::1]"},
        ),
    ],
)
def test_parse_name_addr(value, display, uri, params):
    address = parse_name_addr(value)
    assert (address.display_name, address.uri, address.params) == (display, uri, params)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ('"open <sip:a@b>', "unterminated quoted string"),
        ('"x" sip:a@b', "must be followed by <URI>"),
        ("a,b <sip:a@b>", "must be quoted"),
        ("<sip:a@b", "without a closing"),
        ("< sip:a@b>", "spaces are not allowed inside <>"),
        ("<nothing>", "is not a URI"),
        ("sip:a@b?x=y", "must be enclosed in <>"),
        ("<sip:a@b>;", "empty parameter"),
        ("<sip:a@b>;tag=", "has '=' but no value"),
        ("<sip:a@b> junk", "unexpected 'j'"),
    ],
)
def test_parse_name_addr_rejects(value, problem):
    with pytest.raises(ValueError, match=problem):
        parse_name_addr(value)


def test_parse_via():
    via = parse_via(
        "SIP / 2.0 / udp  host.example.com : 5070 ; branch=z9hG4bK1 ; rport=1;received=1.2.3.4"
    )
    assert (via.transport, via.host, via.port) == ("UDP", "host.example.com", 5070)
    assert (via.branch, via.rport, via.received) == ("z9hG4bK1", 1, "1.2.3.4")
    ipv6 = parse_via("SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bKx")
    assert (ipv6.host, ipv6.port) == ("[2001:db8::9]", 5060)
    for bad, problem in [
        ("SIP/2.0 host", "expected '/'"),
        ("SIP/2.0/UDP", "expected a host"),
        ("SIP/2.0/UDP [::1", "without ']'"),
        ("SIP/2.0/UDP h:", "the port must"),
        ("SIP/2.0/UDP h;;", "empty parameter"),
    ]:
        with pytest.raises(ValueError, match=problem):
            parse_via(bad)


def test_parse_cseq():
    assert parse_cseq(" 42   INVITE ") == (42, "INVITE")
    assert parse_cseq("2147483647 BYE").number == 2**31 - 1
    for bad in ["INVITE", "1", "-1 INVITE", "2147483648 BYE", "1 INVITE x", "１ INVITE"]:
        with pytest.raises(ValueError):
            parse_cseq(bad)


def test_parse_challenge():
    challenge = parse_challenge('Digest realm="pbx", nonce="abc", qop="auth", algorithm=SHA-256')
    assert challenge.scheme == "Digest"
    assert challenge.params == {
        "realm": "pbx",
        "nonce": "abc",
        "qop": "auth",
        "algorithm": "SHA-256",
    }
    assert parse_challenge('Digest realm="x"').algorithm == "MD5"
    with pytest.raises(ValueError, match="unterminated"):
        parse_challenge('Digest realm="x')
    with pytest.raises(ValueError, match="has no '='"):
        parse_challenge("Digest realm")


def test_split_list_respects_quotes_and_angles():
    assert split_list('"a,b" <sip:x@y;p=1,2>, <sip:z@w>,  tail ') == [
        '"a,b" <sip:x@y;p=1,2>',
        "<sip:z@w>",
        "tail",
    ]
    assert split_list("") == [""]


def test_unfold_and_unquote():
    assert unfold(b" a\r\n  b\r\n\tc ") == b"a b c"
    assert unquote('"a \\"q\\" \\\\"') == 'a "q" \\'
    assert unquote("plain") == "plain"


def test_parse_status_line():
    assert parse_status_line(b"SIP/2.0 200 OK\r\n") == (200, "OK")
    assert parse_status_line(b"SIP/2.0 100 Trying") == (100, "Trying")
    assert parse_status_line(b"SIP/2.0 503") == (503, "")
    assert parse_status_line(b"garbage") is None
    assert parse_status_line(b"") is None


def test_parse_error_pickles_and_keeps_its_parts():
    import pickle

    error = pickle.loads(pickle.dumps(ParseError("Via: bad", 3)))
    assert (error.reason, error.line, str(error)) == ("Via: bad", 3, "line 3: Via: bad")
