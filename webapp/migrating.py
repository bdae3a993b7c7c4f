"""For data migrations over big tables: do the work in batches of the primary key and say how
far it got, so that `autocall db-upgrade` on months of attempts shows it is moving.

A migration script uses it with its own connection (migrations never import the models):

    from alembic import op
    from webapp.migrating import in_batches

    def upgrade():
        in_batches(op.get_bind(), "attempts", lambda low, high: op.execute(
            f"UPDATE attempts SET detail = 'ring_timeout' "
            f"WHERE id >= {low} AND id < {high} AND detail IS NULL AND outcome = 'no_answer'"))

The batches follow the key (`id >= low AND id < high`), so each is an index range however
big the table, and none holds locks on the whole table for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import text

log = logging.getLogger("autocall.migrations")


def in_batches(
    connection,
    table: str,
    work: Callable[[int, int], None],
    *,
    key: str = "id",
    size: int = 50_000,
    say: Callable[[str], None] | None = None,
    every: float = 5.0,
) -> int:
    """Call `work(low, high)` for consecutive key ranges [low, high) of `size` keys, from the
    table's smallest key to its largest; report progress (share of the key range done,
    elapsed time, an estimate of the time left) after the first batch, then at most every
    `every` seconds, and at the end. Returns how many batches ran."""
    say = say or log.info
    lowest, highest = connection.execute(text(f"SELECT min({key}), max({key}) FROM {table}")).one()
    if lowest is None:
        say(f"{table}: empty, nothing to do")
        return 0
    started = told = time.monotonic()
    batches, low, span = 0, lowest, highest - lowest + 1
    while low <= highest:
        high = min(low + size, highest + 1)
        work(low, high)
        batches += 1
        now = time.monotonic()
        if batches == 1 or now - told >= every or high > highest:
            told = now
            done = (high - lowest) / span
            elapsed = now - started
            left = elapsed / done - elapsed if done < 1 else 0.0
            say(
                f"{table}: {key} {high - 1} of {highest} ({done:.0%}), {elapsed:.1f} s, "
                f"about {left:.0f} s left"
            )
        low = high
    return batches
