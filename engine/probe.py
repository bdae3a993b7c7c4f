"""One-off checks of a tenant's PBX for admins: "test connection" registers once, "test call"
places one attempt and transfers it. The portal's buttons run these as jobs on the worker;
`autocall test-call` runs them from a shell. Both get the same plain answers."""

from __future__ import annotations

from typing import Any

from engine.formats import (
    DEFAULT_DIAL_FORMAT,
    DEFAULT_REFER_FORMAT,
    render_dial_uri,
    render_refer_headers,
    render_refer_uri,
)
from engine.sip import nat
from engine.sip.ua import Account, Registration, UserAgent


async def test_connection(account: Account, **network: Any) -> Registration:
    """Register once with the account and say what happened.

    `network`: the user agent's own options, as the engine gives them (`UserAgent`:
    `local_host`, `ports`, `public`, `timers`, `target_allowed`): the socket takes a port of
    the deployment's range and says its public address (nat.py), so a PBX's firewall that
    lets the engines in lets the checks in too, and only the addresses the deployment may
    send to are sent to (TargetRefused when DNS gives no other)."""
    async with UserAgent(account, **network) as ua:
        return await ua.register()


async def test_call(
    account: Account,
    number: str,
    extension: str,
    *,
    dial_format: str = DEFAULT_DIAL_FORMAT,
    refer_format: str = DEFAULT_REFER_FORMAT,
    refer_headers: str = "",
    ring_timeout: float = 30.0,
    transfer_timeout: float = 30.0,
    register: bool = False,
    **network: Any,
) -> dict:
    """Place one attempt to `number` and transfer it to `extension`, as the engine would.

    Formats are checked before anything is sent: a FormatError says what is wrong. The
    result is the attempt (outcome, transfer, SIP codes, reasons, timestamps), with the
    registration when asked for, and the main delays in milliseconds. `network`: as for
    `test_connection`."""
    # Rendered once before the start to refuse a bad format without touching the network.
    render_dial_uri(dial_format, number=number, host=account.host, port=account.port)
    render_refer_uri(refer_format, extension=extension, host=account.host, port=account.port)
    async with UserAgent(account, **network) as ua:
        where: dict[str, Any] = {
            "host": account.host,
            "port": account.port,
            "server": nat.bracket(ua.contact_host),
        }
        dialed = render_dial_uri(dial_format, number=number, **where)
        refer_to = render_refer_uri(refer_format, extension=extension, **where)
        headers = render_refer_headers(refer_headers, extension=extension, **where)
        registration = await ua.register() if register else None
        if registration is not None and registration.state != "registered":
            return {
                "registration": vars(registration),
                "outcome": None,
                "detail": "not placed: the registration failed",
            }
        attempt = await ua.place_call(
            dialed,
            refer_to,
            ring_timeout=ring_timeout,
            transfer_timeout=transfer_timeout,
            refer_headers=headers,
        )
    result = attempt.as_dict()
    if registration is not None:
        result["registration"] = vars(registration)
    result["delays_ms"] = {
        "ringing": _ms(attempt.invite_at, attempt.ringing_at),
        "answer": _ms(attempt.invite_at, attempt.answer_at),
        "answer_to_refer": _ms(attempt.answer_at, attempt.refer_at),
        "transfer": _ms(attempt.refer_at, attempt.transfer_result_at),
        "total": _ms(attempt.invite_at, attempt.end_at),
    }
    return result


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 3)
