"""Shared rate limits (SPEC section 2), holding across every worker process and machine.

A sliding window counted in slices: each limit key keeps the number of calls per slice
of period/10, and a call is allowed only if the slices that can overlap any window of
`period` (eleven of them) hold fewer than `calls`. That is conservative, so a limit is
never exceeded in any window, bursts up to the limit are allowed, and the state per key
stays a handful of counters. The `limits` library was considered: it has no database
storage for the embedded default, and its exact moving window keeps one entry per call
(300,000 for a default host limit); the same algorithm here runs in the database or,
when REDIS_URL is set, in one Redis Lua script, and takes several limits atomically.
"""

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import transaction

from actions.models import RateLimitCounter

SLICES = 10


@dataclass(frozen=True)
class Limit:
    key: str
    calls: int
    period_s: float


def _slice_ms(limit: Limit) -> int:
    # Whole milliseconds: slice arithmetic must agree exactly between Python and Lua.
    return max(int(limit.period_s * 1000) // SLICES, 1)


def _check(slices: dict[int, int], limit: Limit, now_ms: int) -> tuple[dict[int, int], int | None]:
    """(slices still in the window, None if one more call fits, else the time to retry in ms)."""
    length = _slice_ms(limit)
    current = now_ms // length
    kept = {s: c for s, c in slices.items() if s >= current - SLICES}
    if sum(kept.values()) + 1 <= limit.calls:
        return kept, None
    return kept, (min(kept) + SLICES + 1) * length


class DatabaseLimiter:
    """For the embedded default: rows locked in one transaction, in key order (no deadlock)."""

    def acquire(self, limits: list[Limit], now: float) -> float | None:
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
            retry_at: int | None = None
            pending = []
            for limit in limits:
                row = rows[limit.key]
                kept, retry = _check({int(s): c for s, c in row.slices.items()}, limit, now_ms)
                if retry is not None:
                    retry_at = max(retry_at or 0, retry)
                pending.append((row, kept, limit))
            if retry_at is not None:
                return retry_at / 1000
            for row, kept, limit in pending:
                current = now_ms // _slice_ms(limit)
                kept[current] = kept.get(current, 0) + 1
                row.slices = {str(s): c for s, c in kept.items()}
            RateLimitCounter.objects.bulk_update([row for row, _, _ in pending], ["slices"])
        return None


_ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
local retry = 0
local currents = {}
for i = 1, #KEYS do
  local calls = tonumber(ARGV[2 * i])
  local length = tonumber(ARGV[2 * i + 1])
  local current = math.floor(now / length)
  currents[i] = current
  local fields = redis.call('HGETALL', KEYS[i])
  local used, oldest = 0, nil
  for j = 1, #fields, 2 do
    local s, c = tonumber(fields[j]), tonumber(fields[j + 1])
    if s < current - 10 then
      redis.call('HDEL', KEYS[i], fields[j])
    else
      used = used + c
      if oldest == nil or s < oldest then oldest = s end
    end
  end
  if used + 1 > calls then
    local at = (oldest + 11) * length
    if at > retry then retry = at end
  end
end
if retry > 0 then return retry end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], string.format('%d', currents[i]), 1)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]) * 12 + 1000)
end
return 0
"""


class RedisLimiter:
    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_ACQUIRE_LUA)

    def acquire(self, limits: list[Limit], now: float) -> float | None:
        keys = [f"conduit:rl:{limit.key}" for limit in limits]
        args: list[int] = [int(now * 1000)]
        for limit in limits:
            args += [limit.calls, _slice_ms(limit)]
        answer = int(self.script(keys=keys, args=args))
        return None if answer == 0 else answer / 1000


@cache
def _limiter(redis_url: str) -> DatabaseLimiter | RedisLimiter:
    return RedisLimiter(redis_url) if redis_url else DatabaseLimiter()


def acquire(limits: list[Limit], now: float) -> float | None:
    """Take one call from every limit, or none: None if allowed, else when to retry (epoch s)."""
    if not limits:
        return None
    return _limiter(settings.REDIS_URL).acquire(limits, now)
