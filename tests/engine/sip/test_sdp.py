"""engine/sip/sdp.py: our offer, the parse of a PBX's offer and our answer to it (RFC 3264).

The user agent's answers to re-INVITEs are tested against SIPp in test_ua.py; here the
offer/answer rules one by one, and the parser on malformed and generated input."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sip import sdp

LOCAL = sdp.LocalMedia("192.0.2.7", 40000, "1234")


def offer(*media: str, session: str = "", connection: str = "c=IN IP4 198.51.100.1\r\n") -> bytes:
    head = "v=0\r\no=pbx 77 5 IN IP4 198.51.100.1\r\ns=-\r\n" + connection + "t=0 0\r\n"
    return (head + session + "".join(media)).encode()


AUDIO = "m=audio 7000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"


def answer_of(body: bytes, version: int = 9) -> str:
    return sdp.answer(sdp.parse(body), LOCAL, version).decode()


def media_lines(text: str) -> list[list[str]]:
    """The answer's streams, each its m= line and the lines under it."""
    streams: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("m="):
            streams.append([line])
        elif streams:
            streams[-1].append(line)
    return streams


def test_our_offer_is_the_minimal_valid_one():
    text = sdp.offer(LOCAL, 1234).decode()
    assert text == (
        "v=0\r\no=autocall 1234 1234 IN IP4 192.0.2.7\r\ns=AutoCall\r\nc=IN IP4 192.0.2.7\r\n"
        "t=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        "a=sendrecv\r\n"
    )
    parsed = sdp.parse(text.encode())
    assert (parsed.session_id, parsed.version, parsed.times) == ("1234", 1234, ("0 0",))
    (audio,) = parsed.media
    assert (audio.port, audio.formats, audio.direction, audio.address) == (
        40000,
        ("0", "8", "101"),
        "sendrecv",
        "192.0.2.7",
    )
    assert audio.rtpmap["101"] == ("telephone-event", 8000)


def test_an_ipv6_session():
    text = sdp.offer(sdp.LocalMedia("2001:db8::7", 40000, "1"), 1).decode()
    assert "o=autocall 1 1 IN IP6 2001:db8::7\r\n" in text and "c=IN IP6 2001:db8::7\r\n" in text


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
        ("sendrecv", "sendrecv"),
    ],
)
def test_the_direction_is_mirrored(offered, answered):
    (audio,) = media_lines(answer_of(offer(AUDIO + f"a={offered}\r\n")))
    assert audio[-1] == f"a={answered}"
    # ...and a session-level direction counts for streams that have none
    (audio,) = media_lines(answer_of(offer(AUDIO, session=f"a={offered}\r\n")))
    assert audio[-1] == f"a={answered}"


def test_a_stream_direction_overrides_the_session_one():
    (audio,) = media_lines(answer_of(offer(AUDIO + "a=inactive\r\n", session="a=sendonly\r\n")))
    assert audio[-1] == "a=inactive"


def test_no_direction_is_sendrecv():
    (audio,) = media_lines(answer_of(offer(AUDIO)))
    assert audio[-1] == "a=sendrecv"


def test_the_old_hold_by_a_null_address_is_answered_recvonly():
    body = offer(AUDIO, connection="c=IN IP4 0.0.0.0\r\n")
    (audio,) = media_lines(answer_of(body))
    assert audio[-1] == "a=recvonly"


def test_only_offered_codecs_we_have_in_our_order_with_their_numbers():
    media = "m=audio 7000 RTP/AVP 18 8 96 0\r\na=rtpmap:96 opus/48000/2\r\n"
    (audio,) = media_lines(answer_of(offer(media)))
    assert audio[0] == "m=audio 40000 RTP/AVP 0 8"
    assert "a=rtpmap:0 PCMU/8000" in audio and "a=rtpmap:8 PCMA/8000" in audio
    assert not any("101" in line or "opus" in line for line in audio)  # no events offered


def test_a_codec_of_ours_on_a_dynamic_payload_type_keeps_that_type():
    media = (
        "m=audio 7000 RTP/AVP 97 98\r\na=rtpmap:97 PCMA/8000\r\n"
        "a=rtpmap:98 telephone-event/8000\r\n"
    )
    (audio,) = media_lines(answer_of(offer(media)))
    assert audio[:3] == [
        "m=audio 40000 RTP/AVP 97 98",
        "a=rtpmap:97 PCMA/8000",
        "a=rtpmap:98 telephone-event/8000",
    ]
    assert "a=fmtp:98 0-16" in audio


def test_pcmu_at_another_rate_is_not_ours():
    media = "m=audio 7000 RTP/AVP 96 8\r\na=rtpmap:96 PCMU/16000\r\n"
    (audio,) = media_lines(answer_of(offer(media)))
    assert audio[0] == "m=audio 40000 RTP/AVP 8"


def test_our_address_and_port_whatever_the_offer_says():
    text = answer_of(offer(AUDIO))
    assert "c=IN IP4 192.0.2.7\r\n" in text and "198.51.100.1" not in text
    assert "o=autocall 1234 9 IN IP4 192.0.2.7\r\n" in text


def test_other_streams_are_refused_with_port_zero_in_their_place():
    video = "m=video 7002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    srtp = "m=audio 7004 RTP/SAVP 0\r\n"
    second = "m=audio 7006 RTP/AVP 8\r\n"
    streams = media_lines(answer_of(offer(video, srtp, AUDIO, second)))
    assert [s[0] for s in streams] == [
        "m=video 0 RTP/AVP 96",
        "m=audio 0 RTP/SAVP 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "m=audio 0 RTP/AVP 8",  # one RTP port: one audio stream
    ]
    assert [len(s) for s in streams] == [1, 1, 6, 1]


def test_a_disabled_stream_stays_disabled():
    streams = media_lines(answer_of(offer("m=audio 0 RTP/AVP 0\r\n", AUDIO)))
    assert [s[0] for s in streams] == ["m=audio 0 RTP/AVP 0", "m=audio 40000 RTP/AVP 0 8 101"]


@pytest.mark.parametrize(
    "media",
    [
        "m=audio 7000 RTP/AVP 18 96\r\na=rtpmap:96 opus/48000/2\r\n",
        "m=audio 7000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",  # events alone
        "m=audio 7000 RTP/SAVP 0 8\r\n",
        "m=video 7000 RTP/AVP 0\r\n",
        "m=audio 0 RTP/AVP 0\r\n",
    ],
)
def test_nothing_we_can_take_is_not_acceptable(media):
    with pytest.raises(sdp.NotAcceptable, match="no stream we can take"):
        answer_of(offer(media))


def test_the_time_lines_are_the_offer_s():
    body = offer(AUDIO).replace(b"t=0 0", b"t=3034423619 3042462419")
    assert "\r\nt=3034423619 3042462419\r\n" in answer_of(body)


def test_lf_line_ends_are_read():
    parsed = sdp.parse(offer(AUDIO + "a=sendonly\r\n").replace(b"\r\n", b"\n"))
    assert parsed.media[0].direction == "sendonly"


def test_a_stream_address_overrides_the_session_one():
    parsed = sdp.parse(offer(AUDIO + "c=IN IP4 203.0.113.9/127\r\n"))
    assert parsed.media[0].address == "203.0.113.9"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"o=pbx 1 1 IN IP4 1.2.3.4\r\n", "line 1: a session description starts with v=0"),
        (b"v=1\r\n", "line 1: a session description starts with v=0"),
        (offer(AUDIO).replace(b"s=-", b"s -"), "line 3: 's -' is not <type>=<value>"),
        (offer(AUDIO).replace(b"o=pbx 77 5 IN", b"o=pbx 77 IN"), "line 2: o= needs 6 fields"),
        (offer(AUDIO).replace(b"o=pbx 77 5", b"o=pbx 77 v5"), "the version 'v5' is not a number"),
        (offer().replace(b"s=-\r\n", b""), "no s= line"),
        (offer(AUDIO).replace(b"s=-\r\n", b""), "line 5: m= before the session's s= line"),
        (offer(AUDIO).replace(b"t=0 0\r\n", b""), "line 5: m= before the session's t= line"),
        (offer().replace(b"t=0 0\r\n", b""), "no t= line"),
        (offer().replace(b"o=pbx 77 5 IN IP4 198.51.100.1\r\n", b""), "no o= line"),
        (offer(AUDIO + "t=0 0\r\n"), "line 8: t= after the first m= line"),
        (offer(AUDIO, connection=""), "m= line 1 has no c= line, nor has the session"),
        (offer(AUDIO, connection="c=IN IP4\r\n"), "line 4: c= is not 'IN IP4|IP6 <address>'"),
        (offer("m=audio 7000 RTP/AVP\r\n"), "line 6: m= needs a media, a port"),
        (offer("m=audio  7000 RTP/AVP 0\r\n"), "line 6: m= needs a media, a port"),
        (offer("m=audio 70000 RTP/AVP 0\r\n"), "the port '70000' is not a number up to 65535"),
        (offer("m=audio 7000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n"), "line 7: a=rtpmap is not"),
        (offer("m=audio 7000 RTP/AVP 96\r\na=rtpmap:96 X/fast\r\n"), "the clock rate 'fast'"),
    ],
)
def test_malformed_descriptions_say_where_and_what(body, error):
    with pytest.raises(sdp.SDPError) as raised:
        sdp.parse(body)
    assert error in str(raised.value)
    assert not isinstance(raised.value, sdp.NotAcceptable)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_sdperror(body):
    try:
        parsed = sdp.parse(body)
    except sdp.SDPError:
        return
    with contextlib.suppress(sdp.NotAcceptable):
        sdp.answer(parsed, LOCAL, 1)


directions = st.sampled_from(sorted(sdp.MIRROR))
payload_types = st.lists(st.integers(0, 127), min_size=1, max_size=6, unique=True)


@settings(max_examples=300, deadline=None)
@given(
    streams=st.lists(
        st.tuples(
            st.sampled_from(["audio", "video"]), st.integers(0, 65535), payload_types, directions
        ),
        min_size=1,
        max_size=4,
    ),
    events=st.integers(96, 127),
)
def test_every_answer_holds_to_the_offer(streams, events):
    """Generated offers: the answer has as many m= lines in the same order, takes at most one
    stream, answers it with offered codecs only in the mirrored direction, and reads back."""
    media = []
    for kind, port, types, direction in streams:
        types = [t for t in types if t != events] + [events]
        media.append(
            f"m={kind} {port} RTP/AVP {' '.join(map(str, types))}\r\n"
            f"a=rtpmap:{events} telephone-event/8000\r\na={direction}\r\n"
        )
    parsed = sdp.parse(offer(*media))
    try:
        text = sdp.answer(parsed, LOCAL, 3).decode()
    except sdp.NotAcceptable:
        assert not any(
            kind == "audio" and port and {0, 8} & set(types) for kind, port, types, _ in streams
        )
        return
    answered = sdp.parse(text.encode())
    assert len(answered.media) == len(streams)
    taken = [(m, o) for m, o in zip(answered.media, parsed.media, strict=True) if m.port]
    assert len(taken) == 1
    ((mine, theirs),) = taken
    assert (mine.kind, mine.port, mine.direction) == ("audio", 40000, sdp.MIRROR[theirs.direction])
    assert set(mine.formats) <= set(theirs.formats)
    assert [f for f in mine.formats if f in ("0", "8")] == [
        f for f in ("0", "8") if f in theirs.formats
    ]
    assert (str(events) in mine.formats) == bool({"0", "8"} & set(theirs.formats))
    for refused, offered in zip(answered.media, parsed.media, strict=True):
        if not refused.port:
            assert refused.formats == offered.formats
