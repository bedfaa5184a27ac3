"""Shared rate limits (SPEC section 2), holding across every worker process and machine.

A sliding window counted in slices: each limit key keeps the number of calls per slice
of period/20, and a call is allowed only if the slices that can overlap any window of
`period`, plus one for margin, hold fewer than `calls`. That is conservative, so a limit
is never exceeded in any window, bursts up to the limit are allowed, and the state per
key stays a handful of counters. The `limits` library was considered: it has no database
storage for the embedded default, and its exact moving window keeps one entry per call
(300,000 for a default host limit); the same algorithm here runs in the database or,
when REDIS_URL is set, in one Redis Lua script, and takes several limits atomically.
"""

import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import transaction

from actions.models import RateLimitCounter

SLICES = 20
# One slice more than a window can overlap: a margin of period/20 (50 ms for a one-second
# limit) so that the provider, who sees our calls a little later and less evenly than we
# send them, never counts more than the limit in any window either.
COUNTED = SLICES + 2


@dataclass(frozen=True)
class Limit:
    key: str
    calls: int
    period_s: float


def _slice_ms(limit: Limit) -> int:
    # Whole milliseconds: slice arithmetic must agree exactly between Python and Lua.
    return max(int(limit.period_s * 1000) // SLICES, 1)


def slice_s(limit: Limit) -> float:
    """The limit's slice in seconds: also the margin it keeps for the provider seeing calls late."""
    return _slice_ms(limit) / 1000


def _window(slices: dict[int, int], limit: Limit, now_ms: int) -> tuple[dict[int, int], int, int]:
    """(slices still in the window, calls still available, the time in ms when the oldest frees)."""
    length = _slice_ms(limit)
    current = now_ms // length
    kept = {s: c for s, c in slices.items() if s > current - COUNTED}
    available = max(limit.calls - sum(kept.values()), 0)
    return kept, available, (min(kept, default=current) + COUNTED) * length


class DatabaseLimiter:
    """For the embedded default: rows locked in one transaction, in key order (no deadlock)."""

    def acquire(self, limits: list[Limit], now: float, count: int) -> tuple[int, float | None]:
        now_ms = int(now * 1000)
        keys = sorted({limit.key for limit in limits})
        with transaction.atomic():
            locked = RateLimitCounter.objects.select_for_update().filter(key__in=keys).order_by("key")
            rows = {r.key: r for r in locked}
            if len(rows) < len(keys):  # first use of a key: create it, then lock all again
                RateLimitCounter.objects.bulk_create(
                    [RateLimitCounter(key=key) for key in keys if key not in rows], ignore_conflicts=True
                )
                rows = {r.key: r for r in locked.all()}
            granted, retry_ms, windows = count, 0, []
            for limit in limits:
                kept, available, frees_at = _window(
                    {int(s): c for s, c in rows[limit.key].slices.items()}, limit, now_ms
                )
                granted = min(granted, available)
                if available < count:  # only a limit that is short decides when to retry
                    retry_ms = max(retry_ms, frees_at)
                windows.append((rows[limit.key], kept, limit))
            if granted:
                for row, kept, limit in windows:
                    current = now_ms // _slice_ms(limit)
                    kept[current] = kept.get(current, 0) + granted
                    row.slices = {str(s): c for s, c in kept.items()}
                RateLimitCounter.objects.bulk_update([row for row, _, _ in windows], ["slices"])
        return granted, (retry_ms / 1000 if granted < count else None)


_ACQUIRE_LUA = """
local COUNTED = ARGV_COUNTED
local now, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local granted, retry = count, 0
local currents = {}
for i = 1, #KEYS do
  local calls = tonumber(ARGV[2 * i + 1])
  local length = tonumber(ARGV[2 * i + 2])
  local current = math.floor(now / length)
  currents[i] = current
  local fields = redis.call('HGETALL', KEYS[i])
  local used, oldest = 0, current
  for j = 1, #fields, 2 do
    local s, c = tonumber(fields[j]), tonumber(fields[j + 1])
    if s <= current - COUNTED then
      redis.call('HDEL', KEYS[i], fields[j])
    else
      used = used + c
      if s < oldest then oldest = s end
    end
  end
  local available = math.max(calls - used, 0)
  if available < granted then granted = available end
  local frees_at = (oldest + COUNTED) * length
  if available < count and frees_at > retry then retry = frees_at end
end
if granted > 0 then
  for i = 1, #KEYS do
    redis.call('HINCRBY', KEYS[i], string.format('%d', currents[i]), granted)
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i + 2]) * 12 + 1000)
  end
end
return {granted, retry}
"""


class RedisLimiter:
    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_ACQUIRE_LUA.replace("ARGV_COUNTED", str(COUNTED)))
        # Connect and load the script now: on the first call they took 70-170 ms after the caller
        # read the clock, so the first calls were counted earlier than they were sent.
        self.script.sha = self.client.script_load(self.script.script)

    def acquire(self, limits: list[Limit], now: float, count: int) -> tuple[int, float | None]:
        keys = [f"conduit:rl:{limit.key}" for limit in limits]
        args: list[int] = [int(now * 1000), count]
        for limit in limits:
            args += [limit.calls, _slice_ms(limit)]
        granted, retry_ms = (int(x) for x in self.script(keys=keys, args=args))
        return granted, (retry_ms / 1000 if granted < count else None)


@cache
def _limiter(redis_url: str) -> DatabaseLimiter | RedisLimiter:
    return RedisLimiter(redis_url) if redis_url else DatabaseLimiter()


def acquire(limits: list[Limit], now: float, count: int = 1) -> tuple[int, float | None]:
    """Take up to `count` calls from every limit at once: (granted, when the next frees if short)."""
    if not limits:
        return count, None
    started = time.monotonic()
    limiter = _limiter(settings.REDIS_URL)  # the first use connects: count from when it is ready
    return limiter.acquire(limits, now + time.monotonic() - started, count)
