"""The SIP message layer: `parse(bytes) -> Request | Response`, typed header values, errors.

The Cython parser (`_parser`) is used when it is built; the pure-Python twin (`parser`)
only when the extension is absent or the environment sets AUTOCALL_NO_EXTENSIONS=1
(engine/compiled.py). `parser_kind` says which one is loaded.
"""

from typing import TYPE_CHECKING

from engine.compiled import load
from engine.sip.message import (
    Challenge,
    CSeq,
    Event,
    NameAddr,
    ParseError,
    StatusLine,
    SubscriptionState,
    Via,
)

_parsing = load("engine.sip._parser", "engine.sip.parser")
parser_kind = "cython" if _parsing.__name__ == "engine.sip._parser" else "python"
if TYPE_CHECKING:  # the twin is the typed reference: the compiled parser has the same API
    from engine.sip.parser import Request, Response, parse
else:
    Request, Response, parse = _parsing.Request, _parsing.Response, _parsing.parse

__all__ = [
    "CSeq",
    "Challenge",
    "Event",
    "NameAddr",
    "ParseError",
    "Request",
    "Response",
    "StatusLine",
    "SubscriptionState",
    "Via",
    "parse",
    "parser_kind",
]
