"""A SIP account's "Test connection" and "Test call": jobs on the `default` queue that run
`engine.probe` with one of the tenant's saved accounts, and their results in plain words.

A job takes ids and plain values, reads the account inside `job_context()`, decrypts the
saved SIP password there (it never travels through Redis), and returns a small dict that
`describe()` words for the page in the reader's language. A test call rings as long as the
default campaign does when it dials through the account, else 30 s.

SIP's timers are RFC 3261's (a PBX that never answers is given up after 32 s); the Flask
setting `SIP_CHECK_T1` (seconds) shortens them, for tests.

In production (unless AUTOCALL_SIP_ALLOW_PRIVATE) a check sends nothing to a private,
loopback or link-local address, as the SIP page saves none (webapp/addresses.py): the user
agent checks every address DNS gives it for the PBX (SRV targets too: docs/sip.md) and sends
only to the very addresses it checked, so a DNS answer that changes in between cannot slip
one in.
"""

from __future__ import annotations

import asyncio

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engine import probe
from engine.formats import FormatError
from engine.sip.transaction import DEFAULT_TIMERS, Timers
from engine.sip.ua import TargetRefused
from webapp.addresses import is_public
from webapp.extensions import db
from webapp.jobs.queues import job_context
from webapp.labels import OUTCOME_LABELS
from webapp.models import Campaign, SipAccount
from webapp.services.secrets import SecretError
from webapp.services.sip_accounts import engine_account
from webapp.settings.forms import private_address_message

KIND = "sip_check"
#: A test call's ring timeout when the default campaign does not dial through the account.
RING_TIMEOUT_SECONDS = 30


def timers() -> Timers:
    t1 = current_app.config.get("SIP_CHECK_T1")
    return DEFAULT_TIMERS if t1 is None else Timers(t1=t1, t2=8 * t1, t4=10 * t1)


def ring_timeout(sip_account: SipAccount) -> int:
    """Seconds a test call through the account rings: the default campaign's ring timeout
    when it dials through this account, else RING_TIMEOUT_SECONDS."""
    seconds = db.session.scalar(
        select(Campaign.ring_timeout_seconds).where(
            Campaign.tenant_id == sip_account.tenant_id,
            Campaign.is_default,
            Campaign.sip_account_id == sip_account.id,
        )
    )
    return RING_TIMEOUT_SECONDS if seconds is None else seconds


def job_timeout(sip_account: SipAccount, call: bool) -> int:
    """Seconds a check may run: the registration's own timeout, and a call's ring time."""
    seconds = 2 * timers().b + 30
    if call:
        seconds += ring_timeout(sip_account) + sip_account.transfer_wait_seconds + 30
    return int(seconds)


def _run(kind: str, tenant_id: int, account_id: int, probing) -> dict:
    with job_context() as app:
        saved = db.session.scalar(
            select(SipAccount).where(SipAccount.tenant_id == tenant_id, SipAccount.id == account_id)
        )
        if saved is None:  # deleted since the check was asked for
            return {"kind": kind, "error": "no_account"}
        try:
            sip_account = engine_account(saved, app.extensions["autocall.secrets"])
            config = app.extensions["autocall.config"]
            # The engines' own network settings: a check goes out as a call would.
            options = {
                "timers": timers(),
                "local_host": config.engine_bind.strip(),
                "ports": config.sip_port_range,
                "public": config.sip_public_addresses,
                "target_allowed": None if config.sip_private_allowed else is_public,
            }
            return {"kind": kind, **asyncio.run(probing(saved, sip_account, options))}
        except TargetRefused as error:
            return {"kind": kind, "error": "private", "host": error.host, "address": error.address}
        except SecretError:
            return {"kind": kind, "error": "password_key"}
        except FormatError as error:
            return {"kind": kind, "error": "format", "text": error.message}
        except OSError as error:  # a host name that does not resolve, a network down
            return {"kind": kind, "error": "unreachable", "text": str(error)}


def check_connection(tenant_id: int, account_id: int) -> dict:
    """The job of "Test connection": register once with the saved account."""

    async def probing(saved, sip_account, options):
        registration = await probe.test_connection(sip_account, **options)
        return {"registration": vars(registration)}

    return _run("connection", tenant_id, account_id, probing)


def check_call(tenant_id: int, account_id: int, number: str, extension: str) -> dict:
    """The job of "Test call": one attempt to `number` (E.164) through the saved account
    and its formats, transferred to `extension`, as the engine would place it."""

    async def probing(saved, sip_account, options):
        ring = ring_timeout(saved)
        return await probe.test_call(
            sip_account,
            number,
            extension,
            dial_format=saved.dial_format,
            refer_format=saved.refer_format,
            refer_headers=saved.refer_headers,
            ring_timeout=ring,
            transfer_timeout=saved.transfer_wait_seconds,  # the account's, as the engine's
            register=saved.has_password,
            **options,
        )

    return _run("call", tenant_id, account_id, probing)


# --- in plain words --------------------------------------------------------------------------


def _registration_words(registration: dict) -> tuple[bool, str]:
    code, reason = registration.get("code"), registration.get("reason") or ""
    if code is None:
        detail = registration.get("detail") or ""
        if detail and not detail.startswith("the PBX did not answer"):  # e.g. TLS said why
            return False, _("Cannot reach the PBX: %(detail)s", detail=detail)
        return False, _(
            "The PBX did not answer: check the host and the port, and that the PBX (or its "
            "firewall) lets this server in."
        )
    if 200 <= code < 300:
        return True, _(
            "Registered: the PBX accepted the account (for %(seconds)s seconds).",
            seconds=registration.get("expires") or "?",
        )
    if code in (401, 407):
        return False, _(
            "Wrong username or password: the PBX refused the credentials (%(code)s %(reason)s).",
            code=code,
            reason=reason,
        )
    if code == 403:
        return False, _("The PBX refused this account (403 %(reason)s).", reason=reason)
    return False, _("The PBX answered %(code)s %(reason)s.", code=code, reason=reason)


def _error_words(result: dict) -> str:
    if result["error"] == "private":
        return private_address_message(result["host"], result["address"])
    if result["error"] == "password_key":
        return _("The saved SIP password cannot be read with this server's key: enter it again.")
    if result["error"] == "no_account":
        return _("The SIP account was deleted.")
    if result["error"] == "format":
        return _("A format is wrong: %(error)s", error=result["text"])
    return _("Cannot reach the PBX: %(error)s", error=result["text"])


def describe(result: dict) -> tuple[bool, list[str]]:
    """(success, lines): what a finished check found, for the admin."""
    if "error" in result:
        return False, [_error_words(result)]
    if result["kind"] == "connection":
        ok, words = _registration_words(result["registration"])
        return ok, [words]
    lines = []
    registration = result.get("registration")
    if registration is not None:
        ok, words = _registration_words(registration)
        lines.append(words)
        if not ok:
            return False, [*lines, _("The call was not placed.")]
    outcome = result.get("outcome")
    code = result.get("sip_code")
    sip = f" (SIP {code} {result.get('sip_reason') or ''})".rstrip() if code else ""
    lines.append(_("Outcome: %(outcome)s", outcome=OUTCOME_LABELS.get(outcome, outcome)) + sip)
    detail = DETAILS.get(result.get("detail") or "")
    if detail is not None:
        lines.append(str(detail))
    transfer = result.get("transfer_result")
    if transfer is not None:
        code = result.get("transfer_sip_code")
        sip = f" (SIP {code} {result.get('transfer_sip_reason') or ''})".rstrip() if code else ""
        lines.append(_("Transfer: %(result)s", result=TRANSFERS.get(transfer, transfer)) + sip)
    lines.append(_("Dialed %(uri)s", uri=result.get("dialed_uri") or ""))
    if result.get("refer_to"):
        lines.append(_("Transferred to %(uri)s", uri=result["refer_to"]))
    return outcome == "answered" and transfer == "succeeded", lines


DETAILS = {
    "ring_timeout": _l("Nobody answered within the ring timeout."),
    "no_response": _l("The PBX did not answer the call."),
    "auth_failed": _l("The PBX refused the credentials for the call."),
    "refer_refused": _l("The PBX refused the transfer (REFER): it may not support it."),
    "transfer_failed": _l("The transfer failed: the operator's phone was not reached."),
    "transfer_timeout": _l("The PBX did not report the transfer's result in time."),
    "customer_hung_up": _l("The customer hung up before the transfer."),
}
TRANSFERS = {
    "succeeded": _l("transferred"),
    "failed": _l("failed"),
    "unconfirmed": _l("transferred, not confirmed"),
}
