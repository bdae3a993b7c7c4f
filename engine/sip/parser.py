"""SIP message parser in pure Python: the reference twin of the Cython `_parser`.

Same API, same checks, same errors; `engine.sip` loads this one only when the extension is
absent or AUTOCALL_NO_EXTENSIONS=1. Framing follows RFC 3261 section 7: leading empty lines
are ignored (7.5), folded lines join their header (7.3.1), and on a datagram the
Content-Length wins over trailing octets (18.3).
"""

from __future__ import annotations

import re
from typing import Any

from engine.sip.message import (
    LIST_HEADERS,
    VALIDATED_HEADERS,
    CSeq,
    HeaderAccess,
    ParseError,
    canonical_name,
    header_key,
    is_token,
    split_list,
    unfold,
)

#: The largest message we accept: a UDP datagram is at most 64 KiB.
MAX_MESSAGE_SIZE = 65536

#: Control characters may stand in a line only as a quoted-pair (backslash first); CR never.
_CONTROL = re.compile(rb"\r|(?<!\\)[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


class _Message(HeaderAccess):
    __slots__ = ("_headers", "body")
    _headers: list[tuple[str, str, str]]  # (name as received, key, value)
    body: bytes

    def get(self, name: str) -> str | None:
        """The first value of header `name` (any case, compact form or not), or None."""
        key = header_key(name)
        for _, k, value in self._headers:
            if k == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name`, comma-separated lists split where the grammar allows."""
        key = header_key(name)
        values = [value for _, k, value in self._headers if k == key]
        if key in LIST_HEADERS:
            return [item for value in values for item in split_list(value) if item]
        return values

    def lines(self, name: str) -> list[str]:
        """Every value of header `name` as it came, one per header line (lists not split):
        what a response copies (Via, section 8.2.6.2)."""
        key = header_key(name)
        return [value for _, k, value in self._headers if k == key]

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every header as (name as received, value unfolded), in order."""
        return [(name, value) for name, _, value in self._headers]


class Request(_Message):
    __slots__ = ("method", "uri")
    method: str
    uri: str

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"


class Response(_Message):
    __slots__ = ("reason", "status")
    reason: str
    status: int

    @property
    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8")


def _start_line(line: bytes) -> Request | Response:
    if line[:4].upper() == b"SIP/":
        parts = line.split(b" ", 2)
        if parts[0].upper() != b"SIP/2.0":
            raise ParseError(f"unsupported SIP version {_text(parts[0])!r}", 1)
        code = parts[1] if len(parts) > 1 else b""
        if not (len(code) == 3 and code.isdigit() and 0x31 <= code[0] <= 0x36):
            raise ParseError(
                f"the status code must be three digits from 100 to 699, not {_text(code)!r}", 1
            )
        response = Response.__new__(Response)
        response.status = int(code)
        response.reason = _text(parts[2]) if len(parts) > 2 else ""
        return response
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise ParseError(
            "the request line must be METHOD, URI and SIP/2.0 separated by single spaces", 1
        )
    method, uri, version = (_text(p) for p in parts)
    if not is_token(method):
        raise ParseError(f"the method {method!r} is not a token", 1)
    if parts[2].upper() != b"SIP/2.0":
        raise ParseError(f"unsupported SIP version {version!r}", 1)
    if uri[0] == "<":
        raise ParseError("the Request-URI must not be enclosed in <>", 1)
    if "\t" in uri:
        raise ParseError("the Request-URI contains spaces", 1)
    if not _SCHEME.match(uri):
        raise ParseError(f"the Request-URI {uri!r} is not a URI (no scheme such as sip:)", 1)
    if uri.split(":", 1)[0].lower() in ("sip", "sips") and "?" in uri.rsplit("@", 1)[-1]:
        raise ParseError("a SIP Request-URI must not carry headers ('?')", 1)
    msg = Request.__new__(Request)
    msg.method = method
    msg.uri = uri
    return msg


def parse(data: bytes) -> Request | Response:
    """Parse one SIP message (a UDP datagram). Raises ParseError saying what is wrong."""
    if isinstance(data, str):
        raise TypeError("parse() takes bytes, not str")
    data = bytes(data)
    size = len(data)
    if size > MAX_MESSAGE_SIZE:
        raise ParseError(f"the message is {size} bytes, more than the 65536 a datagram can carry")
    pos = 0
    while pos < size and data[pos] in b"\r\n":
        pos += 1
    if pos == size:
        raise ParseError("the message is empty")

    msg: Request | Response | None = None
    fields: list[list[Any]] = []  # [name, key, value start, value end, line number, folded]
    line_no = 0
    while True:
        lf = data.find(b"\n", pos)
        line_no += 1
        if lf < 0:
            raise ParseError("the header section does not end with an empty line", line_no)
        end = lf - 1 if lf > pos and data[lf - 1] == 0x0D else lf
        line = data[pos:end]
        if not line:
            body_start = lf + 1
            break
        bad = _CONTROL.search(line)
        if bad:
            raise ParseError(f"control character 0x{bad.group()[0]:02x} in the line", line_no)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("the line is not valid UTF-8", line_no) from None
        if msg is None:
            msg = _start_line(line)
        elif line[0] in b" \t":
            if not fields:
                raise ParseError("a continuation line before the first header", line_no)
            fields[-1][3] = end
            fields[-1][5] = True
        else:
            colon = line.find(b":")
            if colon < 0:
                raise ParseError("a header line without ':'", line_no)
            name = _text(line[:colon].rstrip(b" \t"))
            if not is_token(name):
                raise ParseError(f"the header name {name!r} is not a token", line_no)
            fields.append([name, header_key(name), pos + colon + 1, end, line_no, False])
        pos = lf + 1

    headers = []
    content_length = None
    for name, key, start, end, number, folded in fields:
        raw = data[start:end]
        value = _text(unfold(raw) if folded else raw.strip(b" \t"))
        check = VALIDATED_HEADERS.get(key)
        if check is not None:
            try:
                checked = check(value)
                if (
                    key == "cseq"
                    and isinstance(msg, Request)
                    and isinstance(checked, CSeq)
                    and checked.method != msg.method
                ):
                    raise ValueError(
                        f"the method {checked.method!r} does not match the request's {msg.method!r}"
                    )
            except ValueError as e:
                raise ParseError(f"{canonical_name(key)}: {e}", number) from None
            if key == "content-length" and content_length is None:
                content_length = (value, number)
        headers.append((name, key, value))

    available = size - body_start
    if content_length is None:
        body = data[body_start:]
    else:
        text, number = content_length
        if int(text) > available:
            raise ParseError(
                f"Content-Length says {text} bytes but {available} follow the headers", number
            )
        body = data[body_start : body_start + int(text)]
    assert msg is not None  # the first line that is not empty made it
    msg._headers = headers
    msg.body = body
    return msg


#: How a header line names the body's length: in full or compact (section 7.3.3).
_LENGTH_NAMES = (b"content-length", b"l")


def frame(data: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """Find the next message in a stream's buffer from `start` (RFC 3261 section 18.3).

    Returns (begin, end): `begin` is past the CR and LF before the message (keep-alives,
    RFC 5626 section 3.5.1), `end` one past its last byte, or -1 while the buffer does not
    hold all of it yet. On a stream the Content-Length is the only framing, so a message
    without one, a Content-Length that is not a number, and a message larger than
    `MAX_MESSAGE_SIZE` raise ParseError: the stream cannot be read on from there.
    """
    size = len(data)
    begin = start
    while begin < size and data[begin] in b"\r\n":
        begin += 1
    lf = begin
    while True:
        lf = data.find(b"\n", lf, begin + MAX_MESSAGE_SIZE)
        if lf < 0:
            if size - begin >= MAX_MESSAGE_SIZE:
                raise ParseError(f"the header section does not end within {MAX_MESSAGE_SIZE} bytes")
            return begin, -1
        if lf + 1 < size and data[lf + 1] == 0x0A:
            body_start = lf + 2
            break
        if lf + 2 < size and data[lf + 1] == 0x0D and data[lf + 2] == 0x0A:
            body_start = lf + 3
            break
        if lf + 2 >= size:  # the empty line may still be coming
            return begin, -1
        lf += 1
    length = None
    for line in bytes(data[begin:body_start]).split(b"\n")[1:]:
        colon = line.find(b":")
        if colon < 0 or line[:1] in b" \t":
            continue
        if line[:colon].rstrip(b" \t").lower() in _LENGTH_NAMES:
            value = line[colon + 1 :].strip(b" \t\r")
            if not (value.isdigit() and value.isascii()):
                raise ParseError(f"the Content-Length {value.decode('latin-1')!r} is not a number")
            length = int(value) if len(value) < 10 else MAX_MESSAGE_SIZE + 1
            break
    if length is None:
        raise ParseError("a message on a stream must have a Content-Length (section 18.3)")
    if body_start + length - begin > MAX_MESSAGE_SIZE:
        raise ParseError(
            f"the message is {body_start + length - begin} bytes, more than "
            f"the {MAX_MESSAGE_SIZE} we accept"
        )
    end = body_start + length
    return begin, (end if end <= size else -1)
