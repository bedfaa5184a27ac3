"""The per-host concurrency cap: at most N calls open to one host of an organization at once,
across every worker process and machine (SPEC section 3, endpoint limits' `max_concurrent`).

Each worker process counts its own open calls per host and takes or gives back slots in
bulk, a batch at a time, so a call costs no round trip of its own. A worker's count carries
an expiry, renewed with every change: the slots of a worker killed mid-call come free when
it passes instead of being held for ever. The database keeps one row per host (embedded
default); with REDIS_URL, one hash per host and a Lua script do the same atomically.
"""

import os
import socket
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import transaction

from actions.models import InFlightCounter


@dataclass(frozen=True)
class Open:
    """Calls open to a host by one worker, as the observability pages show them."""

    host: str
    worker: str
    calls: int


def worker_name() -> str:
    """This worker process, as its counts are kept: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def key(organization_id: int, host: str) -> str:
    return f"{organization_id}:{host}"


def _live(workers: dict, now_ms: int) -> dict[str, list[int]]:
    return {name: entry for name, entry in workers.items() if entry[1] > now_ms and entry[0] > 0}


class DatabaseConcurrency:
    """For the embedded default: the host's row locked (SQLite: the whole write) while it changes."""

    def change(self, name: str, worker: str, give_back: int, take: int, cap: int, ttl_s: float) -> int:
        now_ms = int(time.time() * 1000)
        with transaction.atomic():
            row = InFlightCounter.objects.select_for_update().filter(key=name).first()
            if row is None:
                InFlightCounter.objects.bulk_create([InFlightCounter(key=name)], ignore_conflicts=True)
                row = InFlightCounter.objects.select_for_update().get(key=name)
            workers = _live(row.workers, now_ms)
            own = max(workers.get(worker, [0, 0])[0] - give_back, 0)
            others = sum(entry[0] for other, entry in workers.items() if other != worker)
            granted = max(min(take, cap - others - own), 0)
            own += granted
            if own:
                workers[worker] = [own, now_ms + int(ttl_s * 1000)]
            else:
                workers.pop(worker, None)
            row.workers = workers
            row.save(update_fields=["workers"])
        return granted

    def open_calls(self, organization_id: int) -> list[Open]:
        now_ms = int(time.time() * 1000)
        rows = InFlightCounter.objects.filter(key__startswith=f"{organization_id}:")
        return [
            Open(host=row.key.split(":", 1)[1], worker=worker, calls=entry[0])
            for row in rows
            for worker, entry in sorted(_live(row.workers, now_ms).items())
        ]


_CHANGE_LUA = """
local worker, give_back, take = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local fields = redis.call('HGETALL', KEYS[1])
local others, own = 0, 0
for j = 1, #fields, 2 do
  local calls, untl = string.match(fields[j + 1], '(%d+):(%d+)')
  calls, untl = tonumber(calls), tonumber(untl)
  if untl <= now then
    redis.call('HDEL', KEYS[1], fields[j])
  elseif fields[j] == worker then
    own = calls
  else
    others = others + calls
  end
end
own = math.max(own - give_back, 0)
local granted = math.max(math.min(take, cap - others - own), 0)
own = own + granted
if own > 0 then
  redis.call('HSET', KEYS[1], worker, string.format('%d:%d', own, now + ttl))
else
  redis.call('HDEL', KEYS[1], worker)
end
redis.call('PEXPIRE', KEYS[1], ttl + 1000)
return granted
"""


class RedisConcurrency:
    PREFIX = "conduit:inflight:"

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_CHANGE_LUA)

    def change(self, name: str, worker: str, give_back: int, take: int, cap: int, ttl_s: float) -> int:
        args = [worker, give_back, take, cap, int(time.time() * 1000), int(ttl_s * 1000)]
        return int(self.script(keys=[self.PREFIX + name], args=args))

    def open_calls(self, organization_id: int) -> list[Open]:
        now_ms = int(time.time() * 1000)
        found = []
        for redis_key in sorted(self.client.scan_iter(match=f"{self.PREFIX}{organization_id}:*", count=500)):
            host = redis_key.decode()[len(self.PREFIX) :].split(":", 1)[1]
            for worker, value in sorted(self.client.hgetall(redis_key).items()):
                calls, until = (int(part) for part in value.decode().split(":"))
                if until > now_ms and calls > 0:
                    found.append(Open(host=host, worker=worker.decode(), calls=calls))
        return found


@cache
def _store(redis_url: str) -> DatabaseConcurrency | RedisConcurrency:
    return RedisConcurrency(redis_url) if redis_url else DatabaseConcurrency()


def change(name: str, worker: str, *, give_back: int = 0, take: int = 0, cap: int = 0, ttl_s: float) -> int:
    """Free `give_back` slots this worker held (calls that ended), then take up to `take` of the host's
    `cap` for it, in one step: how many were taken. `ttl_s`: how long this worker's count holds unrenewed."""
    if give_back <= 0 and take <= 0:
        return 0
    return _store(settings.REDIS_URL).change(name, worker, max(give_back, 0), max(take, 0), cap, ttl_s)


def open_calls(organization_id: int) -> list[Open]:
    """Calls open now to each host of the organization, per worker process."""
    return _store(settings.REDIS_URL).open_calls(organization_id)
