"""The parser's API and its behaviour on bad input, against both implementations."""

import pytest

from engine.sip import ParseError

INVITE = (
    b"INVITE sip:+79161234567@pbx.example.com:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5072;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "AutoCall" <sip:dialer@pbx.example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:+79161234567@pbx.example.com:5060>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Contact: <sip:dialer@192.0.2.10:5072>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 10\r\n"
    b"\r\n"
    b"v=0\r\ns=-\r\n"
)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"v: SIP/2.0/UDP 192.0.2.10:5072;branch=z9hG4bK74bf9;rport=5072;received=198.51.100.7,"
    b" SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKold\r\n"
    b"f: <sip:dialer@pbx.example.com>;tag=9fxced76sl\r\n"
    b"t: <sip:+79161234567@pbx.example.com:5060>;tag=as5f3a\r\n"
    b"i: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 2 INVITE\r\n"
    b'm: "Smith, John" <sip:+79161234567@203.0.113.5:5060>;expires=60, <sip:b@h>\r\n'
    b"k: replaces, timer\r\n"
    b"Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
    b"l: 0\r\n"
    b"\r\n"
)


def test_request_fields(impl):
    msg = impl.parse(INVITE)
    assert isinstance(msg, impl.Request)
    assert (msg.method, msg.uri) == ("INVITE", "sip:+79161234567@pbx.example.com:5060")
    assert msg.start_line == "INVITE sip:+79161234567@pbx.example.com:5060 SIP/2.0"
    assert msg.body == b"v=0\r\ns=-\r\n"
    assert msg.content_length == 10
    assert msg.content_type == "application/sdp"


def test_response_fields(impl):
    msg = impl.parse(OK_200)
    assert isinstance(msg, impl.Response)
    assert (msg.status, msg.reason) == (200, "OK")
    assert msg.body == b""


def test_names_are_case_insensitive_and_compact_forms_are_the_same_header(impl):
    msg = impl.parse(OK_200)
    assert msg.get("Call-ID") == msg.get("call-id") == msg.get("I") == msg.call_id
    assert msg.get("From") == msg.get("f") == "<sip:dialer@pbx.example.com>;tag=9fxced76sl"
    assert msg.get("Supported") == "replaces, timer"
    assert msg.get("Content-Length") == "0"
    assert msg.get("X-Absent") is None
    assert msg.get_all("X-Absent") == []


def test_get_all_splits_lists_where_the_grammar_allows(impl):
    msg = impl.parse(OK_200)
    assert msg.get_all("Via") == [
        "SIP/2.0/UDP 192.0.2.10:5072;branch=z9hG4bK74bf9;rport=5072;received=198.51.100.7",
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKold",
    ]
    assert msg.get_all("k") == ["replaces", "timer"]
    # A comma inside a quoted display name does not split a Contact.
    assert msg.get_all("contact") == [
        '"Smith, John" <sip:+79161234567@203.0.113.5:5060>;expires=60',
        "<sip:b@h>",
    ]
    # Date is not a list, though its value has a comma.
    assert msg.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert impl.parse(INVITE).get_all("allow")[:3] == ["INVITE", "ACK", "CANCEL"]


def test_lines_gives_each_header_line_unsplit(impl):
    msg = impl.parse(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a:1;branch=z9hG4bK1, SIP/2.0/UDP b:2\r\n"
        b"v: SIP/2.0/UDP c:3\r\nX-A: 1\r\nx-a: 2, 3\r\nContent-Length: 0\r\n\r\n"
    )
    assert msg.lines("Via") == [
        "SIP/2.0/UDP a:1;branch=z9hG4bK1, SIP/2.0/UDP b:2",
        "SIP/2.0/UDP c:3",
    ]
    assert msg.lines("x-a") == ["1", "2, 3"]
    assert msg.lines("Route") == []


def test_typed_accessors(impl):
    msg = impl.parse(OK_200)
    via = msg.via
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.10", 5072)
    assert (via.branch, via.received, via.rport) == ("z9hG4bK74bf9", "198.51.100.7", 5072)
    assert msg.vias[1].host == "[2001:db8::1]"
    assert msg.branch == "z9hG4bK74bf9"
    assert (msg.from_tag, msg.to_tag) == ("9fxced76sl", "as5f3a")
    assert msg.to.uri == "sip:+79161234567@pbx.example.com:5060"
    assert msg.cseq == (2, "INVITE")
    assert (msg.cseq.number, msg.cseq.method) == (2, "INVITE")
    assert msg.contact.display_name == "Smith, John"
    assert msg.contact.params == {"expires": "60"}
    assert [c.uri for c in msg.contacts] == ["sip:+79161234567@203.0.113.5:5060", "sip:b@h"]
    request = impl.parse(INVITE)
    assert request.via.rport is None and "rport" in request.via.params
    assert request.to_tag is None
    assert request.from_.display_name == "AutoCall"


def test_digest_challenges(impl):
    msg = impl.parse(
        b"SIP/2.0 407 Proxy Authentication Required\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5072;branch=z9hG4bK1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b'Proxy-Authenticate: Digest realm="asterisk", nonce="5d1f2a", algorithm=SHA-256,'
        b' qop="auth", stale=TRUE\r\n'
        b'Proxy-Authenticate: Digest realm="asterisk", nonce="5d1f2a", algorithm=MD5,'
        b' qop="auth,auth-int"\r\n'
        b'WWW-Authenticate: Digest realm="a, b", nonce="x"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    first, second = msg.proxy_authenticate
    assert first.scheme == "Digest"
    assert (first.realm, first.algorithm, first.params["nonce"]) == (
        "asterisk",
        "SHA-256",
        "5d1f2a",
    )
    assert first.params["qop"] == "auth" and first.params["stale"] == "TRUE"
    assert second.params["qop"] == "auth,auth-int"
    (www,) = msg.www_authenticate  # commas inside the challenge do not split it
    assert (www.realm, www.algorithm) == ("a, b", "MD5")


def test_refer_and_notify_headers(impl):
    refer = impl.parse(
        b"REFER sip:+79161234567@203.0.113.5:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5072;branch=z9hG4bK2\r\n"
        b"From: <sip:dialer@pbx.example.com>;tag=a\r\nTo: <sip:+79161234567@pbx>;tag=b\r\n"
        b"Call-ID: c1\r\nCSeq: 3 REFER\r\n"
        b"r: <sip:101@pbx.example.com:5060>\r\n"
        b"b: <sip:dialer@pbx.example.com>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert refer.refer_to.uri == "sip:101@pbx.example.com:5060"
    assert refer.referred_by.uri == "sip:dialer@pbx.example.com"
    notify = impl.parse(
        b"NOTIFY sip:dialer@192.0.2.10:5072 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bK3\r\n"
        b"From: <sip:+79161234567@pbx>;tag=b\r\nTo: <sip:dialer@pbx.example.com>;tag=a\r\n"
        b"Call-ID: c1\r\nCSeq: 102 NOTIFY\r\n"
        b"o: refer;id=3\r\n"
        b"Subscription-State: terminated;reason=noresource\r\n"
        b"Content-Type: message/sipfrag;version=2.0\r\n"
        b"Content-Length: 21\r\n\r\n"
        b"SIP/2.0 603 Decline\r\n"
    )
    assert notify.event == ("refer", {"id": "3"})
    state = notify.subscription_state
    assert (state.state, state.reason, state.expires) == ("terminated", "noresource", None)
    assert notify.sipfrag == (603, "Decline")
    full = impl.parse(notify_with_body(b"SIP/2.0 100 Trying\r\n"))
    assert full.sipfrag == (100, "Trying")
    assert impl.parse(notify_with_body(b"SIP/2.0 486 Busy Here")).sipfrag == (486, "Busy Here")
    assert impl.parse(INVITE).sipfrag is None  # not a sipfrag body


def notify_with_body(body: bytes) -> bytes:
    return (
        b"NOTIFY sip:d@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK4\r\nCSeq: 5 NOTIFY\r\n"
        b"Event: refer\r\nContent-Type: message/sipfrag\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )


@pytest.mark.parametrize("data", [INVITE, OK_200], ids=["invite", "200"])
def test_serialise_then_parse_gives_an_equal_message(impl, data):
    msg = impl.parse(data)
    again = impl.parse(bytes(msg))
    assert again == msg
    assert bytes(again) == bytes(msg)
    assert again.headers == msg.headers


def test_folded_headers_are_unfolded(impl):
    msg = impl.parse(
        b"OPTIONS sip:a@b SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h\r\n ;branch=z9hG4bK5\r\n"
        b"Subject: one\r\n\t two \r\n   three\r\n"
        b"From: <sip:a@b>\r\n  ;tag=ft\r\n"
        b"CSeq: 7\r\n OPTIONS\r\n"
        b"\r\n"
    )
    assert msg.get("subject") == "one two three"
    assert msg.branch == "z9hG4bK5"
    assert msg.from_tag == "ft"
    assert msg.cseq == (7, "OPTIONS")


def test_leading_empty_lines_are_ignored_and_bare_lf_accepted(impl):
    msg = impl.parse(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\nCall-ID: x\nCSeq: 1 OPTIONS\n\n")
    assert (msg.method, msg.call_id) == ("OPTIONS", "x")


def test_no_content_length_takes_the_rest_of_the_datagram(impl):
    msg = impl.parse(b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\n")
    assert msg.body == b"v=0\r\n"
    assert msg.content_length is None


def test_many_headers_and_a_full_datagram(impl):
    headers = b"".join(b"X-H%d: value %d\r\n" % (i, i) for i in range(3000))
    msg = impl.parse(b"SIP/2.0 200 OK\r\n" + headers + b"Via: SIP/2.0/UDP h;branch=z\r\n\r\n")
    assert len(msg.headers) == 3001
    assert msg.get("x-h2999") == "value 2999"
    assert msg.branch == "z"
    head = b"SIP/2.0 200 OK\r\nContent-Length: 65495\r\n\r\n"
    data = head + b"x" * (65536 - len(head))
    assert len(data) == 65536
    assert len(impl.parse(data).body) == 65495
    with pytest.raises(ParseError, match="Content-Length says 65496 bytes but 65495 follow"):
        impl.parse(data.replace(b"65495", b"65496"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the message is empty"),
        (b"\r\n\r\n", "the message is empty"),
        (b"x" * 65537, "more than the 65536 a datagram can carry"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n", "does not end with an empty line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: a\x00b\r\n\r\n", "line 2: control character 0x00"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: a\rb\r\n\r\n", "line 2: control character 0x0d"),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nSubject: \xff\xfe\r\n\r\n",
            "line 2: the line is not valid UTF-8",
        ),
        (b"OPTIONS sip:a@b SIP/2.0\r\n continued\r\n\r\n", "line 2: a continuation line before"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID x\r\n\r\n", "line 2: a header line without ':'"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall ID: x\r\n\r\n", "line 2: the header name 'Call ID'"),
        (b"OPTIONS sip:a@b SIP/2.0\r\n: x\r\n\r\n", "line 2: the header name '' is not a token"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: 256\r\n\r\n", "Max-Forwards: must be a number"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nExpires: -1\r\n\r\n", "Expires: must be a number of sec"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:99999\r\n\r\n", "Via: the port must"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP\r\n\r\n", "Via: expected a host"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b\r\n\r\n", "To: '<' without a closing '>'"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nFrom: nobody\r\n\r\n", "From: 'nobody' is not a URI"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: OPTIONS\r\n\r\n", "CSeq: must be a sequence number"),
        (b"SIP/2.0 99 Odd\r\n\r\n", "line 1: the status code must be three digits"),
        (
            b"SIP/2.0\r\n\r\n",
            "line 1: the status code must be three digits from 100 to 699, not ''",
        ),
        (b"SIP/3.0 200 OK\r\n\r\n", "line 1: unsupported SIP version 'SIP/3.0'"),
        (b"OPT\xc3\xa9 sip:a@b SIP/2.0\r\n\r\n", "line 1: the method 'OPTé' is not a token"),
        (b"OPTIONS a@b SIP/2.0\r\n\r\n", "line 1: the Request-URI 'a@b' is not a URI"),
        (b"OPTIONS sip:a@b\tc SIP/2.0\r\n\r\n", "line 1: the Request-URI contains spaces"),
    ],
)
def test_bad_input_gets_a_clear_error(impl, data, message):
    with pytest.raises(ParseError) as caught:
        impl.parse(data)
    assert message in str(caught.value)


def test_every_truncation_of_a_message_is_a_parse_or_a_clear_error(impl):
    for end in range(len(INVITE) + 1):
        try:
            msg = impl.parse(INVITE[:end])
        except ParseError as e:
            assert str(e)
        else:
            assert msg.method == "INVITE"


def test_parse_takes_bytes_like_but_not_str(impl):
    assert impl.parse(bytearray(OK_200)).status == 200
    assert impl.parse(memoryview(OK_200)).status == 200
    with pytest.raises(TypeError):
        impl.parse(OK_200.decode())


def test_parse_error_is_a_value_error_with_line_and_reason(impl):
    with pytest.raises(ValueError) as caught:
        impl.parse(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: x\r\n\r\n")
    error = caught.value
    assert isinstance(error, ParseError)
    assert error.line == 2
    assert error.reason.startswith("CSeq:")
    assert str(error) == f"line 2: {error.reason}"


def test_quoted_pair_may_escape_a_control_character(impl):
    msg = impl.parse(b'OPTIONS sip:a@b SIP/2.0\r\nFrom: "a\\\x07b" <sip:a@b>;tag=1\r\n\r\n')
    assert msg.from_.display_name == "a\x07b"


def test_the_branch_is_the_top_vias_even_when_it_has_none(impl):
    """Found by the fuzzer: the second Via's branch must not leak into the first's."""
    msg = impl.parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;rport, SIP/2.0/UDP k;branch=z\r\n\r\n")
    assert msg.branch is None
    assert msg.vias[1].branch == "z"
