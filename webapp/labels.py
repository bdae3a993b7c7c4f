"""The words the pages show for what happened to a call: its outcome, the detail of it, the
transfer's result, why a transfer failed, the operator's result and what a result does. One
place for them, used by the leads, the console's card, the reports (pages and CSV) and the
SIP page's test call, and given to every template (`init_app`). Keys are engine/outcomes.py's
values; the words are translated (webapp/translations)."""

from __future__ import annotations

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine.outcomes import Detail, Outcome, TransferResult

OUTCOME_LABELS = {
    Outcome.ANSWERED.value: _l("answered"),
    Outcome.NO_ANSWER.value: _l("no answer"),
    Outcome.BUSY.value: _l("busy"),
    Outcome.UNAVAILABLE.value: _l("unavailable"),
    Outcome.TECHNICAL_ERROR.value: _l("technical error"),
}
DETAIL_LABELS = {
    Detail.RING_TIMEOUT.value: _l("rang out (we cancelled)"),
    Detail.NO_RESPONSE.value: _l("no response from the PBX"),
    Detail.AUTH_FAILED.value: _l("the PBX refused our credentials"),
    Detail.REFER_REFUSED.value: _l("the PBX refused the transfer (REFER)"),
    Detail.TRANSFER_FAILED.value: _l("the transfer failed"),
    Detail.TRANSFER_TIMEOUT.value: _l("no transfer result in time"),
    Detail.NO_FREE_OPERATOR.value: _l("no free operators"),
    Detail.SENT_TO_FALLBACK.value: _l("no free operators: sent to the fallback"),
    Detail.CUSTOMER_HUNG_UP.value: _l("the customer hung up during the transfer"),
    Detail.ENGINE_LOST.value: _l("the engine stopped during the call"),
    Detail.ENGINE_STOPPED.value: _l("dialing stopped: the call was ended"),
}
#: Why an operator skipped a previewed lead (engine/preview.py SKIP_REASONS).
SKIP_LABELS = {
    "not_now": _l("Not a good moment to call"),
    "wrong_data": _l("The lead's data is wrong"),
    "other": _l("Another reason"),
}
TRANSFER_LABELS = {
    TransferResult.SUCCEEDED.value: _l("succeeded"),
    TransferResult.FAILED.value: _l("failed"),
    TransferResult.UNCONFIRMED.value: _l("unconfirmed (the PBX took the call)"),
}
#: The default break reasons (webapp/services/breaks.py) in the viewer's language; the
#: company's own reasons are shown as the admin wrote them.
BREAK_LABELS = {
    "lunch": _l("Lunch"),
    "training": _l("Training"),
    "meeting": _l("Meeting"),
    "end_of_shift": _l("End of shift"),
}


def break_label(reason: str | None) -> str:
    if not reason:
        return ""
    label = BREAK_LABELS.get(reason)
    return str(label) if label is not None else reason


def transfer_reason(detail: str, code: int) -> str:
    """Why a transfer failed, in the words of the field problems (PRODUCT.md)."""
    if detail == Detail.REFER_REFUSED.value:
        if code in (405, 501):
            return _("The PBX does not support transfers (REFER)")
        return _("The PBX refused the transfer (REFER)")
    if detail == Detail.TRANSFER_TIMEOUT.value:
        return _("The PBX gave no transfer result in time")
    if code in (404, 408, 410, 480, 503, 604):
        return _("The operator's phone cannot be reached")
    if code in (486, 600):
        return _("The operator's phone is busy")
    if code == 603:
        return _("The operator's phone declined the call")
    return _("The transfer failed")


#: The default results (webapp/models/campaign.py: DEFAULT_RESULTS) are stored in English, as
#: every campaign starts with them; they are shown in the viewer's language. A tenant's own
#: results are shown as the tenant wrote them.
DEFAULT_RESULT_LABELS = {
    "Sale": _l("Sale"),
    "Not interested": _l("Not interested"),
    "Call back": _l("Call back"),
    "Wrong number": _l("Wrong number"),
}
#: What a result does (webapp/services/results.py: Action); "" is no action.
RESULT_ACTION_LABELS = {
    "": _l("nothing more"),
    "do_not_call": _l("do not call: the number goes on the do-not-call list"),
    "close": _l("close the lead: no more calls"),
    "retry": _l("retry after the minutes given"),
}


def result_label(result: str | None) -> str:
    """An operator's result as the viewer reads it: a default result in their language."""
    if not result:
        return ""
    label = DEFAULT_RESULT_LABELS.get(result)
    return str(label) if label is not None else result


def init_app(app: Flask) -> None:
    @app.context_processor
    def call_labels() -> dict:
        return {
            "OUTCOME_LABELS": OUTCOME_LABELS,
            "DETAIL_LABELS": DETAIL_LABELS,
            "TRANSFER_LABELS": TRANSFER_LABELS,
            "break_label": break_label,
            "SKIP_LABELS": SKIP_LABELS,
            "RESULT_ACTION_LABELS": RESULT_ACTION_LABELS,
            "result_label": result_label,
        }
