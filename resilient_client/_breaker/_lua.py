"""The breaker state machine of ``_circuit.py``, ported to one Redis Lua script.

One call of the script is one round trip and does everything a breaker needs from the
shared state: it moves open → half_open when due, finishes a half-open probe, applies the
closed-state outcomes this process recorded since its last call, and admits (or rejects)
the next call. Time is Redis's own ``TIME`` (milliseconds), so every process of a fleet
reads one clock; nothing of a process's monotonic clock crosses the wire, only durations.

Keys (all under one hash tag, so the script also runs on Redis Cluster), each refreshed to
the storage's ``key_ttl`` whenever it is written:

=================  ==========================================================================
``<base>:h``       hash: ``st`` (0 closed, 1 open, 2 half_open), ``gen``, ``ou`` (open until,
                   ms), ``fc`` (failure streak), ``hs`` (probe successes), ``n``/``nf``/``ns``
                   (calls, failures, slow calls in the window), ``hd`` (newest time bucket),
                   ``c<i>``/``f<i>``/``s<i>`` (time bucket ``i``'s counts), ``ws`` (the
                   window, mode and size, those counts belong to), ``od`` (the nominal
                   open period, ms), ``tc``/``tf``/``ts``/``tn`` (what last opened it:
                   ``Trip``'s cause, failures, slow calls, calls)
``<base>:w``       list: the count window's outcome bits, newest first
``<base>:p``       sorted set: half-open probe tokens scored by lease end (ms)
``<base>:i``       string: the operator's reason while the endpoint is isolated (a kill
                   switch, ``client.isolate()``); written by ``RedisBreakerStorage.isolate``,
                   only read here, and never given a TTL: it holds until restored
=================  ==========================================================================

A successful call in the closed ``consecutive`` mode with no failure streak writes nothing.
An isolated endpoint is admitted nothing (and takes no probe slot): the reply is followed
by a newline and the isolation's reason.
"""

from __future__ import annotations

from string import Template
from typing import Final, NamedTuple

from ._circuit import JITTER, RATE_SCALE, TIME_BUCKETS

__all__ = ["MODES", "REPLY_FIELDS", "SCRIPT", "Reply"]

# Window name -> the script's mode number.
MODES: Final = {"consecutive": 0, "count": 1, "time": 2}


class Reply(NamedTuple):
    """The script's reply, one string of integers (times in milliseconds from Redis's
    "now"); the field names are the script's own variable names."""

    st: int
    gen: int
    admitted: int  # 0 none, 1 call, 2 probe
    wait: int
    open_left: int
    fc: int
    hs: int
    n: int
    nf: int
    ns: int
    probes: int
    tc: int
    tf: int
    ts: int
    tn: int


# The script returns these variables in this order (injected below, so the Lua reply and
# the Python decoding cannot drift apart).
REPLY_FIELDS: Final = Reply._fields

# The script's arguments: KEYS = hash, window list, probe set, isolation; ARGV = the policy
# as a JSON array [mode, threshold, size, minimum, failure rate, slow rate (both in
# millionths, ``rate_units``), reset ms, probes, successes, ttl ms, reset max ms (0 =
# fixed), reset multiplier], the admission token, the probe token ('' = absent), and a JSON
# array [probe generation, probe bits (-1 = ignored), the probe's random number, then
# generation, bits of each pending closed-state outcome]. ``$``-names are filled in from
# ``_circuit`` so both ports share their constants.
_TEMPLATE: Final = r"""
local H, W, P, I = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- Few arguments, decoded by cjson (C), and one reply string: redis-py's cost per element
-- and Lua's string matching are both dearer than that.
local policy = cjson.decode(ARGV[1])
local mode, threshold, size, min_calls = policy[1], policy[2], policy[3], policy[4]
local fail_units, slow_units, reset_ms = policy[5], policy[6], policy[7]
local max_probes, success_threshold, ttl_ms = policy[8], policy[9], policy[10]
local max_ms, multiplier = policy[11], policy[12]
local admit_token = ARGV[2]               -- '' = no admission asked for
local finish_token = ARGV[3]              -- '' = no probe to finish
local outcomes = cjson.decode(ARGV[4])    -- probe generation, probe bits (-1 = ignored),
                                          -- probe random number, then closed-state
                                          -- outcomes: generation, bits, ...
local finish_gen, finish_bits, rand = outcomes[1], outcomes[2], outcomes[3]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local v = redis.call('HMGET', H, 'st', 'gen', 'ou', 'fc', 'hs', 'n', 'nf', 'ns', 'hd', 'ws',
                     'od', 'tc', 'tf', 'ts', 'tn')
local st = tonumber(v[1]) or 0
local gen = tonumber(v[2]) or 0
local ou = tonumber(v[3]) or 0
local fc = tonumber(v[4]) or 0
local hs = tonumber(v[5]) or 0
local n = tonumber(v[6]) or 0
local nf = tonumber(v[7]) or 0
local ns = tonumber(v[8]) or 0
local hd = tonumber(v[9]) or -1
local od = tonumber(v[11]) or reset_ms
local tc = tonumber(v[12]) or 0
local tf = tonumber(v[13]) or 0
local ts = tonumber(v[14]) or 0
local tn = tonumber(v[15]) or 0
local ws = mode .. ':' .. size
local dirty = false
local BUCKETS = $buckets
local RATE_SCALE = $rate_scale
local JITTER = $jitter

local function clear_buckets()
  local f = {}
  for i = 0, BUCKETS - 1 do
    f[#f + 1] = 'c' .. i; f[#f + 1] = 'f' .. i; f[#f + 1] = 's' .. i
  end
  redis.call('HDEL', H, unpack(f))
end

-- A new window (_new_window): no streak, no calls, no time buckets.
local function reset_window()
  fc, n, nf, ns = 0, 0, 0, 0
  if mode == 1 then redis.call('DEL', W) end
  if hd >= 0 then clear_buckets() end
  hd = -1
end

local function reset_counts()
  reset_window()
  hs = 0
  redis.call('DEL', P)
end

local function move(new_st)
  st = new_st
  dirty = true
end

-- Circuit._open: from half_open the period grows (grown_period), from closed it restarts
local function trip(cause, f, s, c)
  local period = reset_ms
  if st == 2 and max_ms > 0 then
    od = math.min(max_ms, math.max(reset_ms, od * multiplier))
    period = math.max(reset_ms, math.floor(od * (1 - JITTER * rand) + 0.5))
  else
    od = reset_ms
  end
  gen = gen + 1
  ou = now + period
  tc, tf, ts, tn = cause, f, s, c
  reset_counts()
  move(1)
end

local function advance(number)
  if number <= hd then return end
  if hd < 0 or number - hd >= BUCKETS then
    if hd >= 0 then clear_buckets() end
    n, nf, ns = 0, 0, 0
  else
    for k = hd + 1, number do
      local i = k % BUCKETS
      local b = redis.call('HMGET', H, 'c' .. i, 'f' .. i, 's' .. i)
      n = n - (tonumber(b[1]) or 0)
      nf = nf - (tonumber(b[2]) or 0)
      ns = ns - (tonumber(b[3]) or 0)
      redis.call('HDEL', H, 'c' .. i, 'f' .. i, 's' .. i)
    end
  end
  hd = number
end

local function add(bits)
  local failed = bits % 2
  local slow = math.floor(bits / 2) % 2
  if mode == 0 then
    -- A success with no streak to break changes nothing: no write.
    if bits ~= 0 then
      fc = fc + 1
      dirty = true
    elseif fc ~= 0 then
      fc = 0
      dirty = true
    end
    return
  end
  dirty = true
  if mode == 1 then
    local len = redis.call('LPUSH', W, bits)
    if len == 1 then n, nf, ns = 0, 0, 0 end  -- the list was lost: so are its totals
    n, nf, ns = n + 1, nf + failed, ns + slow
    while len > size do
      local old = tonumber(redis.call('RPOP', W))
      len = len - 1
      n, nf, ns = n - 1, nf - old % 2, ns - math.floor(old / 2) % 2
    end
    return
  end
  advance(math.floor(now / (size / BUCKETS)))
  local i = hd % BUCKETS
  redis.call('HINCRBY', H, 'c' .. i, 1)
  if failed == 1 then redis.call('HINCRBY', H, 'f' .. i, 1) end
  if slow == 1 then redis.call('HINCRBY', H, 's' .. i, 1) end
  n, nf, ns = n + 1, nf + failed, ns + slow
end

-- Circuit._apply_trip_rule: the cause numbers are _circuit's TRIP_*
local function trip_cause()
  if mode == 0 then
    if fc >= threshold then return 1 end
    return 0
  end
  if n < min_calls then return 0 end
  -- Integers (millionths), as in _circuit: no float rounding decides a trip.
  if nf * RATE_SCALE >= fail_units * n then return 2 end
  if ns * RATE_SCALE >= slow_units * n then return 3 end
  return 0
end

-- counts kept for another window (the policy changed) are dropped, as Circuit.reconfigure
-- does: a streak must not carry over, nor buckets numbered for another size
if v[10] and v[10] ~= ws then
  redis.call('DEL', W)
  reset_window()
  dirty = true
end

-- open -> half_open once the break is over
if st == 1 and now >= ou then
  hs = 0
  redis.call('DEL', P)
  move(2)
end

-- finish a half-open probe
if finish_token ~= '' then
  redis.call('ZREM', P, finish_token)
  if finish_bits >= 0 and finish_gen == gen and st == 2 then
    if finish_bits ~= 0 then
      trip(4, finish_bits % 2, math.floor(finish_bits / 2) % 2, 1)
    else
      hs = hs + 1
      dirty = true
      if hs >= success_threshold then
        od = reset_ms
        reset_counts()
        move(0)
      end
    end
  end
end

-- closed-state outcomes recorded since this process's last call
for i = 4, #outcomes, 2 do
  if st == 0 and outcomes[i] == gen then
    add(outcomes[i + 1])
    local cause = trip_cause()
    if cause ~= 0 then
      if mode == 0 then trip(cause, fc, 0, 0) else trip(cause, nf, ns, n) end
    end
  end
end

-- admission (none for an isolated endpoint: the operator's kill switch, never expired)
local isolated = redis.call('GET', I)
local admitted, wait, probes = 0, 0, 0
if admit_token ~= '' and not isolated then
  if st == 0 then
    admitted = 1
  elseif st == 1 then
    wait = ou - now
  else
    redis.call('ZREMRANGEBYSCORE', P, '-inf', now)
    probes = redis.call('ZCARD', P)
    if probes < max_probes then
      redis.call('ZADD', P, now + reset_ms, admit_token)
      redis.call('PEXPIRE', P, ttl_ms)
      probes = probes + 1
      admitted = 2
    else
      local oldest = redis.call('ZRANGE', P, 0, 0, 'WITHSCORES')
      wait = tonumber(oldest[2]) - now
    end
  end
end

if dirty then
  redis.call('HSET', H, 'st', st, 'gen', gen, 'ou', ou, 'fc', fc, 'hs', hs,
             'n', n, 'nf', nf, 'ns', ns, 'hd', hd, 'ws', ws,
             'od', od, 'tc', tc, 'tf', tf, 'ts', ts, 'tn', tn)
  redis.call('PEXPIRE', H, ttl_ms)
  if mode == 1 then redis.call('PEXPIRE', W, ttl_ms) end
end

local open_left = 0
if st == 1 then open_left = ou - now end
local reply = table.concat({$reply}, ',')
if isolated then return reply .. '\n' .. isolated end
return reply
"""

SCRIPT: Final = Template(_TEMPLATE).substitute(
    buckets=TIME_BUCKETS, rate_scale=RATE_SCALE, jitter=JITTER, reply=", ".join(REPLY_FIELDS)
)
