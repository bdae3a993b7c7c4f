"""The dial format and REFER format: the small template language a tenant admin writes.

A format is a SIP address with macros in braces, for example `+{number}@{host}:{port}`.
Only whitelisted macros exist; everything else is literal text. The `sip:` scheme is
added when the format does not start with `sip:` or `sips:` (users never have to type it).

The language is parsed here by hand, never with `str.format`: user text must not reach
Python's formatting machinery (attribute access, indexing, format specs).

Errors are `FormatError`s. Each carries a stable `code` and `params` so the portal can
show the message in the user's language, and an English `message` for logs and the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

#: Macros of the dial format (the Request-URI of the INVITE).
DIAL_MACROS: frozenset[str] = frozenset({"number", "host", "port", "server"})
#: Macros of the REFER format (the Refer-To URI and extra REFER headers).
REFER_MACROS: frozenset[str] = frozenset({"extension", "host", "port", "server"})

DEFAULT_DIAL_FORMAT = "+{number}@{host}:{port}"
DEFAULT_REFER_FORMAT = "{extension}@{host}:{port}"

#: The macro each format must use: a dial format without {number} calls one address for
#: every lead; a REFER format without {extension} sends every call to one phone.
REQUIRED_MACRO = {"dial": "number", "refer": "extension"}

#: Characters a SIP URI may hold besides letters and digits (RFC 3261 section 25.1:
#: unreserved, escaped, user-unreserved, param and header characters, IPv6 brackets).
#: '#' is not among them: a PBX prefix with '#' is written %23.
_URI_PUNCTUATION = set("-_.!~*'()%&=+$,;?/:@[]")
#: Text where every '%' starts an escape of two hex digits (RFC 3261 section 25.1 `escaped`).
_ESCAPES = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*")
_MACRO_NAME = re.compile(r"[a-z_]+\Z")
#: RFC 3261 section 25.1 `token`, the shape of a header name.
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
#: Headers the user agent writes itself; a tenant must not override them.
RESERVED_HEADERS = frozenset(
    {
        "via",
        "from",
        "to",
        "call-id",
        "cseq",
        "contact",
        "max-forwards",
        "content-length",
        "content-type",
        "refer-to",
        "authorization",
        "proxy-authorization",
        "route",
        "record-route",
    }
)


class FormatError(ValueError):
    """A format that cannot be used. `code` is stable; `message` is plain English."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "empty": "The format is empty.",
        "spaces": "The format contains a space; SIP addresses have no spaces.",
        "unclosed_brace": "A '{{' at position {position} is never closed with '}}'.",
        "stray_closing_brace": "A '}}' at position {position} has no matching '{{'.",
        "nested_brace": "A '{{' at position {position} is not closed before the next '{{'.",
        "empty_macro": "Empty braces '{{}}' at position {position}: write a macro name inside.",
        "unknown_macro": "Unknown macro {{{name}}}; use one of: {allowed}.",
        "missing_macro": "The format must contain {{{name}}}.",
        "bad_character": "The character {char!r} is not allowed in a SIP address.",
        "bad_escape": "A '%' must be followed by two hexadecimal digits, e.g. %23 for '#'.",
        "no_at_sign": "The address needs exactly one '@' between the user part and the host.",
        "empty_user": "The address has nothing before '@'.",
        "empty_host": "The address has nothing after '@'.",
        "bad_value": "The value of {{{name}}} ({value!r}) cannot go into a SIP address.",
        "bad_header_line": "Line {line}: write a header as 'Name: value'.",
        "bad_header_name": "Line {line}: {name!r} is not a valid header name.",
        "reserved_header": "Line {line}: the dialer sets the {name} header itself.",
    }

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return _fill(self.MESSAGES[self.code], self.params)


def _fill(text: str, params: Mapping[str, object]) -> str:
    """Our own message filler: `{name}`, `{name!r}`, `{{`/`}}`; no str.format."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("{{", i) or text.startswith("}}", i):
            out.append(text[i])
            i += 2
        elif text[i] == "{":
            end = text.index("}", i)
            name, _, conv = text[i + 1 : end].partition("!")
            value = params[name]
            out.append(repr(value) if conv == "r" else str(value))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Macro:
    name: str


@dataclass(frozen=True)
class Template:
    """A parsed format: literal strings and macros, in order."""

    source: str
    parts: tuple[str | Macro, ...]
    macros: frozenset[str] = field(default_factory=frozenset)

    def render(self, values: Mapping[str, object]) -> str:
        """The text with every macro replaced; a value that is missing is a KeyError."""
        out = []
        for part in self.parts:
            if isinstance(part, Macro):
                value = str(values[part.name])
                if not value or any(not _uri_char(c) for c in value):
                    raise FormatError("bad_value", name=part.name, value=value)
                out.append(value)
            else:
                out.append(part)
        return "".join(out)


def _uri_char(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in _URI_PUNCTUATION


def parse(source: str, allowed: Iterable[str], *, allow_spaces: bool = False) -> Template:
    """Split `source` into literals and macros, checking braces and macro names."""
    allowed = frozenset(allowed)
    parts: list[str | Macro] = []
    literal: list[str] = []
    i = 0
    while i < len(source):
        c = source[i]
        if c == "{":
            end = i + 1
            while end < len(source) and source[end] not in "{}":
                end += 1
            if end == len(source):
                raise FormatError("unclosed_brace", position=i + 1)
            if source[end] == "{":
                raise FormatError("nested_brace", position=i + 1)
            name = source[i + 1 : end]
            if not name:
                raise FormatError("empty_macro", position=i + 1)
            if name.strip() != name and not allow_spaces:
                raise FormatError("spaces")
            if not _MACRO_NAME.match(name) or name not in allowed:
                raise FormatError("unknown_macro", name=name, allowed=_macro_list(allowed))
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Macro(name))
            i = end + 1
        elif c == "}":
            raise FormatError("stray_closing_brace", position=i + 1)
        else:
            if c.isspace() and not allow_spaces:
                raise FormatError("spaces")
            literal.append(c)
            i += 1
    if literal:
        parts.append("".join(literal))
    macros = frozenset(p.name for p in parts if isinstance(p, Macro))
    return Template(source, tuple(parts), macros)


def _macro_list(allowed: Iterable[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(allowed))


def _strip_scheme(source: str) -> tuple[str, str]:
    lower = source.lower()
    for scheme in ("sips:", "sip:"):
        if lower.startswith(scheme):
            return source[: len(scheme)].lower(), source[len(scheme) :]
    return "sip:", source


def parse_uri_format(source: str, kind: str) -> tuple[str, Template]:
    """Check a dial (`kind="dial"`) or REFER (`kind="refer"`) format.

    Returns the scheme (`sip:` or `sips:`) and the parsed template of the rest.
    """
    allowed = DIAL_MACROS if kind == "dial" else REFER_MACROS
    if not source or not source.strip():
        raise FormatError("empty")
    scheme, rest = _strip_scheme(source)
    if not rest:
        raise FormatError("empty")
    template = parse(rest, allowed)
    for part in template.parts:
        if isinstance(part, str):
            for c in part:
                if not _uri_char(c):
                    raise FormatError("bad_character", char=c)
            if not _ESCAPES.fullmatch(part):
                raise FormatError("bad_escape")
    required = REQUIRED_MACRO[kind]
    if required not in template.macros:
        raise FormatError("missing_macro", name=required)
    # The '@' must be literal text: macro values never contain one by our own check below.
    literal = "".join(p if isinstance(p, str) else "x" for p in template.parts)
    if literal.count("@") != 1:
        raise FormatError("no_at_sign")
    user, host = literal.split("@")
    if not user:
        raise FormatError("empty_user")
    if not host or host[0] in ":;?":
        raise FormatError("empty_host")
    return scheme, template


def _render(source: str, kind: str, values: Mapping[str, object]) -> str:
    scheme, template = parse_uri_format(source, kind)
    for name in template.macros:
        if "@" in str(values[name]):
            raise FormatError("bad_value", name=name, value=str(values[name]))
    return scheme + template.render(values)


def render_dial_uri(
    source: str, *, number: str, host: str, port: int | str, server: str = ""
) -> str:
    """The Request-URI of the INVITE for `number` (E.164 digits; a leading '+' is dropped,
    because the default format writes it)."""
    values = {"number": number.lstrip("+"), "host": host, "port": port, "server": server}
    return _render(source, "dial", values)


def render_refer_uri(
    source: str, *, extension: str, host: str, port: int | str, server: str = ""
) -> str:
    """The URI of the Refer-To header (RFC 3515 section 2.1) for the operator's extension."""
    values = {"extension": extension, "host": host, "port": port, "server": server}
    return _render(source, "refer", values)


def parse_refer_headers(text: str) -> list[tuple[str, Template]]:
    """Extra REFER headers, one `Name: value` per line; values may use REFER macros."""
    headers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not value.strip():
            raise FormatError("bad_header_line", line=number)
        if not _TOKEN.match(name):
            raise FormatError("bad_header_name", line=number, name=name)
        if name.lower() in RESERVED_HEADERS:
            raise FormatError("reserved_header", line=number, name=name)
        headers.append((name, parse(value.strip(), REFER_MACROS, allow_spaces=True)))
    return headers


def render_refer_headers(
    text: str, *, extension: str, host: str, port: int | str, server: str = ""
) -> list[tuple[str, str]]:
    values = {"extension": extension, "host": host, "port": port, "server": server}
    return [(name, template.render(values)) for name, template in parse_refer_headers(text)]


_BRACKETED, _PLAIN = r"\[([0-9A-Fa-f:.]+)\]", r"([^:\[\]]+)"
_HOST_PORT = re.compile(rf"{_BRACKETED}|{_PLAIN}|(?:{_BRACKETED}|{_PLAIN}):(\d+)")


def parse_host_port(text: str, default_port: int = 5060) -> tuple[str, int]:
    """HOST, HOST:PORT or [IPv6]:PORT (a PBX, an outbound proxy) -> (host, port); ValueError
    with a message for the person who wrote it."""
    match = _HOST_PORT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not HOST, HOST:PORT or [IPv6]:PORT")
    host = next(group for group in match.groups()[:4] if group)
    port = int(match.group(5) or default_port)
    if not 0 < port < 65536:
        raise ValueError(f"the port in {text!r} must be from 1 to 65535")
    return host, port
