"""SIP messages: the error type, header names, typed header values (RFC 3261 section 7, 20, 25).

Both parser implementations (the Cython `_parser` and the pure-Python `parser`) build their
`Request` and `Response` classes on `HeaderAccess` below and raise `ParseError`, so the rest of
the engine sees one API whichever is loaded. The value grammar here is the reference: the
pure-Python parser validates with these functions; the Cython parser has C versions of the same
checks and must agree with them (tests/engine/sip/test_parser_agreement.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple


class ParseError(ValueError):
    """A message that is not valid SIP. The text says what is wrong and on which line."""

    def __init__(self, reason: str, line: int | None = None):
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else f"line {line}: {reason}")

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, int | None]]:
        return (type(self), (self.reason, self.line))


# --- header names ---------------------------------------------------------------------------

#: Compact forms (RFC 3261 section 7.3.3 and the RFCs that added more), as lower-case keys.
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

#: How we write header names; also how ParseError names them.
CANONICAL_NAMES = {
    name: "-".join("ID" if part == "id" else part.capitalize() for part in name.split("-"))
    for name in (
        *COMPACT_FORMS.values(),
        "accept",
        "allow",
        "authorization",
        "cseq",
        "date",
        "expires",
        "max-forwards",
        "min-expires",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-require",
        "record-route",
        "reply-to",
        "require",
        "retry-after",
        "route",
        "server",
        "subscription-state",
        "unsupported",
        "user-agent",
        "warning",
        "www-authenticate",
    )
}
CANONICAL_NAMES["cseq"] = "CSeq"
CANONICAL_NAMES["www-authenticate"] = "WWW-Authenticate"

#: Headers whose grammar is a comma-separated list (`get_all` splits these).
LIST_HEADERS = frozenset(
    {
        "accept",
        "accept-contact",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "in-reply-to",
        "path",
        "proxy-require",
        "record-route",
        "reject-contact",
        "require",
        "route",
        "service-route",
        "supported",
        "unsupported",
        "via",
        "warning",
    }
)


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded."""
    key = name.lower()
    return COMPACT_FORMS.get(key, key)


def canonical_name(key: str) -> str:
    return CANONICAL_NAMES.get(key) or "-".join(p.capitalize() for p in key.split("-"))


# --- lexical helpers (RFC 3261 section 25.1) ------------------------------------------------

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
#: gen-value = token / host / quoted-string: a host adds ':' and '[' ']' (IPv6 references).
PARAM_VALUE_CHARS = TOKEN_CHARS | frozenset("[]:")
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
WSP = " \t"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_FOLD = re.compile(rb"[ \t]*\r?\n[ \t]+")


def unfold(raw: bytes) -> bytes:
    """A header value with its line folding replaced by single spaces (section 7.3.1)."""
    return _FOLD.sub(b" ", raw).strip(b" \t")


def is_token(text: str) -> bool:
    return bool(text) and all(c in TOKEN_CHARS for c in text)


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in WSP:
        i += 1
    return i


def _quoted_end(s: str, i: int) -> int:
    """Index just past the quoted string that opens at s[i] (a '"'); -1 when unterminated."""
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        else:
            i += 1
    return -1


def split_list(value: str) -> list[str]:
    """Split a header value at the commas that separate list elements (not in quotes or <>)."""
    items, start, i, n, angle = [], 0, 0, len(value), False
    while i < n:
        c = value[i]
        if c == '"':
            end = _quoted_end(value, i)
            if end < 0:
                break
            i = end
            continue
        if c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            items.append(value[start:i].strip(WSP))
            start = i + 1
        i += 1
    items.append(value[start:].strip(WSP))
    return items


def _check_uri(uri: str, in_angles: bool) -> None:
    if not uri:
        raise ValueError("the URI is empty")
    if any(c in WSP for c in uri):
        raise ValueError(
            "spaces are not allowed inside <>" if in_angles else "the URI contains spaces"
        )
    if not _SCHEME.match(uri):
        raise ValueError(f"{uri!r} is not a URI (no scheme such as sip:)")
    if not in_angles and ("?" in uri or "," in uri):
        raise ValueError("a URI with '?' or ',' must be enclosed in <> (RFC 3261 section 20)")


def parse_params(s: str, i: int) -> dict[str, str | None]:
    """`*( SEMI param )` from s[i:]; names lower-cased, values as written (quotes kept)."""
    params: dict[str, str | None] = {}
    n = len(s)
    while True:
        i = _skip_ws(s, i)
        if i >= n:
            return params
        if s[i] != ";":
            raise ValueError(f"unexpected {s[i]!r} where ';' or the end was expected")
        i = _skip_ws(s, i + 1)
        start = i
        while i < n and s[i] in TOKEN_CHARS:
            i += 1
        if i == start:
            raise ValueError("empty parameter after ';'")
        name = s[start:i].lower()
        i = _skip_ws(s, i)
        value = None
        if i < n and s[i] == "=":
            i = _skip_ws(s, i + 1)
            if i < n and s[i] == '"':
                end = _quoted_end(s, i)
                if end < 0:
                    raise ValueError(f"unterminated quoted string in parameter {name}")
                value, i = s[i:end], end
            else:
                start = i
                while i < n and s[i] in PARAM_VALUE_CHARS:
                    i += 1
                if i == start:
                    raise ValueError(f"parameter {name} has '=' but no value")
                value = s[start:i]
        params.setdefault(name, value)


def unquote(text: str) -> str:
    """The contents of a quoted-string, unescaped; other text unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


# --- typed values ---------------------------------------------------------------------------


class NameAddr(NamedTuple):
    """A name-addr or addr-spec with its header parameters: From, To, Contact, Refer-To, ..."""

    display_name: str | None
    uri: str
    params: dict[str, str | None]

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


def parse_name_addr(value: str) -> NameAddr:
    """RFC 3261 section 20.10 / 25.1: `( name-addr / addr-spec ) *( SEMI param )`."""
    s = value.strip(WSP)
    if not s:
        raise ValueError("the value is empty")
    display = None
    if s[0] == '"':
        end = _quoted_end(s, 0)
        if end < 0:
            raise ValueError("unterminated quoted string in the display name")
        display = unquote(s[:end])
        i = _skip_ws(s, end)
        if i >= len(s) or s[i] != "<":
            raise ValueError("a quoted display name must be followed by <URI>")
    else:
        i = s.find("<")
        if i < 0:
            end = s.find(";")
            end = len(s) if end < 0 else end
            uri = s[:end].rstrip(WSP)
            _check_uri(uri, in_angles=False)
            return NameAddr(None, uri, parse_params(s, end))
        words = [word for word in re.split("[ \t]+", s[:i]) if word]
        for word in words:
            if not is_token(word):
                raise ValueError(
                    f"the display name {s[:i].strip(WSP)!r} must be quoted: "
                    "it has characters that need quotes"
                )
        display = " ".join(words) or None
    close = s.find(">", i)
    if close < 0:
        raise ValueError("'<' without a closing '>'")
    uri = s[i + 1 : close]
    _check_uri(uri, in_angles=True)
    return NameAddr(display, uri, parse_params(s, close + 1))


class Via(NamedTuple):
    """One via-parm (RFC 3261 section 20.42); `rport` is RFC 3581's."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None


def _token_at(s: str, i: int, what: str) -> tuple[str, int]:
    start = i
    while i < len(s) and s[i] in TOKEN_CHARS:
        i += 1
    if i == start:
        raise ValueError(f"expected {what}")
    return s[start:i], i


def parse_via(value: str) -> Via:
    """`sent-protocol LWS sent-by *( SEMI via-params )`, with SWS allowed around '/' and ':'."""
    s = value.strip(WSP)
    protocol: list[str] = []
    i = 0
    for what in ("the protocol name (SIP)", "the protocol version (2.0)", "the transport"):
        if protocol:
            i = _skip_ws(s, i)
            if i >= len(s) or s[i] != "/":
                raise ValueError("expected '/' in SIP/2.0/transport")
            i = _skip_ws(s, i + 1)
        token, i = _token_at(s, i, what)
        protocol.append(token)
    after = i
    i = _skip_ws(s, i)
    if i == after or i >= len(s):
        raise ValueError("expected a host after the transport")
    if s[i] == "[":
        close = s.find("]", i)
        if close < 0:
            raise ValueError("'[' without ']' in the host")
        host, i = s[i : close + 1], close + 1
    else:
        start = i
        while i < len(s) and s[i] in HOST_CHARS:
            i += 1
        if i == start:
            raise ValueError("expected a host after the transport")
        host = s[start:i]
    port = None
    j = _skip_ws(s, i)
    if j < len(s) and s[j] == ":":
        i = _skip_ws(s, j + 1)
        start = i
        while i < len(s) and s[i].isdigit() and s[i].isascii():
            i += 1
        if i == start or i - start > 5 or int(s[start:i]) > 65535:
            raise ValueError("the port must be a number from 0 to 65535")
        port = int(s[start:i])
    return Via(protocol[2].upper(), host, port, parse_params(s, i))


class CSeq(NamedTuple):
    number: int
    method: str


_CSEQ = re.compile(r"([0-9]+)[ \t]+(\S+)")


def parse_cseq(value: str) -> CSeq:
    """`1*DIGIT LWS Method`; the number must be below 2**31 (section 8.1.1.5)."""
    m = _CSEQ.fullmatch(value.strip(WSP))
    if m is None or not is_token(m.group(2)) or not m.group(1).isascii():
        raise ValueError("must be a sequence number and a method, like '1 INVITE'")
    if len(m.group(1)) > 10 or int(m.group(1)) >= 2**31:
        raise ValueError("the sequence number must be below 2**31")
    return CSeq(int(m.group(1)), m.group(2))


def parse_number(value: str, limit: int, what: str) -> int:
    """A header that is `1*DIGIT` no larger than `limit`."""
    text = value.strip(WSP)
    if not text or not text.isdigit() or not text.isascii() or len(text) > 10 or int(text) > limit:
        raise ValueError(f"must be {what}")
    return int(text)


class Challenge(NamedTuple):
    """A WWW-Authenticate / Proxy-Authenticate challenge (RFC 3261 section 22, RFC 7616)."""

    scheme: str
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def algorithm(self) -> str:
        return self.params.get("algorithm", "MD5")


def parse_challenge(value: str) -> Challenge:
    s = value.strip(WSP)
    scheme, i = _token_at(s, 0, "an authentication scheme")
    params: dict[str, str] = {}
    n = len(s)
    while True:
        i = _skip_ws(s, i)
        if i >= n:
            break
        if params and s[i] == ",":
            i = _skip_ws(s, i + 1)
        name, i = _token_at(s, i, "a parameter name")
        i = _skip_ws(s, i)
        if i >= n or s[i] != "=":
            raise ValueError(f"parameter {name} has no '='")
        i = _skip_ws(s, i + 1)
        if i < n and s[i] == '"':
            end = _quoted_end(s, i)
            if end < 0:
                raise ValueError(f"unterminated quoted string in parameter {name}")
            params[name.lower()] = unquote(s[i:end])
            i = end
        else:
            token, i = _token_at(s, i, f"a value for {name}")
            params[name.lower()] = token
    return Challenge(scheme, params)


class Event(NamedTuple):
    """Event header (RFC 6665): the package, e.g. `refer`, and its parameters."""

    package: str
    params: dict[str, str | None]


def parse_event(value: str) -> Event:
    s = value.strip(WSP)
    package, i = _token_at(s, 0, "an event package")
    return Event(package.lower(), parse_params(s, i))


class SubscriptionState(NamedTuple):
    """Subscription-State (RFC 6665): active / pending / terminated, reason, expires."""

    state: str
    params: dict[str, str | None]

    @property
    def reason(self) -> str | None:
        return self.params.get("reason")

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        return int(value) if value and value.isdigit() else None


def parse_subscription_state(value: str) -> SubscriptionState:
    s = value.strip(WSP)
    state, i = _token_at(s, 0, "a subscription state")
    return SubscriptionState(state.lower(), parse_params(s, i))


class StatusLine(NamedTuple):
    """The status line of a message/sipfrag body (RFC 3420), as REFER's NOTIFY carries it."""

    status: int
    reason: str


_STATUS_LINE = re.compile(rb"SIP/2\.0 ([1-6][0-9]{2})(?: ([^\r\n]*))?\r?(?:\n|$)", re.IGNORECASE)


def parse_status_line(body: bytes) -> StatusLine | None:
    m = _STATUS_LINE.match(body)
    if m is None:
        return None
    return StatusLine(int(m.group(1)), (m.group(2) or b"").decode("utf-8", "replace").strip())


# --- validation of what the parsers check eagerly -------------------------------------------

_U32 = 2**32 - 1
_WARN_CODE = re.compile(r"[0-9]{3}(?:[ \t]|$)")


def _check_warning(value: str) -> None:
    for item in split_list(value):
        if not _WARN_CODE.match(item):
            raise ValueError("each warning must start with a three-digit code")


def _check_retry_after(value: str) -> None:
    digits = re.match(r"[ \t]*([0-9]*)", value)
    assert digits is not None  # the pattern matches any text
    parse_number(digits.group(1), _U32, "a number of seconds below 2**32")


def _check_date(value: str) -> None:
    if not _DATE.fullmatch(value.strip(WSP)):
        raise ValueError("must be an RFC 1123 date in GMT, like 'Sat, 13 Nov 2010 23:29:00 GMT'")


def _check_content_length(value: str) -> None:
    if not (value.isdigit() and value.isascii()):
        raise ValueError("must be a number of bytes")


def _check_contact(value: str) -> None:
    if value.strip(WSP) != "*":
        _check_list(value, parse_name_addr)


def _check_list(value: str, parse_one: Callable[[str], object]) -> None:
    for item in split_list(value):
        if not item:
            raise ValueError("empty element in the list")
        parse_one(item)


#: The headers both parsers validate while parsing, by key, with the check for one value.
VALIDATED_HEADERS: dict[str, Callable[[str], object]] = {
    "from": parse_name_addr,
    "to": parse_name_addr,
    "refer-to": parse_name_addr,
    "referred-by": parse_name_addr,
    "reply-to": parse_name_addr,
    "contact": _check_contact,
    "route": lambda v: _check_list(v, parse_name_addr),
    "record-route": lambda v: _check_list(v, parse_name_addr),
    "via": lambda v: _check_list(v, parse_via),
    "cseq": parse_cseq,
    "content-length": _check_content_length,
    "max-forwards": lambda v: parse_number(v, 255, "a number from 0 to 255"),
    "expires": lambda v: parse_number(v, _U32, "a number of seconds below 2**32"),
    "min-expires": lambda v: parse_number(v, _U32, "a number of seconds below 2**32"),
    "retry-after": _check_retry_after,
    "warning": _check_warning,
    "date": _check_date,
}


# --- what both Request and Response offer on top of get / get_all / body ----------------------


class HeaderAccess:
    """Typed accessors, built on `get`, `get_all` and `body` of the concrete message class.

    The hot ones (call_id, cseq, from_tag, to_tag, branch) are overridden by the Cython parser.
    """

    __slots__ = ()

    if TYPE_CHECKING:  # what the concrete classes provide
        body: bytes

        @property
        def start_line(self) -> str: ...
        @property
        def headers(self) -> list[tuple[str, str]]: ...
        def get(self, name: str) -> str | None: ...
        def get_all(self, name: str) -> list[str]: ...
        def lines(self, name: str) -> list[str]: ...

    @property
    def call_id(self) -> str | None:
        return self.get("call-id")

    @property
    def cseq(self) -> CSeq | None:
        value = self.get("cseq")
        return None if value is None else parse_cseq(value)

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.get_all("via")]

    @property
    def via(self) -> Via | None:
        values = self.get_all("via")
        return parse_via(values[0]) if values else None

    @property
    def branch(self) -> str | None:
        via = self.via
        return None if via is None else via.branch

    def _name_addr(self, key: str) -> NameAddr | None:
        value = self.get(key)
        return None if value is None else parse_name_addr(value)

    @property
    def from_(self) -> NameAddr | None:
        return self._name_addr("from")

    @property
    def to(self) -> NameAddr | None:
        return self._name_addr("to")

    @property
    def from_tag(self) -> str | None:
        address = self.from_
        return None if address is None else address.tag

    @property
    def to_tag(self) -> str | None:
        address = self.to
        return None if address is None else address.tag

    @property
    def contacts(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.get_all("contact") if v != "*"]

    @property
    def contact(self) -> NameAddr | None:
        contacts = self.contacts
        return contacts[0] if contacts else None

    @property
    def record_routes(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.get_all("record-route")]

    @property
    def refer_to(self) -> NameAddr | None:
        return self._name_addr("refer-to")

    @property
    def referred_by(self) -> NameAddr | None:
        return self._name_addr("referred-by")

    @property
    def content_length(self) -> int | None:
        value = self.get("content-length")
        return None if value is None else int(value)

    @property
    def content_type(self) -> str | None:
        value = self.get("content-type")
        return None if value is None else value.split(";", 1)[0].strip(WSP).lower()

    @property
    def expires(self) -> int | None:
        value = self.get("expires")
        return None if value is None else int(value)

    @property
    def www_authenticate(self) -> list[Challenge]:
        return [parse_challenge(v) for v in self.get_all("www-authenticate")]

    @property
    def proxy_authenticate(self) -> list[Challenge]:
        return [parse_challenge(v) for v in self.get_all("proxy-authenticate")]

    @property
    def event(self) -> Event | None:
        value = self.get("event")
        return None if value is None else parse_event(value)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        value = self.get("subscription-state")
        return None if value is None else parse_subscription_state(value)

    @property
    def sipfrag(self) -> StatusLine | None:
        """The status line of a message/sipfrag body (a NOTIFY for REFER), else None."""
        if self.content_type != "message/sipfrag":
            return None
        return parse_status_line(self.body)

    def response_head(self, start_line: str, to_tag: str | None = None) -> bytes:
        """The start line of a response to this request and the headers it copies (RFC 3261
        section 8.2.6): the Via lines as they came, From, To (with `to_tag` added when it has
        none), Call-ID and CSeq; bytes, each line ending in CRLF."""
        lines = [start_line]
        lines += [f"Via: {via}" for via in self.lines("via")]
        to = self.get("to") or ""
        if to_tag and self.to_tag is None:
            to = f"{to};tag={to_tag}"
        lines += [
            f"From: {self.get('from') or ''}",
            f"To: {to}",
            f"Call-ID: {self.call_id or ''}",
            f"CSeq: {self.get('cseq') or ''}",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def __bytes__(self) -> bytes:
        lines = [self.start_line]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body

    def _identity(self) -> tuple[str, list[tuple[str, str]], bytes]:
        return (
            self.start_line,
            [(header_key(name), value) for name, value in self.headers],
            self.body,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeaderAccess):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((self.start_line, self.body))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.start_line!r}>"


# --- building outgoing messages -------------------------------------------------------------


def format_request(
    method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b""
) -> bytes:
    """A request as bytes; Content-Length is added from the body."""
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def format_response(
    request: HeaderAccess,
    status: int,
    reason: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    to_tag: str | None = None,
) -> bytes:
    """A response to `request` (RFC 3261 section 8.2.6): its Via, From, Call-ID and CSeq
    copied, To copied with `to_tag` added when it has none."""
    head = request.response_head(f"SIP/2.0 {status} {reason}", to_tag)
    lines = [f"{name}: {value}\r\n" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return head + "".join(lines).encode() + body
