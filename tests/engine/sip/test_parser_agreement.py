"""The Cython parser and its pure-Python twin agree on arbitrary and mutated messages:
the same message (start line, headers, body, the fast accessors and what a response copies)
or the same error."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.sip import ParseError, _parser, parser
from tests.engine.sip.test_parser import INVITE, OK_200

TORTURE = Path(__file__).resolve().parents[4] / "shared" / "data" / "sip" / "rfc4475"
SEEDS = [INVITE, OK_200] + [path.read_bytes() for path in sorted(TORTURE.glob("*.dat"))]

#: Bytes that matter to the grammar, and a few that must be refused.
INTERESTING = [
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n ",
    b":",
    b";",
    b",",
    b'"',
    b"<",
    b">",
    b"\\",
    b"=",
    b"/",
    b"@",
    b"?",
    b"[",
    b"]",
    b"*",
    b"%",
    b"\x00",
    b"\x07",
    b"\x7f",
    b"\x80",
    b"\xc3",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"0",
    b"9",
    b"99999999999",
    b"SIP/2.0",
    b"sip:",
    b"tag=",
    b"branch=",
    b"Via:",
    b"v:",
    b"CSeq:",
    b"Content-Length:",
    b"l:",
    b"From:",
    b"To:",
    b"Contact: *",
    b"Date:",
    b"Max-Forwards:",
    b"Warning:",
    b"Retry-After:",
]


def outcome(parse, data: bytes):
    try:
        msg = parse(data)
    except ParseError as e:
        return ("error", str(e), e.line)
    return (
        type(msg).__name__,
        msg.start_line,
        msg.headers,
        msg.body,
        msg.call_id,
        msg.cseq,
        msg.from_tag,
        msg.to_tag,
        msg.branch,
        msg.get_all("via"),
        msg.get_all("contact"),
        msg.response_head("SIP/2.0 200 OK", "t0"),  # what a response copies, as bytes
        bytes(msg),
    )


def assert_agree(data: bytes):
    compiled = outcome(_parser.parse, data)
    assert compiled == outcome(parser.parse, data), data
    if compiled[0] != "error":  # and what we write reads back the same
        assert outcome(_parser.parse, compiled[-1])[:-1] == compiled[:-1]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "byte"]))
        if action == "replace":
            data[at : at + 1] = draw(st.sampled_from(INTERESTING))
        elif action == "insert":
            data[at:at] = draw(st.sampled_from(INTERESTING))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif action == "truncate":
            del data[at:]
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


HEADER_NAMES = [
    "Via",
    "v",
    "From",
    "f",
    "To",
    "t",
    "Call-ID",
    "i",
    "CSeq",
    "Contact",
    "m",
    "Content-Length",
    "l",
    "Max-Forwards",
    "Expires",
    "Date",
    "Warning",
    "Retry-After",
    "Route",
    "Record-Route",
    "Refer-To",
    "r",
    "X-Custom",
    "Subject",
]
VALUE_PARTS = [
    "SIP/2.0/UDP",
    " ",
    "\t",
    "host.example.com",
    "192.0.2.1",
    "[2001:db8::1]",
    ":5060",
    ";",
    "branch=z9hG4bK1",
    "tag=abc",
    "rport",
    "=",
    "<",
    ">",
    "sip:a@b",
    '"Display Name"',
    '"un',
    ",",
    "1",
    "INVITE",
    "OPTIONS",
    "0",
    "300",
    "Sat, 13 Nov 2010 23:29:00 GMT",
    "GMT",
    "*",
    "lr",
    "\r\n ",
    "%41",
    "é",
    "\\",
    "?x=y",
]


@st.composite
def generated(draw):
    if draw(st.booleans()):
        method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "REFER", "N0T!FY", "a b"]))
        uri = draw(st.sampled_from(["sip:a@b", "sips:x@y:5061", "<sip:a@b>", "tel:+1", "a@b"]))
        start = f"{method} {uri} SIP/2.0"
    else:
        start = f"SIP/2.0 {draw(st.integers(0, 1000))} {draw(st.sampled_from(['OK', '', 'é']))}"
    lines = [start]
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.sampled_from(HEADER_NAMES))
        parts = draw(st.lists(st.sampled_from(VALUE_PARTS), max_size=8))
        lines.append(f"{name}{draw(st.sampled_from([':', ' :', ': ']))}{''.join(parts)}")
    body = draw(st.binary(max_size=40))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


FAST = settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(mutated())
def test_agree_on_mutated_messages(data):
    assert_agree(data)


@FAST
@given(generated())
def test_agree_on_generated_messages(data):
    assert_agree(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_agree_on_arbitrary_bytes(data):
    assert_agree(data)


def test_agree_on_every_seed():
    for seed in SEEDS:
        assert_agree(seed)


def frame_outcome(frame, data: bytes, start: int):
    try:
        return frame(data, start)
    except ParseError as e:
        return ("error", str(e))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.integers(0, 3), st.integers(0, 40))
def test_stream_framing_agrees_on_mutated_streams(data, copies, start):
    """`frame` on a stream of messages (mutated, several in a row, cut anywhere) finds the
    same begin and end, or words the same error, in both parsers."""
    stream = data * (copies + 1)
    for buffer in (stream, bytearray(stream)):
        assert frame_outcome(_parser.frame, buffer, start) == frame_outcome(
            parser.frame, buffer, start
        ), stream[:200]
