"""The results report's figures (docs/reports.md, "Results"): the operators' results by
local day, by operator or by campaign, each result's count and its share of the answered
calls (those transferred to an operator, the summary's "transferred").

Read from the raw attempts, not the hourly roll-ups: a result is written when the operator
presses Finish, which may be long after the call's hour was rolled up (a wrap-up has no
upper bound when the campaign's wrap-up time is 0), so a roll-up would miss results or
need rolling again at every Finish. The attempts' `(tenant_id, invite_at)` index reads the
period; the sums are grouped in SQL (by UTC hour for days, as the trend, so a zone half an
hour off UTC has its day edges half an hour off there too). No Flask here, like figures.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from webapp.extensions import db
from webapp.models import Attempt
from webapp.services.figures import TRANSFERRED, _sum, hour_of, no_jit, ratio, utc

#: How the rows are grouped: local day, operator, campaign.
GROUPINGS = ("day", "operator", "campaign")


@dataclass
class ResultRow:
    """One day, operator or campaign: answered calls, each result's count, and the answered
    calls with no result (Finish not pressed, or pressed without a result)."""

    key: date | int | None
    answered: int = 0
    results: dict[str, int] = field(default_factory=dict)
    no_result: int = 0

    def share(self, count: int) -> float | None:
        return ratio(count, self.answered)


def results_by(
    tenant_id: int,
    start: datetime,
    end: datetime,
    by: str,
    zone: ZoneInfo,
    campaign_id: int | None = None,
) -> list[ResultRow]:
    """The rows of attempts started in [start, end) (finished ones), grouped `by` one of
    GROUPINGS, ordered by their key (days oldest first; operators and campaigns by id)."""
    a = Attempt
    if by == "day":
        key = hour_of(a.invite_at)
    elif by == "operator":
        key = a.operator_id
    elif by == "campaign":
        key = a.campaign_id
    else:
        raise ValueError(f"not a grouping: {by!r}")
    transferred = a.transfer_result.in_(TRANSFERRED)
    query = (
        select(key.label("key"), a.result, _sum(transferred).label("answered"), func.count())
        .where(
            a.tenant_id == tenant_id,
            a.invite_at >= start,
            a.invite_at < end,
            a.outcome.is_not(None),
            or_(transferred, a.result.is_not(None)),
        )
        .group_by(key, a.result)
    )
    if campaign_id is not None:
        query = query.where(a.campaign_id == campaign_id)
    no_jit()
    rows: dict[object, ResultRow] = {}
    for raw_key, result, answered, count in db.session.execute(query):
        group = utc(raw_key).astimezone(zone).date() if by == "day" else raw_key
        row = rows.setdefault(group, ResultRow(group))
        row.answered += int(answered)
        if result is None:
            row.no_result += int(answered)
        else:
            row.results[result] = row.results.get(result, 0) + int(count)
    return sorted(rows.values(), key=lambda row: (row.key is None, row.key or 0))


def total(rows: list[ResultRow]) -> ResultRow:
    """Every row together."""
    whole = ResultRow(None)
    for row in rows:
        whole.answered += row.answered
        whole.no_result += row.no_result
        for result, count in row.results.items():
            whole.results[result] = whole.results.get(result, 0) + count
    return whole


def result_order(rows: list[ResultRow], listed: list[str]) -> list[str]:
    """The results found, in the order of `listed` (a campaign's results), then the others
    (results since removed from the list) by name."""
    found = {result for row in rows for result in row.results}
    return [r for r in listed if r in found] + sorted(found - set(listed))
