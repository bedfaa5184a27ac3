"""Whether a journey step's call may be made under the organization's frequency caps, counted atomically.

A call is counted once per run and step (`call_key`: the run and the step's sequence in it), when the
engine is about to make it: retries are attempts of one invocation and replays are new invocations of it,
neither comes back here; a pass of the engine written twice (a lost lease) asks with the same key and is
admitted again without counting. The check and the count are one atomic step that holds across workers
and journeys: a Lua script over one sorted set per organization, profile and category when REDIS_URL is
set, else a transaction on the database that locks the profile's row first (PostgreSQL; SQLite's
transactions take the write lock at BEGIN), so two workers admitting calls of one profile take turns.

A call is counted when it is admitted, whatever its outcome later; a capped call is not counted. Only
categories that have a cap are counted, so a new cap counts calls from its creation on.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from actions.models import Action
from journeys.models import CountedCall, FrequencyCap, Journey, JourneyRun, Profile, StepRun

__all__ = ["Cap", "call_admitted", "call_capped", "call_key", "capped_calls", "caps_for", "on_metrics_requested"]


@dataclass(frozen=True)
class Cap:
    category: str
    max_calls: int
    period_days: int

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)


def call_key(run_id: Any, sequence: int) -> str:
    """The same for every attempt and replay of one step's call in one run."""
    return f"{run_id}:{sequence}"


def caps_for(organization_id: int, categories: Iterable[str]) -> list[Cap]:
    """The organization's caps on any of these categories."""
    rows = FrequencyCap.objects.filter(organization_id=organization_id, category__in=list(categories))
    return [Cap(c, n, d) for c, n, d in rows.values_list("category", "max_calls", "period_days")]


def _kept(caps: list[Cap]) -> dict[str, timedelta]:
    """Per category, how long its counted calls matter: its longest cap's period."""
    kept: dict[str, timedelta] = {}
    for cap in caps:
        kept[cap.category] = max(kept.get(cap.category, cap.period), cap.period)
    return kept


class DatabaseStore:
    """The embedded default: rows of CountedCall, checked and written in one transaction per call."""

    def admit(self, organization_id: int, profile_id: int, caps: list[Cap], key: str, now: datetime) -> bool:
        kept = _kept(caps)
        with transaction.atomic():
            # One admission of a profile at a time: the second waits here, then counts the first's row.
            list(Profile.objects.select_for_update().filter(pk=profile_id).values_list("pk"))
            counted = CountedCall.objects.filter(profile_id=profile_id, category__in=list(kept))
            if counted.filter(key=key).exists():
                return True  # counted by an earlier pass of the same step
            windows = {
                f"cap_{i}": Count("pk", filter=Q(category=cap.category, counted_at__gt=now - cap.period))
                for i, cap in enumerate(caps)
            }
            found = counted.aggregate(**windows)
            if any(found[f"cap_{i}"] + 1 > cap.max_calls for i, cap in enumerate(caps)):
                return False
            for category, period in kept.items():  # what no cap looks at any more
                counted.filter(category=category, counted_at__lte=now - period).delete()
            CountedCall.objects.bulk_create(
                [
                    CountedCall(
                        organization_id=organization_id, profile_id=profile_id, category=c, key=key, counted_at=now
                    )
                    for c in kept
                ]  # fmt: skip
            )
        return True


# KEYS: one sorted set per category (member: a call's key, score: when it was counted, in ms).
# ARGV: now, the key, the number of caps, then per cap its set's index, period and max, then per set
# how long to keep its members.
_ADMIT_LUA = """
local now, member, caps = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
for i = 1, #KEYS do
  if redis.call('ZSCORE', KEYS[i], member) then return 1 end
end
for j = 0, caps - 1 do
  local at = 4 + 3 * j
  local set, period, most = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  if redis.call('ZCOUNT', KEYS[set], '(' .. (now - period), '+inf') + 1 > most then return 0 end
end
for i = 1, #KEYS do
  local keep = tonumber(ARGV[3 + 3 * caps + i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - keep)
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], keep)
end
return 1
"""


class RedisStore:
    """Production: one Lua script checks every cap of the call and counts it in every set, or in none."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_ADMIT_LUA)

    def admit(self, organization_id: int, profile_id: int, caps: list[Cap], key: str, now: datetime) -> bool:
        kept = _kept(caps)
        categories = list(kept)
        # One hash slot per profile ({...}): a Redis cluster runs the script on the node that holds all its sets.
        keys = [f"conduit:fc:{{{organization_id}:{profile_id}}}:{c}" for c in categories]
        args: list[Any] = [int(now.timestamp() * 1000), key, len(caps)]
        for cap in caps:
            args += [categories.index(cap.category) + 1, _ms(cap.period), cap.max_calls]
        args += [_ms(kept[c]) for c in categories]
        return bool(self.script(keys=keys, args=args))


def _ms(period: timedelta) -> int:
    return int(period.total_seconds() * 1000)


@cache
def _store(redis_url: str) -> DatabaseStore | RedisStore:
    return RedisStore(redis_url) if redis_url else DatabaseStore()


def call_admitted(*, organization_id: int, profile_id: int, categories: Iterable[str], key: str, now: datetime) -> bool:
    """Whether one more call of these categories for this profile stays within every cap; if so it is counted."""
    caps = caps_for(organization_id, categories)
    if not caps:
        return True
    return _store(settings.REDIS_URL).admit(organization_id, profile_id, caps, key, now)


def call_capped(run: JourneyRun, record: StepRun, action: Action, now: datetime) -> bool:
    """For the engine: whether a cap holds back this step's call (counted otherwise)."""
    categories = action.categories if isinstance(action.categories, list) else []
    categories = [c for c in categories if isinstance(c, str)]
    if not categories:
        return False
    key = call_key(run.pk, record.sequence)
    return not call_admitted(
        organization_id=run.organization_id, profile_id=run.profile_id, categories=categories, key=key, now=now
    )


def capped_calls(action: Action, since: datetime, until: datetime) -> int:
    """How many calls of `action` frequency caps held back in [since, until], for its metrics."""
    if not action.categories:  # never capped (untagged since: its earlier capped calls are in the journey reports)
        return 0
    keys: dict[int, set[str]] = {}
    for journey_id, steps in Journey.objects.filter(actions=action).values_list("pk", "steps"):
        keys[journey_id] = {s["key"] for s in steps if isinstance(s, dict) and s.get("action") == action.pk}
    if not keys:
        return 0
    which = Q()
    for journey_id, step_keys in keys.items():
        which |= Q(journey_id=journey_id, step_key__in=step_keys)
    held = StepRun.objects.filter(which, organization_id=action.organization_id, status=StepRun.Status.CAPPED)
    return held.filter(entered_at__gte=since, entered_at__lte=until).count()


def on_metrics_requested(sender: Any, action: Action, since: datetime, until: datetime, **kwargs: Any) -> dict:
    """Receiver of actions' metrics_requested: the calls of the action caps held back in the window."""
    return {"capped": capped_calls(action, since, until)}
