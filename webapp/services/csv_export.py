"""The CSV files the portal writes (the call log, the staff's billing export) go through
`writer()`: a spreadsheet never reads a cell of them as a formula (CSV injection: a lead
named `=HYPERLINK("https://evil.example", "Click")` would become a live link in the admin's
Excel, and `=cmd|...` worse).

The rule, for text cells (numbers are written as they are): a text that starts with `=`,
`+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, which spreadsheets
take as "this is text" and do not show. One exception keeps phone numbers readable: a `+`
followed only by digits, spaces, dots, dashes and parentheses (`+15550100`,
`+7 916 123-45-67`) stays as it is. Those characters cannot make a dangerous formula: with
no letters, quotes, `!` or `|` there is no function, no reference to a cell or another
file, no text; at most arithmetic on numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

#: What a spreadsheet takes as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"\+[0-9 ().-]*[0-9][0-9 ().-]*\Z")


def cell(value: Any) -> Any:
    """The value as it may go into a CSV cell: text that a spreadsheet would read as a
    formula gets a leading apostrophe; a phone number (`+` and digits) and non-text
    values are left alone."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _PHONE.match(value):
        return value
    return "'" + value


class Writer:
    """`csv.writer` whose every cell goes through `cell()`."""

    def __init__(self, out: IO[str], **options) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([cell(value) for value in row])


def writer(out: IO[str], **options) -> Writer:
    """Like `csv.writer(out, **options)`, with formulas neutralised."""
    return Writer(out, **options)
