"""SDP (RFC 4566) as far as our user agent needs it: our own offer, the parse of a PBX's
offer, and our answer to it by the offer/answer model (RFC 3264).

We never send or read media (the PBX bridges the customer to the operator after the REFER),
but what we say about media must still be right: a re-INVITE that puts us on hold offers
`a=sendonly` and must be answered `a=recvonly` (RFC 3264 section 6.1), with only codecs it
offered. One audio stream at most is taken (we hold one RTP port); any other stream is
refused with port 0 (section 6), and an offer with no stream we can take is not acceptable
(`NotAcceptable`: the call answers 488 and the session stays as it was, RFC 3261 14.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The directions of a stream (RFC 3264 section 5.1), and the answer to each (section 6.1).
MIRROR = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}

#: Our codecs, in our order of preference: (encoding name in lower case, clock rate) by the
#: static payload type RFC 3551 gives it.
CODECS = {0: ("pcmu", 8000), 8: ("pcma", 8000)}
#: DTMF events (RFC 4733): answered when offered, beside a codec; its payload type is dynamic.
EVENTS = ("telephone-event", 8000)
_EVENTS_TYPE = 101  # the one we offer
_NAMES = {"pcmu": "PCMU", "pcma": "PCMA", "telephone-event": "telephone-event"}
#: The only transport we take: plain RTP (no SRTP, no feedback profile).
PROTO = "RTP/AVP"


class SDPError(ValueError):
    """A session description we cannot read; the text says which line and what is wrong."""


class NotAcceptable(SDPError):
    """A well-formed offer with no stream we can take (RFC 3261 warning 305)."""


@dataclass(frozen=True)
class Media:
    """One m= line of a session description, with what we read of its attributes."""

    kind: str  # audio, video...
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmap: dict[str, tuple[str, int]]  # payload type -> (encoding name lower-cased, rate)
    direction: str  # the stream's own, else the session's, else sendrecv
    address: str  # the c= address that applies to the stream


@dataclass(frozen=True)
class SessionDescription:
    session_id: str
    version: int
    times: tuple[str, ...]  # the t= lines' values
    media: tuple[Media, ...]


@dataclass(frozen=True)
class LocalMedia:
    """What our side of every session says: our address, our RTP port, our session id."""

    address: str
    port: int
    session_id: str

    @property
    def address_type(self) -> str:
        return "IP6" if ":" in self.address else "IP4"


def offer(local: LocalMedia, version: int) -> bytes:
    """Our offer: audio, every codec of ours and DTMF events, sendrecv."""
    formats = [*CODECS, _EVENTS_TYPE]
    rtpmap = {**CODECS, _EVENTS_TYPE: EVENTS}
    lines = _session_lines(local, version, ("0 0",))
    lines += _media_lines(local.port, formats, rtpmap, _EVENTS_TYPE, "sendrecv")
    return _join(lines)


def answer(offered: SessionDescription, local: LocalMedia, version: int) -> bytes:
    """Our answer to `offered` (RFC 3264 section 6): one m= line for each offered, in its
    order; the first audio stream over RTP/AVP with a codec of ours is taken (the codecs both
    sides have, in our order, with the offer's payload type numbers; DTMF events when
    offered), its direction mirrored; every other stream refused with port 0. Raises
    NotAcceptable when no stream is taken."""
    lines = _session_lines(local, version, offered.times)
    taken = False
    for media in offered.media:
        formats: list[str] = []
        events: str | None = None
        if not taken and media.kind == "audio" and media.proto == PROTO and media.port:
            formats, events = _common_formats(media)
        if not formats:  # refused (section 6): port 0, the offer's formats
            lines.append(f"m={media.kind} 0 {media.proto} {' '.join(media.formats)}")
            continue
        taken = True
        direction = media.direction
        if media.address in ("0.0.0.0", "::") and direction == "sendrecv":
            # The hold of RFC 2543 (section 8.4 of RFC 3264): it will not receive.
            direction = "sendonly"
        rtpmap = {int(f): media.rtpmap.get(f) or CODECS[int(f)] for f in formats}
        if events is not None:
            formats.append(events)
            rtpmap[int(events)] = EVENTS
        numbers = [int(f) for f in formats]
        event_type = int(events) if events is not None else None
        lines += _media_lines(local.port, numbers, rtpmap, event_type, MIRROR[direction])
    if not taken:
        raise NotAcceptable(
            f"no stream we can take: we take one audio stream over {PROTO} with PCMU or PCMA"
        )
    return _join(lines)


def _common_formats(media: Media) -> tuple[list[str], str | None]:
    """The offered payload types of codecs we have, in our order, and the offered DTMF
    events' type (None when not offered)."""
    ours = list(CODECS.values())
    found: list[tuple[int, str]] = []
    events = None
    for fmt in media.formats:
        if not (fmt.isascii() and fmt.isdigit() and int(fmt) < 128):
            continue  # not an RTP payload type (RFC 3551 section 3)
        codec = media.rtpmap.get(fmt)
        if codec is None and int(fmt) < 96:  # a static type (RFC 3551)
            codec = CODECS.get(int(fmt))
        if codec in ours:
            found.append((ours.index(codec), fmt))
        elif codec == EVENTS and events is None:
            events = fmt
    found.sort()
    return [fmt for _, fmt in found], (events if found else None)


def _session_lines(local: LocalMedia, version: int, times: tuple[str, ...]) -> list[str]:
    kind, ip = local.address_type, local.address
    return [
        "v=0",
        f"o=autocall {local.session_id} {version} IN {kind} {ip}",
        "s=AutoCall",
        f"c=IN {kind} {ip}",
        *[f"t={t}" for t in times],
    ]


def _media_lines(
    port: int,
    formats: list[int],
    rtpmap: dict[int, tuple[str, int]],
    event_type: int | None,
    direction: str,
) -> list[str]:
    lines = [f"m=audio {port} {PROTO} {' '.join(map(str, formats))}"]
    for fmt in formats:
        name, rate = rtpmap[fmt]
        lines.append(f"a=rtpmap:{fmt} {_NAMES[name]}/{rate}")
    if event_type is not None:
        lines.append(f"a=fmtp:{event_type} 0-16")
    lines.append(f"a={direction}")
    return lines


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def parse(body: bytes) -> SessionDescription:
    """Read a session description: v=, o=, s=, c=, t=, m= and the attributes rtpmap and the
    directions; other lines are passed over. Lines end in CRLF or LF (section 5 asks for
    CRLF, and to accept LF). Raises SDPError naming the line and what is wrong."""
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        raise SDPError(f"not UTF-8 text (byte {error.start})") from None
    lines = text.split("\n")
    while lines and lines[-1] in ("", "\r"):  # the end; some add a blank line or more
        lines.pop()
    if not lines:
        raise SDPError("empty")
    origin: tuple[str, int] | None = None
    named = False
    times: list[str] = []
    address: str | None = None  # the session's c=
    direction: str | None = None  # the session's
    streams: list[_Stream] = []
    for number, line in enumerate(lines, 1):
        line = line.removesuffix("\r")
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SDPError(f"line {number}: {line[:40]!r} is not <type>=<value>")
        kind, value = line[0], line[2:]
        where = f"line {number}: {kind}="
        if number == 1:
            if kind != "v" or value != "0":
                raise SDPError(f"line 1: a session description starts with v=0, not {line[:20]!r}")
            continue
        stream = streams[-1] if streams else None
        if kind == "o":
            origin = _origin(value, where)
        elif kind == "s":
            named = True
        elif kind == "t":
            if stream is not None:
                raise SDPError(f"{where} after the first m= line")
            times.append(_time(value, where))
        elif kind == "c":
            if stream is None:
                address = _connection(value, where)
            else:
                stream.address = _connection(value, where)
        elif kind == "m":
            missing = [k for k, v in (("o", origin), ("s", named), ("t", times)) if not v]
            if missing:
                raise SDPError(f"{where} before the session's {'= and '.join(missing)}= line")
            streams.append(_media(value, where))
        elif kind == "a":
            name, _, attribute = value.partition(":")
            if name in MIRROR:
                if stream is None:
                    direction = name
                else:
                    stream.direction = name
            elif name == "rtpmap" and stream is not None:
                fmt, codec = _rtpmap(attribute, where)
                stream.rtpmap.setdefault(fmt, codec)
    if origin is None:
        raise SDPError("no o= line")
    if not named:
        raise SDPError("no s= line")
    if not times:
        raise SDPError("no t= line")
    media = []
    for index, stream in enumerate(streams, 1):
        where_to = stream.address or address
        if where_to is None:
            raise SDPError(f"m= line {index} has no c= line, nor has the session")
        media.append(
            Media(
                stream.kind,
                stream.port,
                stream.proto,
                stream.formats,
                stream.rtpmap,
                stream.direction or direction or "sendrecv",
                where_to,
            )
        )
    return SessionDescription(origin[0], origin[1], tuple(times), tuple(media))


@dataclass
class _Stream:
    """An m= line while its attributes are read."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmap: dict[str, tuple[str, int]] = field(default_factory=dict)
    direction: str | None = None
    address: str | None = None


def _number(text: str, where: str, what: str, limit: int) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > limit:
        raise SDPError(f"{where} {what} {text[:20]!r} is not a number up to {limit}")
    return int(text)


def _origin(value: str, where: str) -> tuple[str, int]:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>"""
    fields = value.split(" ")
    if len(fields) != 6 or not all(fields):
        raise SDPError(f"{where} needs 6 fields separated by single spaces, has {value[:60]!r}")
    return fields[1], _number(fields[2], where, "the version", 2**64 - 1)


def _time(value: str, where: str) -> str:
    """t=<start-time> <stop-time>"""
    fields = value.split(" ")
    if len(fields) != 2:
        raise SDPError(f"{where} needs a start and a stop time, has {value[:40]!r}")
    for field_ in fields:
        _number(field_, where, "the time", 2**64 - 1)
    return value


def _connection(value: str, where: str) -> str:
    """c=<nettype> <addrtype> <connection-address>; the address without its /ttl."""
    fields = value.split(" ")
    if len(fields) != 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6") or not fields[2]:
        raise SDPError(f"{where} is not 'IN IP4|IP6 <address>': {value[:60]!r}")
    return fields[2].split("/", 1)[0]


def _media(value: str, where: str) -> _Stream:
    """m=<media> <port>[/<number of ports>] <proto> <fmt> ..."""
    fields = value.split(" ")
    if len(fields) < 4 or not all(fields):
        raise SDPError(
            f"{where} needs a media, a port, a protocol and at least one format, "
            f"separated by single spaces: {value[:60]!r}"
        )
    port = _number(fields[1].split("/", 1)[0], where, "the port", 65535)
    return _Stream(fields[0], port, fields[2], tuple(fields[3:]))


def _rtpmap(value: str, where: str) -> tuple[str, tuple[str, int]]:
    """a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]"""
    fmt, _, codec = value.partition(" ")
    name, _, rest = codec.partition("/")
    rate = rest.split("/", 1)[0]
    if not fmt or not name or not rate:
        raise SDPError(f"{where}rtpmap is not '<type> <name>/<rate>': {value[:60]!r}")
    return fmt, (name.lower(), _number(rate, where + "rtpmap", "the clock rate", 2**32 - 1))
