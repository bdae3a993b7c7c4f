"""What an operator's result does, and how it goes back to the CRM (docs/portal.md, "Results
and what they do").

When the operator presses Finish (webapp/services/console.py: `finish`), `record` writes on
the attempt just transferred to them the result, the comment, the time they asked the
customer to be called back, what the result did and when; then the result's action, as the
lead's campaign names it (`Campaign.result_actions`), acts on the lead:

- `do_not_call`: the number goes on the tenant's do-not-call list and the lead is
  `do_not_call` (closed): the engine never dials the number again, for this lead or any
  other (its claim checks the list, webapp/services/dialing.py);
- `close`: the lead is `reached`, with no next attempt, whatever call-back time was typed;
- `retry`: the lead is due again after the action's minutes (a call-back time the operator
  typed comes first), or `exhausted` when it has used its attempts, rather than waiting for
  ever for a dial that its campaign's maximum forbids;
- none: the lead stays as the call left it (or as the call-back time makes it).

In the same transaction, an `attempt.result` delivery for each active webhook endpoint (the
outbox of webapp/services/webhooks.py); `announce` then sends them and wakes the engine when
the do-not-call list grew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.jobs.queues import WEBHOOKS, queue
from webapp.models import Attempt, Campaign, Lead, LeadStatus, Operator
from webapp.models.webhook import ATTEMPT_RESULT
from webapp.services import webhooks
from webapp.services.leads import put_on_do_not_call

#: The minutes a retry may wait, as the retry times of outcomes (1 minute to a week).
RETRY_MINUTES = (1, 10080)


class Action(StrEnum):
    DO_NOT_CALL = "do_not_call"
    CLOSE = "close"
    RETRY = "retry"


@dataclass(frozen=True)
class ResultAction:
    action: Action
    #: For a retry: after how many minutes.
    minutes: int | None = None

    def as_json(self) -> dict:
        if self.action == Action.RETRY:
            return {"action": self.action.value, "minutes": self.minutes}
        return {"action": self.action.value}


def read_action(value: object) -> ResultAction | None:
    """A stored action ({"action": ..., "minutes": ...}); None for none or one not understood."""
    if not isinstance(value, dict):
        return None
    try:
        action = Action(str(value.get("action")))
    except ValueError:
        return None
    if action != Action.RETRY:
        return ResultAction(action)
    minutes = value.get("minutes")
    low, high = RETRY_MINUTES
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not low <= minutes <= high:
        return None
    return ResultAction(action, minutes)


def action_of(campaign: Campaign, result: str | None) -> ResultAction | None:
    """What `result` does in this campaign (None: nothing)."""
    if not result:
        return None
    return read_action((campaign.result_actions or {}).get(result))


def actions_for(results: list[str], actions: dict[str, ResultAction | None]) -> dict:
    """The column's value: the actions of the results listed (others are dropped)."""
    return {name: action.as_json() for name in results if (action := actions.get(name)) is not None}


@dataclass
class Recorded:
    """What `record` did, for `announce` after the commit."""

    tenant_id: int
    deliveries: list[int] = field(default_factory=list)
    do_not_call: bool = False


def record(
    operator: Operator,
    lead: Lead,
    attempt: Attempt | None,
    result: str | None,
    comment: str | None,
    call_back_at: datetime | None,
) -> Recorded:
    """Write the operator's result on `attempt` (theirs, the lead's latest; None when there
    is none to write on) and act on the lead; the caller commits, then calls `announce`."""
    recorded = Recorded(lead.tenant_id)
    campaign = db.session.get(Campaign, lead.campaign_id)
    action = action_of(campaign, result) if campaign is not None else None
    now = datetime.now(UTC)
    if attempt is not None:
        attempt.result = result or None
        attempt.comment = comment or None
        attempt.call_back_at = call_back_at.astimezone(UTC) if call_back_at else None
        attempt.result_action = action.action.value if action else None
        attempt.result_at = now
    if action is not None and action.action == Action.DO_NOT_CALL:
        note = f"{result} · lead {lead.id}"
        _, recorded.do_not_call = put_on_do_not_call(lead.tenant_id, lead.phone, note=note)
        lead.status, lead.next_attempt_at = LeadStatus.DO_NOT_CALL.value, None
        lead.callback_at = lead.callback_operator_id = None  # no callback to keep
    elif action is not None and action.action == Action.CLOSE:
        lead.status, lead.next_attempt_at = LeadStatus.REACHED.value, None
        lead.callback_at = lead.callback_operator_id = None
    elif action is not None and action.action == Action.RETRY and call_back_at is None:
        if campaign is not None and lead.attempts >= campaign.max_attempts:
            lead.status, lead.next_attempt_at = LeadStatus.EXHAUSTED.value, None
        else:
            lead.status = LeadStatus.RETRY.value
            lead.next_attempt_at = now + timedelta(minutes=action.minutes or 0)
            lead.last_operator_id = operator.id
    if attempt is not None:
        db.session.flush()
        recorded.deliveries = webhooks.record_finished(
            db.session.connection(), lead.tenant_id, [attempt.id], event=ATTEMPT_RESULT
        )
    return recorded


def announce(recorded: Recorded) -> None:
    """After the commit: the `attempt.result` deliveries to their job, and the engine woken
    when the do-not-call list grew (it also reads the list at every claim)."""
    if recorded.deliveries:
        webhooks.announce(queue(WEBHOOKS), recorded.tenant_id, recorded.deliveries)
    if recorded.do_not_call:
        wake_engine(recorded.tenant_id, "do_not_call")
