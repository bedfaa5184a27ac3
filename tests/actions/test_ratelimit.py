"""The shared limiter: strict in any window, bursts up to the limit, several limits atomically."""

import random

import pytest

from actions.runtime.ratelimit import DatabaseLimiter, Limit, RedisLimiter


@pytest.fixture(params=["database", "redis"])
def limiter(request, db):
    if request.param == "database":
        return DatabaseLimiter()
    limiter = RedisLimiter(request.getfixturevalue("redis_url"))
    limiter.client.flushdb()
    return limiter


def one(limiter, limits, now):
    """None if one call is allowed, else when to retry."""
    granted, retry_at = limiter.acquire(limits, now, 1)
    return None if granted == 1 else retry_at


def test_burst_up_to_the_limit_then_wait(limiter):
    five_per_second = [Limit("action:1", 5, 1)]
    assert [one(limiter, five_per_second, 100.0) for _ in range(5)] == [None] * 5
    retry_at = one(limiter, five_per_second, 100.0)
    assert retry_at is not None and retry_at >= 101.0
    assert one(limiter, five_per_second, retry_at) is None


def test_a_batch_takes_what_is_left(limiter):
    limit = [Limit("action:batch", 5, 1)]
    assert limiter.acquire(limit, 50.0, 3) == (3, None)
    granted, retry_at = limiter.acquire(limit, 50.0, 4)
    assert granted == 2 and retry_at >= 51.0
    assert limiter.acquire(limit, 50.5, 1)[0] == 0


def test_never_more_than_the_limit_in_any_window(limiter):
    limit = [Limit("action:2", 7, 2)]
    rng = random.Random(4)
    now, accepted = 1000.0, []
    for _ in range(400):
        now += rng.expovariate(20)  # about 20 attempts a second against 3.5 allowed
        if one(limiter, limit, now) is None:
            accepted.append(now)
    assert len(accepted) > 50
    assert all(accepted[i + 7] - accepted[i] >= 2.0 for i in range(len(accepted) - 7))


def test_two_limits_are_taken_together_or_not_at_all(limiter):
    host = Limit("host:1:api.example.com", 3, 60)
    first, second = Limit("action:a", 100, 60), Limit("action:b", 100, 60)
    assert [one(limiter, [first, host], 10.0) for _ in range(2)] == [None, None]
    assert one(limiter, [second, host], 10.0) is None
    assert one(limiter, [second, host], 10.0) is not None  # the host is full
    # The refused call took nothing from the action limit: one of two is used, one is left.
    assert one(limiter, [Limit("action:b", 2, 60)], 10.0) is None
    assert one(limiter, [Limit("action:b", 2, 60)], 10.0) is not None


def test_only_the_limit_that_is_short_sets_the_retry_time(limiter):
    tight, roomy = Limit("action:tight", 1, 1), Limit("host:1:roomy", 1000, 3600)
    assert one(limiter, [tight, roomy], 20.0) is None
    retry_at = one(limiter, [tight, roomy], 20.0)
    assert 21.0 <= retry_at <= 21.2
