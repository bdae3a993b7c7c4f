"""The pure-Python twin of `_untracked`: the tuple is handed back as it is, and the garbage
collector untracks it on its first look at it instead (engine/sip/transaction.py)."""

from __future__ import annotations

from typing import Any, TypeVar

Values = TypeVar("Values", bound=tuple[Any, ...])


def untracked(values: Values) -> Values:
    return values
