"""The 49 torture messages of RFC 4475, each with the verdict it is owed (MANIFEST.tsv).

Valid messages must parse with the fields the RFC discusses read right; invalid ones must be
rejected with a ParseError that says what is wrong; the semantic ones must parse.
"""

import csv
import re
from pathlib import Path

import pytest

from engine.sip import ParseError

TORTURE = Path(__file__).resolve().parents[4] / "shared" / "data" / "sip" / "rfc4475"
MANIFEST = list(csv.DictReader((TORTURE / "MANIFEST.tsv").open(), delimiter="\t"))


def load(name: str) -> bytes:
    return (TORTURE / name).read_bytes()


def test_the_manifest_lists_49_messages():
    assert len(MANIFEST) == 49
    assert {row["expected"] for row in MANIFEST} == {"valid", "invalid", "semantic"}


@pytest.mark.parametrize(
    "row", [r for r in MANIFEST if r["expected"] != "invalid"], ids=lambda r: r["file"]
)
def test_valid_and_semantic_messages_parse(impl, row):
    msg = impl.parse(load(row["file"]))
    assert isinstance(msg, impl.Request | impl.Response)
    assert impl.parse(bytes(msg)) == msg


# Why each invalid message is invalid, as the error must say (RFC 4475 section 3.1.2).
INVALID_REASONS = {
    "badinv01.dat": "line 7: Via: empty parameter",
    "clerr.dat": "Content-Length says 9999 bytes",
    "ncl.dat": "Content-Length: must be a number",
    "scalar02.dat": "CSeq: the sequence number must be below 2**31",
    "scalarlg.dat": "CSeq: the sequence number must be below 2**31",
    "quotbal.dat": "To: unterminated quoted string",
    "ltgtruri.dat": "Request-URI must not be enclosed in <>",
    "lwsruri.dat": "separated by single spaces",
    "lwsstart.dat": "separated by single spaces",
    "trws.dat": "separated by single spaces",
    "escruri.dat": "must not carry headers",
    "baddate.dat": "Date: must be an RFC 1123 date in GMT",
    "regbadct.dat": "Contact: a URI with '?' or ',' must be enclosed in <>",
    "badaspec.dat": "To: spaces are not allowed inside <>",
    "baddn.dat": "From: the display name 'Bell, Alexander' must be quoted",
    "badvers.dat": "unsupported SIP version 'SIP/7.0'",
    "mismatch01.dat": "CSeq: the method 'INVITE' does not match the request's 'OPTIONS'",
    "mismatch02.dat": "CSeq: the method 'INVITE' does not match the request's 'NEWMETHOD'",
    "bigcode.dat": "status code must be three digits from 100 to 699, not '4294967301'",
}


def test_every_invalid_message_has_its_reason():
    assert set(INVALID_REASONS) == {r["file"] for r in MANIFEST if r["expected"] == "invalid"}


@pytest.mark.parametrize("name", sorted(INVALID_REASONS))
def test_invalid_messages_are_rejected_saying_why(impl, name):
    with pytest.raises(ParseError, match=re.escape(INVALID_REASONS[name])) as caught:
        impl.parse(load(name))
    assert isinstance(caught.value, ValueError)


def test_wsinv_whitespace_everywhere(impl):
    msg = impl.parse(load("wsinv.dat"))
    assert (msg.method, msg.uri) == ("INVITE", "sip:vivekg@chair-dnrc.example.com;unknownparam")
    assert msg.to.uri == "sip:vivekg@chair-dnrc.example.com"
    assert msg.to_tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.uri == "sip:jdrosen@example.com"
    assert msg.from_tag == "98asjd8"
    assert msg.get("max-forwards") == "0068"
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert msg.cseq == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.branch == "390skdjuw"
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.get("Subject") == ""
    assert msg.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.get_all("route") == [
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    ]
    contact = msg.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.content_length == 150 == len(msg.body)


def test_intmeth_unusual_but_valid_characters(impl):
    msg = impl.parse(load("intmeth.dat"))
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.uri.startswith("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1")
    assert msg.cseq == (139122385, msg.method)
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_tag == "_token~1'+`*%!-."
    assert msg.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_escapes_are_kept_as_written(impl):
    msg = impl.parse(load("esc01.dat"))
    assert msg.uri == "sip:sips%3Auser%40example.com@example.net"
    assert msg.to.uri == "sip:%75se%72@example.com"
    assert msg.from_.uri == "sip:I%20have%20spaces@example.net"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact `i`
    assert msg.get("content-type") == "application/sdp"  # compact `C`, upper case
    assert msg.contact.uri == "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"


def test_escnull_escaped_nulls(impl):
    msg = impl.parse(load("escnull.dat"))
    assert msg.to.uri == "sip:null-%00-null@example.com"
    assert [c.uri for c in msg.contacts] == [
        "sip:%00@host5.example.com",
        "sip:%00%00@host5.example.com",
    ]
    assert msg.content_length == 0


def test_esc02_percent_that_is_not_an_escape(impl):
    msg = impl.parse(load("esc02.dat"))
    assert msg.method == "RE%47IST%45R"  # not REGISTER
    assert msg.to.display_name == "%Z%45"
    assert [c.uri for c in msg.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert msg.get("C%6Fntact") == "<sip:alias2@host2.example.com>"  # an extension header
    assert msg.branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp_no_space_before_angle(impl):
    msg = impl.parse(load("lwsdisp.dat"))
    assert msg.from_.display_name == "caller"
    assert msg.from_.uri == "sip:caller@example.com"
    assert msg.from_tag == "323"


def test_longreq_long_values(impl):
    msg = impl.parse(load("longreq.dat"))
    assert msg.to.display_name.startswith("I have a user name of extremeextreme")
    assert msg.from_tag.startswith("12982982982982982")
    assert len(msg.from_tag) > 150
    assert msg.call_id.startswith("longreq.onereally")
    vias = msg.vias  # in every spelling: Via, v, V, ViA, "V :", "Via  :" ...
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert msg.branch is None
    assert vias[-1].received == "192.0.2.5"
    assert vias[-1].branch.endswith("longbranchvalue")
    assert msg.cseq == (3882340, "INVITE")


def test_dblreq_trailing_octets_after_content_length(impl):
    msg = impl.parse(load("dblreq.dat"))
    assert msg.method == "REGISTER"
    assert msg.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # compact `I`
    assert msg.body == b""  # the second request is not our body (RFC 3261 section 18.3)
    assert msg.contact.uri == "sip:j.user@host.example.com"


def test_semiuri_semicolon_in_user_part(impl):
    msg = impl.parse(load("semiuri.dat"))
    assert msg.uri == "sip:user;par=u%40example.net@example.com"
    assert msg.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports(impl):
    msg = impl.parse(load("transports.dat"))
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert msg.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_multipart_body(impl):
    msg = impl.parse(load("mpart01.dat"))
    assert msg.method == "MESSAGE"
    assert msg.content_type == "multipart/mixed"
    assert len(msg.body) == msg.content_length == 553
    assert msg.body.startswith(b"--7a9cbec02ceef655")
    assert msg.vias[0].params["rport"] is None


def test_unreason_utf8_reason_phrase(impl):
    msg = impl.parse(load("unreason.dat"))
    assert msg.status == 200
    assert msg.reason.startswith("= 2**3 * 5**2 но сто девяносто девять")


def test_noreason_empty_reason_phrase(impl):
    msg = impl.parse(load("noreason.dat"))
    assert (msg.status, msg.reason) == (100, "")


def test_mcl01_first_content_length_wins(impl):
    msg = impl.parse(load("mcl01.dat"))
    assert msg.get_all("content-length") == ["13", "5"]
    assert msg.body == b"There's no wa"


def test_multi01_repeated_single_value_headers_keep_the_first(impl):
    msg = impl.parse(load("multi01.dat"))
    assert msg.cseq == (5, "INVITE")
    assert msg.call_id == "multi01.98asdh@192.0.2.1"
    assert len(msg.get_all("To")) == 2


def test_insuf_missing_headers_parse_with_none(impl):
    msg = impl.parse(load("insuf.dat"))
    assert msg.call_id is None
    assert msg.from_ is None
    assert msg.from_tag is None
    assert msg.to_tag is None
    assert msg.get("max-forwards") is None
    assert msg.cseq == (193942, "INVITE")


def test_unkscm_unknown_uri_scheme(impl):
    msg = impl.parse(load("unkscm.dat"))
    assert msg.uri.startswith("nobodyKnowsThisScheme:")


def test_regaut01_unknown_authorization_scheme(impl):
    msg = impl.parse(load("regaut01.dat"))
    assert msg.get("Authorization").startswith("NoOneKnowsThisScheme")
