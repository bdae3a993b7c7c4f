"""The contract between the portal and the engine in Redis: key names and event payloads.

Every key of a tenant starts with `{prefix}t:{tenant_id}:` (the prefix is the deployment's,
AUTOCALL_REDIS_PREFIX, `ac:` by default). Payloads are small JSON objects with a `type` and
a version `v`; `event()` builds them and `parse_event()` refuses anything else, on both sides.

| key | kind | written by | read by |
| --- | --- | --- | --- |
| `t:{id}:lease` | string, PX | the engine host holding the tenant | engine hosts |
| `t:{id}:epoch` | string: the newest engine's fencing token | engines | engines |
| `t:{id}:presence` | hash operator id -> state | console, engine | engine, live wall |
| `t:{id}:free` | sorted set operator id -> free since | console, engine | engine |
| `t:{id}:seen` | sorted set operator id -> last heartbeat | console | engine |
| `t:{id}:wake` | pub/sub channel | portal, API, imports | the tenant's engine |
| `t:{id}:events` | pub/sub channel | engine | live wall |
| `t:{id}:op:{op}:pops` | stream of screen pops (capped) | engine | that operator's console |
| `t:{id}:state` | hash: the engine's live state and diagnostics | engine | portal, ops |
| `t:{id}:off_line_why` | hash operator id -> why taken off line | engine, portal | portal |
"""

from __future__ import annotations

import json
from dataclasses import dataclass

VERSION = 1

#: What wakes a tenant's engine (portal -> engine).
WAKE_TYPES = ("presence", "new_lead", "settings", "do_not_call", "operators", "campaigns")
#: What the engine tells the portal (engine -> portal).
EVENT_TYPES = (
    "screen_pop",
    "transferred",
    "transfer_failed",
    "operator_off_line",
    "state",
    # preview dialing (engine/preview.py): a lead's card before its call, then what became of it
    "preview",
    "preview_dialing",
    "preview_skipped",
)


@dataclass(frozen=True)
class TenantKeys:
    prefix: str
    tenant_id: int

    def _key(self, name: str) -> str:
        return f"{self.prefix}t:{self.tenant_id}:{name}"

    @property
    def lease(self) -> str:
        return self._key("lease")

    @property
    def epoch(self) -> str:
        """The fencing token of the newest engine that wrote here (engine/presence.py)."""
        return self._key("epoch")

    @property
    def presence(self) -> str:
        return self._key("presence")

    @property
    def free(self) -> str:
        return self._key("free")

    @property
    def seen(self) -> str:
        return self._key("seen")

    @property
    def wake(self) -> str:
        return self._key("wake")

    @property
    def wrap_up_limits(self) -> str:
        """Each busy operator's wrap-up timeout, from their customer's campaign."""
        return self._key("wrap_up_limits")

    @property
    def events(self) -> str:
        return self._key("events")

    @property
    def state(self) -> str:
        return self._key("state")

    @property
    def off_line_why(self) -> str:
        return self._key("off_line_why")

    @property
    def preview_choices(self) -> str:
        """Preview dialing: what each previewing operator chose ("{lead}|call",
        "{lead}|skip|{reason}"), until their engine acts on it."""
        return self._key("preview_choices")

    def pops(self, operator_id: int) -> str:
        return self._key(f"op:{operator_id}:pops")


#: Seconds after its last heartbeat (an engine host beats every second) that a host is gone.
HOST_GONE_AFTER = 5.0


def hosts_key(prefix: str) -> str:
    """Sorted set: engine host id -> last heartbeat (seconds); for ops and `ensure_hosts`."""
    return f"{prefix}hosts"


def event(kind: str, **fields) -> str:
    if kind not in WAKE_TYPES + EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    return json.dumps({"type": kind, "v": VERSION, **fields}, separators=(",", ":"))


class BadEvent(ValueError):
    """A payload that is not one of ours (not JSON, no known type, another version)."""


def parse_event(raw: bytes | str) -> dict:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadEvent(f"not JSON: {error}") from None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise BadEvent(f"not a version {VERSION} event: {raw!r:.80}")
    if payload.get("type") not in WAKE_TYPES + EVENT_TYPES:
        raise BadEvent(f"unknown event type {payload.get('type')!r}")
    return payload
