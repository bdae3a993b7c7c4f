"""The SIP message layer: `parse(bytes) -> Request | Response`, typed header values, errors.

The Cython parser (`_parser`) is used when it is built; the pure-Python twin (`parser`)
only when the extension is absent or the environment sets AUTOCALL_NO_EXTENSIONS=1.
`parser_kind` says which one is loaded.
"""

import os

from engine.sip.message import (
    Address,
    Challenge,
    CSeq,
    Event,
    ParseError,
    StatusLine,
    SubscriptionState,
    Via,
)

if os.environ.get("AUTOCALL_NO_EXTENSIONS") == "1":
    from engine.sip.parser import Request, Response, parse

    parser_kind = "python"
else:
    try:
        from engine.sip._parser import Request, Response, parse

        parser_kind = "cython"
    except ImportError:
        from engine.sip.parser import Request, Response, parse

        parser_kind = "python"

__all__ = [
    "Address",
    "CSeq",
    "Challenge",
    "Event",
    "ParseError",
    "Request",
    "Response",
    "StatusLine",
    "SubscriptionState",
    "Via",
    "parse",
    "parser_kind",
]
