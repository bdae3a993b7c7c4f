"""Operators' presence in Redis: who is on line, who is free, who is busy with which lead.

The console (through webapp/services) and the engine change it; every change is one Lua
script, so that two engines, or an engine and a console, never both take the same free
operator. One value per operator on line, in the hash `t:{id}:presence`:

    state|since|lead_id|failed_transfers_in_row

States: `free`, `transferring` (taken at the customer's answer, REFER under way; an engine
frees those that no call of its own holds: engine/dialer.py), `busy` (the customer was
transferred; until the operator finishes the lead or the wrap-up timeout), `wrap_up` (the
console says the talk is over), `previewing` (preview dialing: the operator looks at the
lead's card and chooses Call or Skip before anyone is dialed; engine/preview.py). Off line =
not in the hash. The sorted set `t:{id}:free` holds free operators by the time they became
free (the longest-waiting is offered first); `t:{id}:seen` holds each console's last
heartbeat: an operator whose console went quiet for `heartbeat_ttl` seconds is taken off
line (a closed tab leaves no ghost).

The engine's scripts (take, transferred, transferred_late, release, sweep) are fenced: an
engine built with its fencing token (`epoch`) writes only while no newer engine of the tenant
has written `t:{id}:epoch`; an older one gets the error `FENCED` (`fenced(error)` tells it),
so an engine that lost its tenant without knowing it can no longer take or free operators.

Methods return what the Redis client returns, so the same class serves the portal's
synchronous client and the engine's asyncio one (whose calls are awaited).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis.exceptions import ResponseError

from engine.bus import TenantKeys, event

FREE, TRANSFERRING, BUSY, WRAP_UP, OFF_LINE = "free", "transferring", "busy", "wrap_up", "off_line"
#: Preview dialing: the operator looks at a lead's card before its call (engine/preview.py).
PREVIEWING = "previewing"

_LIB = """
local function parse(v)
  local state, since, lead, fails = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return state, since, lead, tonumber(fails)
end
local function put(op, state, now, lead, fails)
  redis.call('HSET', KEYS[1], op, state .. '|' .. now .. '|' .. lead .. '|' .. fails)
end
local function gone(op)
  redis.call('HDEL', KEYS[1], op); redis.call('ZREM', KEYS[2], op); redis.call('ZREM', KEYS[3], op)
end
"""

# Put before an engine's script: the last key is `t:{id}:epoch`, the last argument the engine's
# fencing token. A newer token there refuses the script before it writes anything; an older one
# (or none, after Redis restarted) is replaced by ours.
_FENCE = """
local mine = tonumber(ARGV[#ARGV])
local newest = tonumber(redis.call('GET', KEYS[#KEYS]) or '0')
if newest > mine then
  return redis.error_reply('FENCED engine ' .. mine .. ' is not the newest (' .. newest .. ')')
end
if newest < mine then redis.call('SET', KEYS[#KEYS], mine) end
"""

# KEYS: presence, free, seen, wake channel, off_line_why. ARGV: now, operator, wake payload.
# Going on line by one's own choice forgets why the engine took one off line.
_GO_ON_LINE = (
    _LIB
    + """
redis.call('HDEL', KEYS[5], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
local current = redis.call('HGET', KEYS[1], ARGV[2])
if current then return current end
put(ARGV[2], 'free', ARGV[1], '', 0)
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[4], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[2])
"""
)

_GO_OFF_LINE = (
    _LIB
    + """
local was = redis.call('HGET', KEYS[1], ARGV[2])
gone(ARGV[2])
if was then redis.call('PUBLISH', KEYS[4], ARGV[3]) end
return was
"""
)

# An operator off line for a reason: a break they chose, or a supervisor took them off line
# (a ghost whose browser is still open). Gone from presence, and the why kept so that their
# consoles' heartbeats do not bring them back; their consoles hear it on their stream.
# KEYS: presence, free, seen, wake, off_line_why, the operator's stream.
# ARGV: now, operator, why, the stream's event, wake payload.
_TAKE_OFF_LINE = (
    _LIB
    + """
local was = redis.call('HGET', KEYS[1], ARGV[2])
gone(ARGV[2])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', 100, '*', 'event', ARGV[4])
if was then redis.call('PUBLISH', KEYS[4], ARGV[5]) end
return was
"""
)

# The console's heartbeat: only for an operator on line.
_HEARTBEAT = """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2]); return 1
end
return 0
"""

# The operator finished the lead (or the wrap-up timeout did): free again.
_FINISH = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return false end
local state, since, lead, fails = parse(current)
if state == 'free' then return current end
put(ARGV[2], 'free', ARGV[1], '', fails)
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[4], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[2])
"""
)

# KEYS: presence, free, seen. ARGV: now, fresh_since, preferred operator or '', lead, the
# operators who may be taken with their ranks (',7:1,9:2,': those of the customer's campaign,
# the lower rank first) or '' (anyone), the state they are taken into (transferring, or
# previewing for a lead shown before its call). Takes the preferred operator when free, else the one
# of the lowest rank free the longest; consoles that went quiet are taken off line on the way.
_TAKE = (
    _LIB
    + """
local function fresh(op)
  local seen = redis.call('ZSCORE', KEYS[3], op)
  return seen and tonumber(seen) >= tonumber(ARGV[2])
end
local function take(op)
  local state, since, lead, fails = parse(redis.call('HGET', KEYS[1], op))
  redis.call('ZREM', KEYS[2], op)
  put(op, ARGV[6], ARGV[1], ARGV[4], fails)
  return op
end
local function rank(op)
  if ARGV[5] == '' then return 0 end
  local at = string.find(ARGV[5], ',' .. op .. ':', 1, true)
  if not at then return nil end
  return tonumber(string.match(ARGV[5], '^(%d+)', at + string.len(op) + 2))
end
if ARGV[3] ~= '' and rank(ARGV[3]) and redis.call('ZSCORE', KEYS[2], ARGV[3])
    and fresh(ARGV[3]) then
  return take(ARGV[3])
end
local best, best_rank = nil, nil
for _, op in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if not fresh(op) then gone(op)
  else
    local r = rank(op)
    if r and (not best_rank or r < best_rank) then best, best_rank = op, r end
  end
end
if best then return take(best) end
return false
"""
)

# The REFER to a taken operator ended. ARGV: now, operator, succeeded 1/0, failure limit,
# wrap-up timeout (of the customer's campaign, kept in KEYS[4] for the sweep).
# Returns the operator's new state: busy, free, or off_line (too many failures in a row).
_TRANSFERRED = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return 'off_line' end
local state, since, lead, fails = parse(current)
if ARGV[3] == '1' then
  put(ARGV[2], 'busy', ARGV[1], lead, 0)
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[2], ARGV[5])
  else redis.call('HDEL', KEYS[4], ARGV[2]) end
  return 'busy'
end
fails = fails + 1
local limit = tonumber(ARGV[4])
if limit > 0 and fails >= limit then gone(ARGV[2]); return 'off_line' end
put(ARGV[2], 'free', ARGV[1], '', fails)
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 'free'
"""
)

# A transfer written as failed (its wait ended) succeeded after all: the late final NOTIFY.
# ARGV: now, operator, lead, wrap-up timeout (as for _TRANSFERRED). The operator is talking
# to that customer: busy with the lead if they are free, as after a transfer that succeeded;
# one taken by another call meanwhile (or busy, or off line) is left as they are.
# Returns the operator's state after it.
_TRANSFERRED_LATE = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return 'off_line' end
local state, since, lead, fails = parse(current)
if state ~= 'free' then return state end
redis.call('ZREM', KEYS[2], ARGV[2])
put(ARGV[2], 'busy', ARGV[1], ARGV[3], 0)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
else redis.call('HDEL', KEYS[4], ARGV[2]) end
return 'busy'
"""
)

# A taken operator was not needed after all (the customer hung up before the REFER), or a
# previewing one skipped the lead.
_RELEASE = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return false end
local state, since, lead, fails = parse(current)
if state ~= 'transferring' and state ~= 'previewing' then return current end
put(ARGV[2], 'free', ARGV[1], '', fails)
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
)

# Preview dialing: the operator pressed Call (or the countdown ran out). ARGV: now, operator,
# lead. Previewing that lead -> transferring (the customer is dialed now, for them alone).
_DIAL = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return false end
local state, since, lead, fails = parse(current)
if state ~= 'previewing' or lead ~= ARGV[3] then return false end
put(ARGV[2], 'transferring', ARGV[1], lead, fails)
return 1
"""
)

# The console's choice on a previewed lead. KEYS: presence, free, seen, choices, wake channel.
# ARGV: now, operator, lead, choice ("call" or "skip|reason"), wake payload. Kept for the
# engine only while the operator previews that very lead.
_CHOOSE = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return 0 end
local state, since, lead, fails = parse(current)
if state ~= 'previewing' or lead ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[4], ARGV[2], lead .. '|' .. ARGV[4])
redis.call('PUBLISH', KEYS[5], ARGV[5])
return 1
"""
)

# The talk is over (the console says so): busy -> wrap_up, the lead kept, the clock restarted.
_WRAP_UP = (
    _LIB
    + """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return false end
local state, since, lead, fails = parse(current)
if state ~= 'busy' then return current end
put(ARGV[2], 'wrap_up', ARGV[1], lead, fails)
return redis.call('HGET', KEYS[1], ARGV[2])
"""
)

# Housekeeping, about once a second. ARGV: now, fresh_since, wrap-up timeout for operators
# whose customer's campaign left none in KEYS[4].
# Quiet consoles go off line; busy operators past their wrap-up timeout become free.
# Returns the operators it changed, as [id, new state, ...].
_SWEEP = (
    _LIB
    + """
local function busy_past(op, since)
  local limit = tonumber(redis.call('HGET', KEYS[4], op) or ARGV[3])
  return limit > 0 and tonumber(since) < tonumber(ARGV[1]) - limit
end
local changed = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local op = all[i]
  local state, since, lead, fails = parse(all[i + 1])
  local seen = redis.call('ZSCORE', KEYS[3], op)
  if tonumber(ARGV[2]) > 0 and (not seen or tonumber(seen) < tonumber(ARGV[2])) then
    gone(op); table.insert(changed, op); table.insert(changed, 'off_line')
  elseif (state == 'busy' or state == 'wrap_up') and busy_past(op, since) then
    put(op, 'free', ARGV[1], '', fails)
    redis.call('HDEL', KEYS[4], op)
    redis.call('ZADD', KEYS[2], ARGV[1], op)
    table.insert(changed, op); table.insert(changed, 'free')
  end
end
return changed
"""
)


#: The engine's scripts, fenced when the presence has an engine's token.
_ENGINE_SIDE = ("take", "transferred", "transferred_late", "release", "sweep", "dial", "fence")


def fenced(error: BaseException) -> bool:
    """Whether a Redis error is a fenced script's refusal: a newer engine runs the tenant."""
    return isinstance(error, ResponseError) and str(error).startswith("FENCED")


@dataclass(frozen=True)
class OperatorState:
    state: str
    since: float
    lead_id: int | None
    failed_transfers: int


def decode(value: bytes | str) -> OperatorState:
    text = value.decode() if isinstance(value, bytes) else value
    state, since, lead, fails = text.split("|")
    return OperatorState(state, float(since), int(lead) if lead else None, int(fails))


def decode_all(raw: dict) -> dict[int, OperatorState]:
    """HGETALL of the presence hash -> {operator id: state}."""
    return {int(op): decode(value) for op, value in raw.items()}


class Presence:
    """One tenant's operators on line. `client` is a redis.Redis or a redis.asyncio.Redis."""

    #: Seconds without a console heartbeat after which an operator is off line (0: never).
    DEFAULT_HEARTBEAT_TTL = 45.0

    def __init__(
        self,
        client,
        keys: TenantKeys,
        heartbeat_ttl: float = DEFAULT_HEARTBEAT_TTL,
        epoch: int | None = None,
    ):
        """`epoch`: the fencing token of the engine that uses this presence (None: the
        portal's, or a test's, whose scripts are not fenced)."""
        self.client = client
        self.keys = keys
        self.heartbeat_ttl = heartbeat_ttl
        self.epoch = epoch
        fence = _FENCE if epoch is not None else ""
        self._scripts = {
            name: client.register_script(fence + source if name in _ENGINE_SIDE else source)
            for name, source in (
                ("on", _GO_ON_LINE),
                ("off", _GO_OFF_LINE),
                ("take_off", _TAKE_OFF_LINE),
                ("beat", _HEARTBEAT),
                ("finish", _FINISH),
                ("take", _TAKE),
                ("transferred", _TRANSFERRED),
                ("transferred_late", _TRANSFERRED_LATE),
                ("release", _RELEASE),
                ("sweep", _SWEEP),
                ("wrap_up", _WRAP_UP),
                ("dial", _DIAL),
                ("choose", _CHOOSE),
                ("fence", "return 1"),
            )
        }

    def _run(self, name: str, *args, now: float | None = None, wake: bool = False):
        keys = [self.keys.presence, self.keys.free, self.keys.seen]
        if name == "choose":
            keys.append(self.keys.preview_choices)
        if wake:
            keys.append(self.keys.wake)
            args = (*args, event("presence"))
        if name == "on":
            keys.append(self.keys.off_line_why)
        elif name == "take_off":
            keys += [self.keys.off_line_why, self.keys.pops(int(args[0]))]
        elif name in ("transferred", "transferred_late", "sweep"):
            keys.append(self.keys.wrap_up_limits)
        now = time.time() if now is None else now
        if self.epoch is not None and name in _ENGINE_SIDE:
            keys.append(self.keys.epoch)
            args = (*args, self.epoch)
        return self._scripts[name](keys=keys, args=[repr(now), *args])

    def _fresh_since(self, now: float | None) -> str:
        if not self.heartbeat_ttl:
            return "0"
        return repr((time.time() if now is None else now) - self.heartbeat_ttl)

    # --- the console's side ----------------------------------------------------------------

    def go_on_line(self, operator_id: int, now: float | None = None):
        return self._run("on", operator_id, now=now, wake=True)

    def go_off_line(self, operator_id: int, now: float | None = None):
        return self._run("off", operator_id, now=now, wake=True)

    def heartbeat(self, operator_id: int, now: float | None = None):
        return self._run("beat", operator_id, now=now)

    def take_off_line(self, operator_id: int, why: str = "supervisor", now: float | None = None):
        """The operator goes off line for a break (`why`: `break`) or a supervisor takes them
        off line (`supervisor`): the engine gives them no more calls, and their console
        cannot put them back on line by itself (its heartbeats find `why` in
        `off_line_why`) until the operator goes on line again. Their console gets an
        `operator_off_line` event with the reason `why`. Returns their state before (None:
        they were off line)."""
        return self._run(
            "take_off",
            operator_id,
            why,
            event("operator_off_line", operator_id=operator_id, reason=why),
            now=now,
            wake=True,
        )

    def wrap_up(self, operator_id: int, now: float | None = None):
        """The talk is over; the operator writes the result (still not free)."""
        return self._run("wrap_up", operator_id, now=now)

    def finish(self, operator_id: int, now: float | None = None):
        """The operator finished their lead: free again."""
        return self._run("finish", operator_id, now=now, wake=True)

    def choose(self, operator_id: int, lead_id: int, choice: str, now: float | None = None):
        """Preview dialing: the operator chose "call" or "skip|reason" for the lead they
        preview (kept for the engine, which is woken); 0 when they preview no such lead."""
        return self._run("choose", operator_id, lead_id, choice, now=now, wake=True)

    # --- the engine's side -----------------------------------------------------------------

    def fence(self):
        """Write the engine's token as the newest (refused, `FENCED`, if a newer one is)."""
        return self._run("fence")

    def take(
        self,
        lead_id: int,
        preferred: int | None = None,
        now: float | None = None,
        among: Mapping[int, int] | None = None,
        state: str = TRANSFERRING,
    ):
        """Atomically take a free operator for a customer who answered, of those `among`
        (the operators of the customer's campaign, each with a rank: the lowest taken first,
        the one free the longest among equals; None: anyone, the one free the longest);
        returns the operator's id (bytes) or None. `state`: PREVIEWING takes them to look at
        the lead before its call (preview dialing)."""
        preferred_arg = "" if preferred is None else str(preferred)
        among_arg = "" if among is None else "," + "".join(f"{o}:{r}," for o, r in among.items())
        return self._run(
            "take", self._fresh_since(now), preferred_arg, lead_id, among_arg, state, now=now
        )

    def dial(self, operator_id: int, lead_id: int, now: float | None = None):
        """Preview dialing: the operator previewing this lead is `transferring` (its customer
        is dialed for them); None/false when they preview it no more (off line)."""
        return self._run("dial", operator_id, lead_id, now=now)

    def transferred(
        self,
        operator_id: int,
        succeeded: bool,
        failure_limit: int,
        wrap_up_timeout: float | None = None,
        now: float | None = None,
    ):
        """The transfer ended; on success the operator is busy with the customer until they
        finish, or until `wrap_up_timeout` seconds (their customer's campaign's; 0: only
        the console frees them; None: the sweep's)."""
        timeout = "" if wrap_up_timeout is None else repr(float(wrap_up_timeout))
        return self._run(
            "transferred", operator_id, int(succeeded), failure_limit, timeout, now=now
        )

    def transferred_late(
        self,
        operator_id: int,
        lead_id: int,
        wrap_up_timeout: float | None = None,
        now: float | None = None,
    ):
        """A transfer written as failed succeeded after all (its result came late): the
        operator, if free, is busy with the lead (as `transferred` on success), in one
        script; one taken since, or off line, is left alone. Returns their state."""
        timeout = "" if wrap_up_timeout is None else repr(float(wrap_up_timeout))
        return self._run("transferred_late", operator_id, lead_id, timeout, now=now)

    def release(self, operator_id: int, now: float | None = None):
        return self._run("release", operator_id, now=now)

    def sweep(self, wrap_up_timeout: float, now: float | None = None):
        """Quiet consoles go off line; busy operators past the wrap-up timeout their
        transfer set (else `wrap_up_timeout`; 0: never) are free again."""
        now = time.time() if now is None else now
        return self._run("sweep", self._fresh_since(now), repr(float(wrap_up_timeout)), now=now)

    # --- reading ---------------------------------------------------------------------------

    def free_count(self):
        return self.client.zcard(self.keys.free)

    def free_operators(self):
        """The free operators' ids (bytes), the one free the longest first."""
        return self.client.zrange(self.keys.free, 0, -1)

    def states(self):
        """HGETALL of the presence hash; decode it with `decode_all`."""
        return self.client.hgetall(self.keys.presence)
