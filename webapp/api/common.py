"""Reading requests and writing answers, the same way for every endpoint."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import request

from webapp.api.errors import ApiError, invalid, not_found
from webapp.extensions import db
from webapp.models.api import as_utc
from webapp.tenancy import scoped

#: Ids are 64-bit; a larger number in a path names nothing (and must not reach the database).
MAX_ID = 2**63 - 1

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Levels of arrays and objects a body may nest: a card in a bulk sits at the fourth, and
#: Python's parser would run out of stack at about a thousand (a 500, before this limit).
MAX_DEPTH = 32


def json_body() -> Any:
    """The request's JSON (any Content-Type), or 400: not JSON, or nested too deep."""
    try:
        body = request.get_json(force=True, silent=True)
        too_deep = _deeper_than(body, MAX_DEPTH)
    except RecursionError:
        body, too_deep = None, True
    if too_deep:
        raise ApiError(
            400,
            f"The JSON nests arrays and objects more than {MAX_DEPTH} levels deep; a lead's "
            "card may hold objects in objects, but not so many.",
        )
    if body is None:
        raise ApiError(400, 'The body must be JSON, e.g. {"phone": "+12125551234"}.')
    return body


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and dicts more than `limit` levels (without recursion)."""
    waiting = [(value, 1)]
    while waiting:
        item, level = waiting.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if level > limit:
            return True
        waiting.extend((child, level + 1) for child in item)
    return False


def json_object(value: Any, fields: Iterable[str], what: str) -> dict:
    """`value` as a JSON object with no other keys than `fields`, or 422."""
    if not isinstance(value, dict):
        raise invalid(None, f"{what} must be a JSON object.")
    for name, field_value in value.items():
        if name not in fields:
            raise invalid(name, f"Unknown field {name!r}; known: {', '.join(fields)}.")
        if isinstance(field_value, str):
            check_text(name, field_value)
    return value


def check_text(name: str, value: str) -> None:
    """Text the databases can store: no NUL character, nothing that is not UTF-8."""
    if "\x00" in value:
        raise invalid(name, f"{name} must not contain NUL characters.")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise invalid(name, f"{name} is not valid Unicode text.") from None


def check_query(allowed: Iterable[str]) -> None:
    """A misspelt filter must not silently list everything."""
    for name, value in request.args.items(multi=True):
        if name not in allowed:
            raise invalid(name, f"Unknown parameter {name!r}; known: {', '.join(allowed)}.")
        check_text(name, value)


def find(model, object_id: int, what: str):
    """The current tenant's row, or 404 worded the same whether it is missing or another
    tenant's."""
    row = None
    if 0 < object_id <= MAX_ID:
        row = db.session.scalar(scoped(model).where(model.id == object_id))
    if row is None:
        raise not_found(what, object_id)
    return row


def time_arg(name: str) -> datetime | None:
    """A query parameter holding a date-time (UTC when it names no offset), or 422."""
    text = request.args.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
        return (as_utc(value) or value).astimezone(UTC)
    except (ValueError, OverflowError):  # (year 1 at +14:00 is before datetime.min in UTC)
        raise invalid(
            name, f"{text!r} is not a date-time; write e.g. 2026-05-01T09:00:00Z."
        ) from None


def page_args() -> tuple[int, int | None]:
    """(limit, cursor): how many rows, and the id the previous page ended at."""
    limit = _number_arg("limit", f"The limit must be a whole number from 1 to {MAX_LIMIT}.")
    if limit is None:
        limit = DEFAULT_LIMIT
    elif not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"The limit must be a whole number from 1 to {MAX_LIMIT}.")
    cursor = _number_arg("cursor", "This cursor was not given by the API.")
    if cursor is not None and cursor < 1:
        raise invalid("cursor", "This cursor was not given by the API.")
    return limit, cursor


def _number_arg(name: str, message: str) -> int | None:
    text = request.args.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise invalid(name, message)
    return int(text)


def page(rows: list, limit: int) -> tuple[list, str | None]:
    """Rows fetched with limit + 1, cut to the page, and the cursor of the next page."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1].id) if more else None
