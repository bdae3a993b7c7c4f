"""A fixed corpus of typical SIP messages: the AutoCall dialer talking to an Asterisk PBX.

One call, as it goes on the wire between the dialer (10.20.0.5, `AutoCall/0.1.0`) and the
tenant's PBX (10.20.0.2, Asterisk with PJSIP): the first INVITE is challenged (401), the
authorised INVITE is answered (100, 180, 200 with SDP) and acknowledged, the answered call is
transferred to an operator with REFER (202, then a NOTIFY whose message/sipfrag body says
`SIP/2.0 200 OK`), and the dialer leaves the call with BYE.

Every message is a bytes constant with CRLF line ends and a Content-Length that is exactly the
length of its body; `check()` verifies that and that `engine.sip` parses each one. The
benchmark (`bench/parse.py`) and the fuzz harness (`fuzz/fuzz_parser.py`) use this corpus.
"""

from __future__ import annotations

# --- requests the dialer sends ---------------------------------------------------------------

INVITE = (
    b"INVITE sip:+14155550123@10.20.0.2:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport;branch=z9hG4bK-a41c7e2b9d3f4e01\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Contact: <sip:campaign-1042@10.20.0.5:5060;transport=udp>\r\n"
    b'Authorization: Digest username="tenant-17", realm="asterisk", '
    b'nonce="1700000000/6f0b1f3c2d4e5a69788796a5b4c3d2e1", uri="sip:+14155550123@10.20.0.2:5060", '
    b'response="0c5d7a1e2f3b4c6d8e9fa0b1c2d3e4f5", algorithm=MD5, '
    b'opaque="5f1c2a7e9b3d4a01", qop=auth, nc=00000001, cnonce="c3a9e2f1"\r\n'
    b"User-Agent: AutoCall/0.1.0\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS\r\n"
    b"Supported: replaces, timer\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 262\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=autocall 1700000000 1700000000 IN IP4 10.20.0.5\r\n"
    b"s=AutoCall\r\n"
    b"c=IN IP4 10.20.0.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=maxptime:150\r\n"
    b"a=sendrecv\r\n"
)

ACK = (
    b"ACK sip:10.20.0.2:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport;branch=z9hG4bK-0d6e3b8f51a24c77\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b"CSeq: 2 ACK\r\n"
    b"Contact: <sip:campaign-1042@10.20.0.5:5060;transport=udp>\r\n"
    b"User-Agent: AutoCall/0.1.0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

REFER = (
    b"REFER sip:10.20.0.2:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport;branch=z9hG4bK-7e19c04a2b5d4f83\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b"CSeq: 3 REFER\r\n"
    b"Contact: <sip:campaign-1042@10.20.0.5:5060;transport=udp>\r\n"
    b"Refer-To: <sip:operator-207@10.20.0.2>\r\n"
    b'Referred-By: "AutoCall" <sip:campaign-1042@10.20.0.5>\r\n'
    b"User-Agent: AutoCall/0.1.0\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS\r\n"
    b"Supported: replaces, timer\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

BYE = (
    b"BYE sip:10.20.0.2:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport;branch=z9hG4bK-c2f58a9e7d014b36\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b"CSeq: 4 BYE\r\n"
    b"User-Agent: AutoCall/0.1.0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# --- what the PBX sends ----------------------------------------------------------------------

_PBX_ALLOW = (
    b"Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, "
    b"PRACK, MESSAGE, INFO, REFER\r\n"
)

UNAUTHORIZED = (
    b"SIP/2.0 401 Unauthorized\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;received=10.20.0.5;"
    b"branch=z9hG4bK-3b8d2e6f0a9c4d15\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=z9hG4bK-3b8d2e6f0a9c4d15\r\n"
    b"CSeq: 1 INVITE\r\n"
    b'WWW-Authenticate: Digest realm="asterisk",'
    b'nonce="1700000000/6f0b1f3c2d4e5a69788796a5b4c3d2e1",opaque="5f1c2a7e9b3d4a01",'
    b'algorithm=md5,qop="auth"\r\n'
    b"Server: Asterisk PBX 20.5.2\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

TRYING = (
    b"SIP/2.0 100 Trying\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;received=10.20.0.5;"
    b"branch=z9hG4bK-a41c7e2b9d3f4e01\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Server: Asterisk PBX 20.5.2\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

RINGING = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;received=10.20.0.5;"
    b"branch=z9hG4bK-a41c7e2b9d3f4e01\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Server: Asterisk PBX 20.5.2\r\n"
    b"Contact: <sip:10.20.0.2:5060>\r\n" + _PBX_ALLOW + b"Content-Length: 0\r\n"
    b"\r\n"
)

OK_INVITE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;received=10.20.0.5;"
    b"branch=z9hG4bK-a41c7e2b9d3f4e01\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Server: Asterisk PBX 20.5.2\r\n"
    b"Contact: <sip:10.20.0.2:5060>\r\n"
    + _PBX_ALLOW
    + b"Supported: 100rel, timer, replaces, norefersub\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 222\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=- 1700000001 3 IN IP4 10.20.0.2\r\n"
    b"s=Asterisk\r\n"
    b"c=IN IP4 10.20.0.2\r\n"
    b"t=0 0\r\n"
    b"m=audio 17982 RTP/AVP 0 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=maxptime:140\r\n"
    b"a=sendrecv\r\n"
)

ACCEPTED = (
    b"SIP/2.0 202 Accepted\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;received=10.20.0.5;"
    b"branch=z9hG4bK-7e19c04a2b5d4f83\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b'From: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"To: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b"CSeq: 3 REFER\r\n"
    b"Server: Asterisk PBX 20.5.2\r\n"
    b"Contact: <sip:10.20.0.2:5060>\r\n"
    + _PBX_ALLOW
    + b"Supported: 100rel, timer, replaces, norefersub\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

NOTIFY = (
    b"NOTIFY sip:campaign-1042@10.20.0.5:5060;transport=udp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.20.0.2:5060;rport;"
    b"branch=z9hG4bKPj5e2a8c71-0b3d-4f69-a1c4-97d2e6b8f035\r\n"
    b"From: <sip:+14155550123@10.20.0.2>;tag=2b7c1e4a-9f3d-4c6b-8e21-5a0d7f3c9b18\r\n"
    b'To: "AutoCall" <sip:campaign-1042@10.20.0.5>;tag=8c3f0e21a7b94d6c\r\n'
    b"Contact: <sip:10.20.0.2:5060>\r\n"
    b"Call-ID: 4f8a9c2e-6b1d-4e3a-9f70-2d5c8b1a0e37@10.20.0.5\r\n"
    b"CSeq: 24871 NOTIFY\r\n"
    b"Event: refer\r\n"
    b"Subscription-State: terminated;reason=noresource\r\n"
    b"Allow-Events: talk, hold, conference, refer\r\n"
    b"Content-Type: message/sipfrag;version=2.0\r\n"
    b"Max-Forwards: 70\r\n"
    b"User-Agent: Asterisk PBX 20.5.2\r\n"
    b"Content-Length: 16\r\n"
    b"\r\n"
    b"SIP/2.0 200 OK\r\n"
)

#: Every message of the corpus, by a short label, in the order of the call.
MESSAGES: dict[str, bytes] = {
    "INVITE (SDP)": INVITE,
    "401 Unauthorized": UNAUTHORIZED,
    "100 Trying": TRYING,
    "180 Ringing": RINGING,
    "200 OK (SDP)": OK_INVITE,
    "ACK": ACK,
    "REFER": REFER,
    "202 Accepted": ACCEPTED,
    "NOTIFY (sipfrag)": NOTIFY,
    "BYE": BYE,
}

#: The labels of the "typical responses" part of the corpus.
TYPICAL_RESPONSES = (
    "100 Trying",
    "180 Ringing",
    "200 OK (SDP)",
    "202 Accepted",
    "401 Unauthorized",
)


def body_of(data: bytes) -> bytes:
    """Everything after the empty line that ends the header section."""
    return data.split(b"\r\n\r\n", 1)[1]


def check() -> None:
    """Raise AssertionError unless every message is well framed and parses with engine.sip."""
    import engine.sip

    for label, data in MESSAGES.items():
        length = None
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = body_of(data)
        assert length == len(body), f"{label}: Content-Length {length}, body {len(body)} bytes"
        msg = engine.sip.parse(data)
        assert msg.body == body, label
        assert msg.call_id and msg.cseq and msg.from_tag and msg.branch, label
        assert engine.sip.parse(bytes(msg)) == msg, label


if __name__ == "__main__":
    check()
    import engine.sip

    print(f"{len(MESSAGES)} messages, all parse with engine.sip ({engine.sip.parser_kind})")
