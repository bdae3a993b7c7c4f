"""Preview dialing: the operator sees the lead before anyone is dialed (docs/pacing.md,
"Preview"; PRODUCT.md lists it beside progressive and predictive).

A campaign whose pacing mode is `preview` is not paced: the engine claims one due lead per
free operator of the campaign, takes a free operator for it in the state `previewing`
(engine/presence.py, the same script that takes an operator for an answered customer) and
sends their console a `preview` event; the console shows the lead's card with Call and
Skip. Only then:

- Call (or the campaign's countdown ran out, `preview_countdown` seconds after the card
  was shown; 0: no countdown): the operator becomes `transferring` and the customer is
  dialed; when they answer, they are transferred to that operator and to nobody else. A
  customer is never abandoned: their operator waits for them.
- Skip, with one of `SKIP_REASONS`: the operator is free again, and the lead goes back
  (`PutBack`): no call was made, so its attempt is deleted and its attempt count given
  back; it is due again after the campaign's retry time for no answer, like a customer who
  did not pick up, and keeps the reason and time of the skip.
- The operator goes off line (or the engine stops) before choosing: the lead goes back due
  at once, with nothing recorded: it was nobody's choice.

The console writes the choice in Redis (`Presence.choose`, kept only while the operator still
previews that lead) and wakes the engine, which reads the choices each tick
(`choices_of`). This module holds what the engine keeps of each preview and the pure
decisions; engine/dialer.py drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.outcomes import Outcome
from engine.store import CampaignSettings, Claimed, PutBack

#: Why an operator may skip a lead, in the console's list (webapp/console words them).
SKIP_REASONS = ("not_now", "wrong_data", "other")

CALL = "call"
SKIP = "skip"


@dataclass(frozen=True)
class Preview:
    """A lead shown to an operator, not dialed yet; `dial_at` (monotonic seconds): when
    the countdown dials it by itself (None: only on Call)."""

    lead: Claimed
    campaign: CampaignSettings
    operator: int
    dial_at: float | None


def dial_at(campaign: CampaignSettings, shown_at: float) -> float | None:
    """When the campaign's countdown dials a lead shown at `shown_at` (None: never)."""
    return shown_at + campaign.preview_countdown if campaign.preview_countdown > 0 else None


def choice_text(choice: str, reason: str = "") -> str:
    """What the console writes for the engine: "call" or "skip|reason"."""
    if choice == CALL:
        return CALL
    if choice == SKIP and reason in SKIP_REASONS:
        return f"{SKIP}|{reason}"
    raise ValueError(f"not a preview choice: {choice!r} {reason!r}")


def choices_of(raw: dict) -> dict[int, tuple[int, str, str]]:
    """HGETALL of the choices hash -> {operator: (lead, "call" or "skip", reason)}; what
    does not parse is left out."""
    out: dict[int, tuple[int, str, str]] = {}
    for operator, value in raw.items():
        text = value.decode() if isinstance(value, bytes) else value
        lead, _, rest = text.partition("|")
        choice, _, reason = rest.partition("|")
        if lead.isdigit() and (choice == CALL or (choice == SKIP and reason in SKIP_REASONS)):
            out[int(operator)] = (int(lead), choice, reason)
    return out


def skipped(preview: Preview, reason: str, now: datetime | None = None) -> PutBack:
    """A skipped lead goes back after its campaign's retry time for no answer."""
    now = now or datetime.now(UTC)
    minutes = preview.campaign.retry_minutes.get(Outcome.NO_ANSWER, 0)
    return PutBack(
        preview.lead.attempt_id,
        preview.lead.lead_id,
        now + timedelta(minutes=minutes),
        reason,
    )


def released(preview: Preview) -> PutBack:
    """A lead whose operator went off line (or whose engine stopped) before choosing: due
    again at once, nothing recorded."""
    return PutBack(preview.lead.attempt_id, preview.lead.lead_id)
